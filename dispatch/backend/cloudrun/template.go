package cloudrun

import "github.com/pushpool/pushpool/dispatch/pooltype"

// PoolType is the Prefect work pool type of Prefect's Cloud Run v2 worker.
const PoolType = string(pooltype.CloudRun)

// PoolTypes are the Prefect work pool types this backend serves: the worker
// pool type and its push variant, which share the base job template.
func PoolTypes() []string { return pooltype.CloudRun.Types() }

// DefaultBaseJobTemplate returns Prefect's default base job template for
// cloud-run-v2 pools (pooltype.CloudRun's). Each call returns a fresh copy.
func DefaultBaseJobTemplate() map[string]any { return pooltype.CloudRun.DefaultBaseJobTemplate() }
