package cloudrun

import (
	"bytes"
	_ "embed"
	"encoding/json"
)

// PoolType is the Prefect work pool type of Prefect's Cloud Run v2 worker.
const PoolType = "cloud-run-v2"

// PoolTypes are the Prefect work pool types this backend serves: the worker
// pool type and its push variant, which share the base job template.
func PoolTypes() []string { return []string{PoolType, PoolType + ":push"} }

//go:embed template.json
var defaultTemplate []byte

// DefaultBaseJobTemplate returns Prefect's default base job template for
// cloud-run-v2 pools, as the pinned prefect-gcp package's CloudRunWorkerV2
// gives it (a test compares the two). Each call returns a fresh copy;
// numbers are json.Number.
func DefaultBaseJobTemplate() map[string]any {
	dec := json.NewDecoder(bytes.NewReader(defaultTemplate))
	dec.UseNumber()
	var t map[string]any
	if err := dec.Decode(&t); err != nil {
		panic("cloudrun: embedded template.json is not JSON: " + err.Error())
	}
	return t
}
