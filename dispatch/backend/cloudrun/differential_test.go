package cloudrun

import (
	"encoding/base64"
	"encoding/json"
	"fmt"
	"reflect"
	"slices"
	"testing"

	"github.com/pushpool/pushpool/dispatch/dispatchtest"
	"github.com/pushpool/pushpool/internal/localstack"
)

// preparePython is what prefect-gcp's
// CloudRunWorkerJobV2Configuration.prepare_for_flow_run makes of each
// configuration's job_body. The configurations come already through the
// base preparation (env, labels, name, command), which pushpool's template
// package reproduces and tests, so the base step is patched out here; so is
// the credentials block's lookup of Application Default Credentials.
const preparePython = `import base64, json, uuid
from unittest import mock
from prefect.client.schemas.objects import FlowRun
from prefect.workers.base import BaseJobConfiguration
from prefect_gcp.credentials import GcpCredentials
from prefect_gcp.workers.cloud_run_v2 import CloudRunWorkerJobV2Configuration

configs = json.loads(base64.b64decode(%q))
out = []
with mock.patch.object(GcpCredentials, "block_initialization", lambda self: None), \
     mock.patch.object(BaseJobConfiguration, "prepare_for_flow_run", lambda self, **kw: None):
    for cfg in configs:
        c = CloudRunWorkerJobV2Configuration(**cfg)
        c.prepare_for_flow_run(flow_run=FlowRun(id=uuid.uuid4(), flow_id=uuid.uuid4(), name="differential"))
        out.append(c.job_body)
print(json.dumps(out))
`

