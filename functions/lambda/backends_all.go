//go:build pushpool_all

package main

import (
	"github.com/pushpool/pushpool/dispatch/backends"
	"github.com/pushpool/pushpool/dispatch/backends/all"
)

// linked returns every backend: this is the all-in-one build (-tags
// pushpool_all) that make functions measures the single-cloud build against.
func linked() backends.Set { return all.Backends() }
