//go:build pushpool_cloudrun

package main

import (
	"github.com/pushpool/pushpool/dispatch/backend/cloudrun"
	"github.com/pushpool/pushpool/dispatch/backend/process"
	"github.com/pushpool/pushpool/dispatch/backends"
)

// linked returns the backends this build (-tags pushpool_cloudrun) links:
// process and Cloud Run only, no other cloud's SDK.
func linked() backends.Set { return backends.Set{process.Kind(), cloudrun.Kind()} }
