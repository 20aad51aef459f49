package process

import (
	"bytes"
	_ "embed"
	"encoding/json"
)

// PoolTypes are the Prefect work pool types this backend serves.
func PoolTypes() []string { return []string{PoolType} }

//go:embed template.json
var defaultTemplate []byte

// DefaultBaseJobTemplate returns Prefect's default base job template for
// process pools, as the pinned prefect package's ProcessWorker gives it (a
// test compares the two). Each call returns a fresh copy; numbers are
// json.Number.
func DefaultBaseJobTemplate() map[string]any {
	dec := json.NewDecoder(bytes.NewReader(defaultTemplate))
	dec.UseNumber()
	var t map[string]any
	if err := dec.Decode(&t); err != nil {
		panic("process: embedded template.json is not JSON: " + err.Error())
	}
	return t
}
