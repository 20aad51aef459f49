package aci

import "github.com/pushpool/pushpool/dispatch/pooltype"

// PoolType is the Prefect work pool type of Azure Container Instances pools;
// PushPoolType is its Prefect Cloud push variant, which takes the same
// template.
const (
	PoolType     = string(pooltype.ACI)
	PushPoolType = PoolType + ":push"
)

// PoolTypes are the Prefect work pool types this backend serves.
func PoolTypes() []string { return pooltype.ACI.Types() }

// DefaultBaseJobTemplate returns Prefect's default base job template for ACI
// pools (pooltype.ACI's). Each call returns a fresh copy.
func DefaultBaseJobTemplate() map[string]any { return pooltype.ACI.DefaultBaseJobTemplate() }
