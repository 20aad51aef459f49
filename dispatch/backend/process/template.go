package process

import "github.com/pushpool/pushpool/dispatch/pooltype"

// PoolTypes are the Prefect work pool types this backend serves.
func PoolTypes() []string { return pooltype.Process.Types() }

// DefaultBaseJobTemplate returns Prefect's default base job template for
// process pools (pooltype.Process's). Each call returns a fresh copy.
func DefaultBaseJobTemplate() map[string]any { return pooltype.Process.DefaultBaseJobTemplate() }
