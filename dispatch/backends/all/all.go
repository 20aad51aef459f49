// Package all is the set of every backend pushpool ships: what the pushpool
// command links. Cloud functions link only their own cloud's backend.
package all

import (
	"github.com/pushpool/pushpool/dispatch/backend/aci"
	"github.com/pushpool/pushpool/dispatch/backend/cloudrun"
	"github.com/pushpool/pushpool/dispatch/backend/ecs"
	"github.com/pushpool/pushpool/dispatch/backend/process"
	"github.com/pushpool/pushpool/dispatch/backends"
)

// Backends returns every backend: process, ECS, Cloud Run and ACI.
func Backends() backends.Set {
	return backends.Set{process.Kind(), ecs.Kind(), cloudrun.Kind(), aci.Kind()}
}
