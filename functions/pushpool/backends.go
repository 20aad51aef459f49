//go:build !pushpool_ecs && !pushpool_cloudrun && !pushpool_aci

package main

import (
	"github.com/pushpool/pushpool/dispatch/backends"
	"github.com/pushpool/pushpool/dispatch/backends/all"
)

// linked returns the backends this build of the command links: every one.
// A build with -tags pushpool_ecs, pushpool_cloudrun or pushpool_aci (one
// of them) links process and that cloud's only, for a lighter serve on
// that cloud (backends_<cloud>.go).
func linked() backends.Set { return all.Backends() }
