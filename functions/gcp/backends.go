//go:build !pushpool_all

package main

import (
	"github.com/pushpool/pushpool/dispatch/backend/cloudrun"
	"github.com/pushpool/pushpool/dispatch/backends"
)

// linked returns the backends this build links: Cloud Run only, so the function carries no AWS or Azure SDK.
// Built with -tags pushpool_all it links every backend instead
// (backends_all.go), as make functions does to measure the difference.
func linked() backends.Set { return backends.Set{cloudrun.Kind()} }
