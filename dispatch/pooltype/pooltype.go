// Package pooltype names the Prefect work pool types pushpool serves and
// holds Prefect's default base job template for each. It links no cloud SDK,
// so the Terraform provider and every single-cloud function build can import
// it; the backends themselves register per build (dispatch/backends).
package pooltype

import (
	"bytes"
	"embed"
	"encoding/json"
	"fmt"
	"slices"
	"strings"
)

// Family is the pool types one backend serves: a Prefect worker's pool type
// (the Family's own value) and, for the clouds, Prefect Cloud's push variant
// of it ("ecs:push"), which takes the same base job template.
type Family string

// The families pushpool serves.
const (
	Process  Family = "process"
	ECS      Family = "ecs"
	CloudRun Family = "cloud-run-v2"
	ACI      Family = "azure-container-instance"
)

// pushSuffix marks Prefect Cloud's push variant of a worker pool type.
const pushSuffix = ":push"

// Families returns every family pushpool serves.
func Families() []Family { return []Family{Process, ECS, CloudRun, ACI} }

// Types returns the pool types of the family: its worker type, then its push
// variant (none for process pools).
func (f Family) Types() []string {
	if f == Process {
		return []string{string(f)}
	}
	return []string{string(f), string(f) + pushSuffix}
}

// Push returns the push variant of the family's pool type ("ecs:push"), or
// "" for process pools, which have none.
func (f Family) Push() string {
	if f == Process {
		return ""
	}
	return string(f) + pushSuffix
}

// Of returns the family of a pool type, and false when pushpool serves no
// pool of that type.
func Of(poolType string) (Family, bool) {
	f := Family(strings.TrimSuffix(poolType, pushSuffix))
	if !slices.Contains(Families(), f) || (f == Process && poolType != string(Process)) {
		return "", false
	}
	return f, true
}

// All returns every pool type pushpool serves, sorted.
func All() []string {
	var all []string
	for _, f := range Families() {
		all = append(all, f.Types()...)
	}
	slices.Sort(all)
	return all
}

//go:embed templates/*.json
var templates embed.FS

// DefaultBaseJobTemplate returns Prefect's default base job template for the
// family's pools, as the pinned Prefect integration's worker gives it
// (process: prefect's ProcessWorker; ecs: prefect-aws's ECSWorker;
// cloud-run-v2: prefect-gcp's CloudRunWorkerV2; azure-container-instance:
// prefect-azure's AzureContainerWorker; a test compares each). Each call
// returns a fresh copy; numbers are json.Number.
func (f Family) DefaultBaseJobTemplate() map[string]any {
	data, err := templates.ReadFile("templates/" + string(f) + ".json")
	if err != nil {
		panic(fmt.Sprintf("pooltype: no default template for %q: %v", f, err))
	}
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.UseNumber()
	var t map[string]any
	if err := dec.Decode(&t); err != nil {
		panic(fmt.Sprintf("pooltype: embedded templates/%s.json is not JSON: %v", f, err))
	}
	return t
}

// DefaultBaseJobTemplate returns Prefect's default base job template for a
// pool type pushpool serves, and false for other types.
func DefaultBaseJobTemplate(poolType string) (map[string]any, bool) {
	f, ok := Of(poolType)
	if !ok {
		return nil, false
	}
	return f.DefaultBaseJobTemplate(), true
}
