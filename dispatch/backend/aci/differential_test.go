package aci

import (
	"encoding/base64"
	"encoding/json"
	"fmt"
	"sort"
	"strings"
	"testing"

	"github.com/pushpool/pushpool/dispatch/dispatchtest"
	"github.com/pushpool/pushpool/internal/localstack"
)

// differentialProgram runs prefect-azure's own preparation of the ARM
// template (AzureContainerJobConfiguration.prepare_for_flow_run without the
// base class's part, which both sides already did through template.Prepare)
// on each configuration, and python-slugify on each flow name as the worker
// calls it (max_length 19) and as pushpool's names cut it (17).
const differentialProgram = `
import base64, json
from prefect.workers.base import BaseJobConfiguration
from prefect_azure.workers.container_instance import AzureContainerJobConfiguration as C
from slugify import slugify
BaseJobConfiguration.prepare_for_flow_run = lambda self, *a, **k: None
C._base_environment = classmethod(lambda cls: {})
data = json.loads(base64.b64decode(%q))
out = {"resources": [], "slugs": [], "short": []}
for cfg in data["configs"]:
    c = C(**cfg)
    c.prepare_for_flow_run(flow_run=None)
    out["resources"].append(c.arm_template["resources"][0])
for name in data["names"]:
    out["slugs"].append(slugify(name, max_length=55 - 36, regex_pattern=r"[^a-zA-Z0-9-]+"))
    out["short"].append(slugify(name, max_length=17, regex_pattern=r"[^a-zA-Z0-9-]+"))
print(json.dumps(out))
`