// TestPrepareJobBody_matchesPrefectGCP checks that the job body pushpool
// creates is the one prefect-gcp's worker would create from the same job
// configuration. The legitimate differences, removed before comparing:
//
//   - the container env is sorted by name (Go maps keep no order; Python
//     keeps settings, then attribution, then template env order);
//   - the job carries pushpool's labels pushpool-io-managed,
//     pushpool-io-attempt and, with keep_job, pushpool-io-keep-job (used by
//     Start, Find, Status, Stop and Sweep), and its execution template
//     pushpool-io-attempt;
//   - the job carries a start_execution_token (checked here; it is not in
//     the JSON body).
//
// The job name (12 hex digits of the flow run id and the attempt key
// instead of 7 random hex digits) is not part of the body: it is the
// CreateJob job_id.
func TestPrepareJobBody_matchesPrefectGCP(t *testing.T) {
	const run = "6c1f0e2a-4b3d-4f5e-8a9b-0c1d2e3f4a5b"
	cases := []struct {
		name string
		vars map[string]any
	}{
		{"defaults", map[string]any{"region": testRegion}},
		{"everything", map[string]any{
			"region": "europe-west1", "image": "us-docker.pkg.dev/p/r/flows:1.2",
			"command": `python -m flows.main --name "nightly run"`, "args": []any{"--verbose", "x y"},
			"env":    map[string]any{"ZED": "last", "ALPHA": "first", "PREFECT_API_KEY": "plaintext", "PREFECT_API_AUTH_STRING": "user:pw"},
			"labels": map[string]any{"Team.Name/Owner": "Data Eng", "7up": "drop-leading-digits"},
			"env_from_secrets": map[string]any{
				"DB_PASSWORD": map[string]any{"secret": "db-password", "version": "latest"},
				"A_TOKEN":     map[string]any{"secret": "a-token", "version": "3"},
			},
			"prefect_api_key_secret":         map[string]any{"secret": "prefect-api-key", "version": "latest"},
			"prefect_api_auth_string_secret": map[string]any{"secret": "prefect-auth", "version": "2"},
			"cloudsql_instances":             []any{"p:europe-west1:db1", "p:europe-west1:db2"},
			"keep_job":                       true, "launch_stage": "GA", "max_retries": 2, "cpu": "2000m", "memory": "2Gi",
			"timeout": 3600, "vpc_connector_name": "projects/p/locations/europe-west1/connectors/c1",
			"service_account_name": "runner@p.iam.gserviceaccount.com",
		}},
		{"empty command uses the image's entrypoint", map[string]any{"region": testRegion, "command": ""}},
	}
	var configs []map[string]any
	for _, c := range cases {
		configs = append(configs, dispatchtest.RenderJob(t, PoolType, DefaultBaseJobTemplate(), c.vars, run).Configuration)
	}
	raw, err := json.Marshal(configs)
	if err != nil {
		t.Fatal(err)
	}
	out, err := localstack.RunPython(t.Context(), fmt.Sprintf(preparePython, base64.StdEncoding.EncodeToString(raw)))
	if err != nil {
		t.Fatal(err)
	}
	var want []map[string]any
	if err := json.Unmarshal(out, &want); err != nil {
		t.Fatalf("decode prefect-gcp's job bodies: %v\n%s", err, out)
	}
	for i, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			attempt := dispatchtest.NewAttempt(run)
			s, err := parseSpec(configs[i], attempt, Config{Project: testProject})
			if err != nil {
				t.Fatal(err)
			}
			if s.job.GetStartExecutionToken() != attempt.Key() {
				t.Errorf("the job's start_execution_token is %q, want the attempt key %q", s.job.GetStartExecutionToken(), attempt.Key())
			}
			got := normalize(t, s.body)
			labels := got["labels"].(map[string]any)
			if labels[LabelManaged] != "true" {
				t.Errorf("the job lacks the label %s=true", LabelManaged)
			}
			delete(labels, LabelManaged)
			tlabels := got["template"].(map[string]any)["labels"].(map[string]any)
			for where, l := range map[string]map[string]any{"job": labels, "execution template": tlabels} {
				if l[LabelAttempt] != attempt.Token() {
					t.Errorf("the %s's label %s is %v, want %s", where, LabelAttempt, l[LabelAttempt], attempt.Token())
				}
				delete(l, LabelAttempt)
			}
			if keep, _ := c.vars["keep_job"].(bool); keep != (labels[LabelKeepJob] == "true") {
				t.Errorf("keep_job is %v but the job's %s label is %v", keep, LabelKeepJob, labels[LabelKeepJob])
			}
			delete(labels, LabelKeepJob)
			exp := normalize(t, want[i])
			sortEnv(exp)
			sortEnv(got)
			if !reflect.DeepEqual(got, exp) {
				g, _ := json.MarshalIndent(got, "", " ")
				w, _ := json.MarshalIndent(exp, "", " ")
				t.Errorf("job body differs from prefect-gcp's\npushpool:\n%s\nprefect-gcp:\n%s", g, w)
			}
			if _, err := toProto(s.body); err != nil {
				t.Errorf("the job body does not map onto runpb.Job: %v", err)
			}
		})
	}
}

func normalize(t *testing.T, v any) map[string]any {
	t.Helper()
	raw, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	var m map[string]any
	if err := json.Unmarshal(raw, &m); err != nil {
		t.Fatal(err)
	}
	return m
}

// sortEnv orders containers[0].env: plain values by name, then secrets in
// the order they were added.
func sortEnv(body map[string]any) {
	c := body["template"].(map[string]any)["template"].(map[string]any)["containers"].([]any)[0].(map[string]any)
	env, _ := c["env"].([]any)
	slices.SortStableFunc(env, func(a, b any) int {
		am, bm := a.(map[string]any), b.(map[string]any)
		_, as := am["valueSource"]
		_, bs := bm["valueSource"]
		switch {
		case as && bs:
			return 0
		case as:
			return 1
		case bs:
			return -1
		}
		return cmpString(am["name"].(string), bm["name"].(string))
	})
}

func cmpString(a, b string) int {
	switch {
	case a < b:
		return -1
	case a > b:
		return 1
	}
	return 0
}
