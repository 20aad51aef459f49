// Package invoke is what every cloud function does, with no cloud in it:
// a scheduler tick runs a dispatch and a reconcile pass for the configured
// pools, fanning out through the platform's queue when one invocation has
// more due runs than it should start, and turning runs due before the next
// tick into delayed wake-ups on the platform's own timer; queue messages
// (fan-out shards, wake-ups) dispatch the runs they name; infrastructure
// events go to the reconciler; a signed webhook dispatches the flow run it
// announces.
//
// The functions/ packages decode their platform's payloads, call a Handler
// and encode its answer. The platform's queue is the Queue interface.
package invoke
