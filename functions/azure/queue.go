package main

import (
	"context"
	"encoding/base64"
	"fmt"
	"math"
	"time"

	"github.com/Azure/azure-sdk-for-go/sdk/storage/azqueue/v2"
	"github.com/Azure/azure-sdk-for-go/sdk/storage/azqueue/v2/queueerror"

	"github.com/pushpool/pushpool/dispatch/invoke"
)

// storageMaxDelay is the longest visibility timeout Azure Storage queues
// accept: a message can be hidden for at most 7 days.
const storageMaxDelay = 7 * 24 * time.Hour

// enqueuer is the part of the queue client storageQueue calls.
type enqueuer interface {
	EnqueueMessage(ctx context.Context, content string, o *azqueue.EnqueueMessageOptions) (azqueue.EnqueueMessagesResponse, error)
}

var _ enqueuer = (*azqueue.QueueClient)(nil)

// storageQueue sends shards and wake-ups through the Azure Storage queue
// the fanout function is triggered by. A wake-up is a message whose
// visibility timeout is its due time: the queue hides it until then, so
// the trigger sees it no earlier.
//
// The text is the message's JSON in base64, which is what the queue
// trigger decodes by default (host.json extensions.queues.messageEncoding
// "base64"; with "none" the trigger would hand the base64 text over as is).
type storageQueue struct {
	client enqueuer
	name   string
	now    func() time.Time
}

var _ invoke.Queue = (*storageQueue)(nil)

func (q *storageQueue) MaxDelay() time.Duration { return storageMaxDelay }

func (q *storageQueue) Send(ctx context.Context, m invoke.Message, at time.Time) error {
	now := time.Now
	if q.now != nil {
		now = q.now
	}
	// The service counts whole seconds: round up, so a wake-up never comes
	// early; a delay that rounds past the limit is clamped to it (under a
	// second early, and an early wake-up only schedules itself again).
	visible := int32(0)
	if d := at.Sub(now()); d > 0 {
		if d > storageMaxDelay {
			return fmt.Errorf("wake-up for flow run %v is %v ahead; Azure Storage queues hide a message for at most %v", m.FlowRunIDs, d.Round(time.Second), storageMaxDelay)
		}
		visible = int32(min(math.Ceil(d.Seconds()), storageMaxDelay.Seconds()))
	}
	// The time to live counts from insertion and must outlast the
	// visibility timeout: a message lives a week after it becomes visible
	// (the service's default), whatever its delay.
	ttl := visible + int32(storageMaxDelay/time.Second)
	_, err := q.client.EnqueueMessage(ctx, base64.StdEncoding.EncodeToString(m.Encode()),
		&azqueue.EnqueueMessageOptions{VisibilityTimeout: &visible, TimeToLive: &ttl})
	switch {
	case queueerror.HasCode(err, queueerror.QueueNotFound):
		return fmt.Errorf("send to storage queue %q: it does not exist: create it in the function app's storage account (infra/azure does) or fix %s: %w", q.name, EnvQueue, err)
	case queueerror.HasCode(err, queueerror.AuthorizationPermissionMismatch, queueerror.AuthorizationFailure, queueerror.AuthenticationFailed):
		return fmt.Errorf("send to storage queue %q: %w; the function app's identity needs the Storage Queue Data Message Sender role on it (or %s must be a connection string with its account key)", q.name, err, EnvStorage)
	case err != nil:
		return fmt.Errorf("send to storage queue %q: %w", q.name, err)
	}
	return nil
}
