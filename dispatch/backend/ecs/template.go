package ecs

import (
	"bytes"
	_ "embed"
	"encoding/json"
)

// The Prefect work pool types this backend serves: the worker pool type and
// Prefect Cloud's push pool type, which share the base job template.
const (
	PoolType     = "ecs"
	PushPoolType = "ecs:push"
)

// PoolTypes are the Prefect work pool types this backend serves.
func PoolTypes() []string { return []string{PoolType, PushPoolType} }

//go:embed template.json
var defaultTemplate []byte

// DefaultBaseJobTemplate returns Prefect's default base job template for ECS
// pools, as the pinned prefect-aws package's ECSWorker gives it (a test
// compares the two; regenerate with
// `python -c 'from prefect_aws.workers import ECSWorker; ...get_default_base_job_template()'`).
// Each call returns a fresh copy; numbers are json.Number.
func DefaultBaseJobTemplate() map[string]any {
	dec := json.NewDecoder(bytes.NewReader(defaultTemplate))
	dec.UseNumber()
	var t map[string]any
	if err := dec.Decode(&t); err != nil {
		panic("ecs: embedded template.json is not JSON: " + err.Error())
	}
	return t
}
