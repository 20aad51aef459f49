//go:build pushpool_ecs

package main

import (
	"github.com/pushpool/pushpool/dispatch/backend/ecs"
	"github.com/pushpool/pushpool/dispatch/backend/process"
	"github.com/pushpool/pushpool/dispatch/backends"
)

// linked returns the backends this build (-tags pushpool_ecs) links:
// process and ECS only, no other cloud's SDK.
func linked() backends.Set { return backends.Set{process.Kind(), ecs.Kind()} }