// TestBuildGroup_matchesPrefect compares the container group the backend
// builds with the container group resource prefect-azure's worker puts into
// its ARM deployment for the same prepared configuration.
//
// Legitimate differences, normalised away:
//   - ARM expressions: the worker leaves [parameters('container_group_name')],
//     [parameters('location')] and [parameters('container_name')] to ARM;
//     the backend evaluates them (the container name is the group name,
//     where ARM would use the default uniqueString(resourceGroup().id)).
//   - type and apiVersion belong to the ARM template, not to the API body.
//   - tags: the backend tags the group with the job's labels (and, in
//     Start, with its pushpool.io_* tags); the worker sets none.
//   - environmentVariables: the worker lists them in dict order, the backend
//     sorted by name; ACI does not care.
//
// Not covered here: the default image (the worker's Python version), the
// GPU request (the worker ignores gpu_count/gpu_sku).
func TestBuildGroup_matchesPrefect(t *testing.T) {
	cases := []map[string]any{
		{},
		{"command": `python -c 'print("hi there")' --flag "a b"`, "entrypoint": "/bin/entry",
			"env":            map[string]any{"PREFECT_API_KEY": "pnu_x", "PREFECT_API_AUTH_STRING": "u:p", "PLAIN": "v"},
			"identities":     []any{"/subscriptions/s/resourceGroups/rg/providers/Microsoft.ManagedIdentity/userAssignedIdentities/i"},
			"subnet_ids":     []any{"/subscriptions/s/resourceGroups/rg/providers/Microsoft.Network/virtualNetworks/v/subnets/a"},
			"dns_servers":    []any{"10.0.0.1", "10.0.0.2"},
			"image_registry": map[string]any{"registry_url": "r.azurecr.io", "identity": "/subscriptions/s/resourceGroups/rg/providers/Microsoft.ManagedIdentity/userAssignedIdentities/i"},
			"cpu":            2.5, "memory": 4},
		{"entrypoint": nil, "image_registry": map[string]any{"registry_url": "ghcr.io", "username": "u", "password": "p"}},
	}
	names := []string{"conformance-flow", "My ETL Flow", "a very long flow name that goes on", "Café déjà vu", "don't stop",
		"1,000 rows", "fish &amp; chips", "__under__score__", "cut-at-a-dash-----x", "abcdefghijklmnopqr-s", "&#233;t&#xE9;"}

	var configs []map[string]any
	var want []map[string]any
	for i, vars := range cases {
		v := map[string]any{"subscription_id": testSubscription, "resource_group_name": testResourceGroup, "image": testImage}
		for k, x := range vars {
			v[k] = x
		}
		job := dispatchtest.RenderJob(t, PoolType, DefaultBaseJobTemplate(), v, dispatchtest.NewFlowRunID())
		configs = append(configs, job.Configuration)
		s, err := parseSpec(job.Configuration, Config{Location: "westeurope"})
		if err != nil {
			t.Fatalf("case %d: %v", i, err)
		}
		g, err := buildGroup(s, groupName(job.FlowName, job.FlowRunID, "0a1b2c3d"), nil)
		if err != nil {
			t.Fatalf("case %d: %v", i, err)
		}
		data, _ := json.Marshal(g)
		var m map[string]any
		json.Unmarshal(data, &m)
		delete(m, "tags")
		want = append(want, m)
	}
	payload, _ := json.Marshal(map[string]any{"configs": configs, "names": names})
	out, err := localstack.RunPython(t.Context(), fmt.Sprintf(differentialProgram, base64.StdEncoding.EncodeToString(payload)))
	if err != nil {
		t.Fatal(err)
	}
	var got struct {
		Resources []map[string]any `json:"resources"`
		Slugs     []string         `json:"slugs"`
		Short     []string         `json:"short"`
	}
	if err := json.Unmarshal(out, &got); err != nil {
		t.Fatalf("decode %s: %v", out, err)
	}
	for i, r := range got.Resources {
		name := want[i]["name"].(string)
		delete(r, "type")
		delete(r, "apiVersion")
		normalised := replaceStrings(r, map[string]string{
			"[parameters('container_group_name')]": name,
			"[parameters('container_name')]":       name,
			"[parameters('location')]":             "westeurope",
		}).(map[string]any)
		sortEnv(normalised)
		sortEnv(want[i])
		a, b := canonical(t, want[i]), canonical(t, normalised)
		if a != b {
			t.Errorf("case %d (%v): the backend's container group differs from prefect-azure's\n got: %s\nwant: %s", i, cases[i], a, b)
		}
	}
	for i, n := range names {
		if s := slugify(n, prefectSlugLength); s != got.Slugs[i] {
			t.Errorf("slugify(%q, 19) = %q, python-slugify gives %q", n, s, got.Slugs[i])
		}
		if s := slugify(n, maxSlugLength); s != got.Short[i] {
			t.Errorf("slugify(%q, 17) = %q, python-slugify gives %q", n, s, got.Short[i])
		}
	}
}

func replaceStrings(v any, repl map[string]string) any {
	switch x := v.(type) {
	case map[string]any:
		for k, e := range x {
			x[k] = replaceStrings(e, repl)
		}
	case []any:
		for i, e := range x {
			x[i] = replaceStrings(e, repl)
		}
	case string:
		if r, ok := repl[x]; ok {
			return r
		}
	}
	return v
}

func sortEnv(res map[string]any) {
	props, _ := res["properties"].(map[string]any)
	containers, _ := props["containers"].([]any)
	for _, c := range containers {
		cp, _ := c.(map[string]any)["properties"].(map[string]any)
		env, _ := cp["environmentVariables"].([]any)
		sort.Slice(env, func(i, j int) bool {
			return env[i].(map[string]any)["name"].(string) < env[j].(map[string]any)["name"].(string)
		})
	}
}

// canonical is v as JSON with sorted keys and numbers as float64.
func canonical(t *testing.T, v any) string {
	t.Helper()
	data, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	var x any
	if err := json.Unmarshal(data, &x); err != nil {
		t.Fatal(err)
	}
	data, _ = json.Marshal(x)
	return strings.TrimSpace(string(data))
}
