package aci

import (
	"bytes"
	_ "embed"
	"encoding/json"
)

// PoolType is the Prefect work pool type of Azure Container Instances pools;
// PushPoolType is its Prefect Cloud push variant, which takes the same
// template.
const (
	PoolType     = "azure-container-instance"
	PushPoolType = "azure-container-instance:push"
)

// PoolTypes are the Prefect work pool types this backend serves.
func PoolTypes() []string { return []string{PoolType, PushPoolType} }

//go:embed template.json
var defaultTemplate []byte

// DefaultBaseJobTemplate returns Prefect's default base job template for ACI
// pools, as the pinned prefect-azure package's AzureContainerWorker gives it
// (a test compares the two). Each call returns a fresh copy; numbers are
// json.Number.
func DefaultBaseJobTemplate() map[string]any {
	dec := json.NewDecoder(bytes.NewReader(defaultTemplate))
	dec.UseNumber()
	var t map[string]any
	if err := dec.Decode(&t); err != nil {
		panic("aci: embedded template.json is not JSON: " + err.Error())
	}
	return t
}
