//go:build !pushpool_all

package main

import (
	"github.com/pushpool/pushpool/dispatch/backend/aci"
	"github.com/pushpool/pushpool/dispatch/backends"
)

// linked returns the backends this build links: Azure Container Instances only, so the handler carries no AWS or Google SDK.
// Built with -tags pushpool_all it links every backend instead
// (backends_all.go), as make functions does to measure the difference.
func linked() backends.Set { return backends.Set{aci.Kind()} }
