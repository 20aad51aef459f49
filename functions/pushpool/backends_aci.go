//go:build pushpool_aci

package main

import (
	"github.com/pushpool/pushpool/dispatch/backend/aci"
	"github.com/pushpool/pushpool/dispatch/backend/process"
	"github.com/pushpool/pushpool/dispatch/backends"
)

// linked returns the backends this build (-tags pushpool_aci) links:
// process and Azure Container Instances only, no other cloud's SDK.
func linked() backends.Set { return backends.Set{process.Kind(), aci.Kind()} }
