package ecs

import "github.com/pushpool/pushpool/dispatch/pooltype"

// The Prefect work pool types this backend serves: the worker pool type and
// Prefect Cloud's push pool type, which share the base job template.
const (
	PoolType     = string(pooltype.ECS)
	PushPoolType = PoolType + ":push"
)

// PoolTypes are the Prefect work pool types this backend serves.
func PoolTypes() []string { return pooltype.ECS.Types() }

// DefaultBaseJobTemplate returns Prefect's default base job template for ECS
// pools (pooltype.ECS's). Each call returns a fresh copy.
func DefaultBaseJobTemplate() map[string]any { return pooltype.ECS.DefaultBaseJobTemplate() }
