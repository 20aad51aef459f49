package cloudrun

import (
	"encoding/base64"
	"encoding/json"
	"fmt"
	"reflect"
	"strings"
	"testing"

	"github.com/pushpool/pushpool/internal/localstack"
)

func TestJobName(t *testing.T) {
	t.Parallel()
	const run, key = "3f2a9c1e-7b4d-4e8a-9f10-2c3d4e5f6a7b", "0a1b2c3d"
	const suffix = "-3f2a9c1e7b4d-" + key
	tests := []struct {
		name, flowRunName, flowRunID, want string
	}{
		{"plain", "crimson-okapi", run, "crimson-okapi" + suffix},
		{"upper case and spaces", "Nightly ETL Run", run, "nightly-etl-run" + suffix},
		{"leading digits", "42-answers", run, "answers" + suffix},
		{"empty", "", run, "flow-run" + suffix},
		{"only symbols", "***", run, "flow-run" + suffix},
		{"accents", "Café déjà vu", run, "cafe-deja-vu" + suffix},
		{"long", strings.Repeat("abcdefghij", 10), run, strings.Repeat("abcdefghij", 3) + "ab" + suffix},
		{"cut at a hyphen", strings.Repeat("a", 31) + "-b", run, strings.Repeat("a", 31) + suffix},
		{"not a uuid", "x", "run-1", "x-" + runSuffix("run-1") + "-" + key},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := JobName(tt.flowRunName, tt.flowRunID, key)
			if got != tt.want {
				t.Errorf("JobName(%q, %q, %q) = %q, want %q", tt.flowRunName, tt.flowRunID, key, got, tt.want)
			}
			if !validJobName(got) || len(got)+len(key) > maxJobAndToken {
				t.Errorf("JobName(%q, %q, %q) = %q breaks Cloud Run's naming rules for a job with a start_execution_token of %d characters", tt.flowRunName, tt.flowRunID, key, got, len(key))
			}
		})
	}
	if JobName("same", run, key) != JobName("same", run, key) ||
		JobName("same", run, key) == JobName("same", "4f2a9c1e-7b4d-4e8a-9f10-2c3d4e5f6a7b", key) ||
		JobName("same", run, key) == JobName("same", run, "0a1b2c3e") {
		t.Error("JobName is not a function of the flow run id and the attempt key")
	}
}

// TestSlugify_matchesPrefectGCP compares slugify with prefect_gcp's
// slugify_name (python-slugify) on names Latin scripts produce.
func TestSlugify_matchesPrefectGCP(t *testing.T) {
	names := []string{
		"crimson-okapi", "Nightly ETL Run", "Café déjà vu", "Straße Æble Øre", "it's a flow",
		"12-angry-men", "a__b..c", "   --x--  ", "Ünïcödé FLOW_run #42", "flow, 1,000 runs", "a&amp;b",
		strings.Repeat("xy-", 30), "deploy/flow:v1.2", "",
	}
	raw, _ := json.Marshal(names)
	out, err := localstack.RunPython(t.Context(), fmt.Sprintf(`import base64, json
from prefect_gcp.utilities import slugify_name
names = json.loads(base64.b64decode(%q))
print(json.dumps([slugify_name(n, max_length=50) or "" for n in names]))
`, base64.StdEncoding.EncodeToString(raw)))
	if err != nil {
		t.Fatal(err)
	}
	var want []string
	if err := json.Unmarshal(out, &want); err != nil {
		t.Fatalf("decode %s: %v", out, err)
	}
	for i, n := range names {
		if got := slugify(n, 50); got != want[i] {
			t.Errorf("slugify(%q) = %q, prefect-gcp gives %q", n, got, want[i])
		}
	}
}

func TestSanitizeLabel(t *testing.T) {
	t.Parallel()
	tests := []struct {
		key, value, wantKey, wantValue string
		ok                             bool
	}{
		{"prefect.io/flow-run-id", "3F2A-9c", "prefect-io-flow-run-id", "3f2a-9c", true},
		{"Team", "Data Eng", "team", "data-eng", true},
		{"1st_label", "v", "st_label", "v", true},
		{"123", "v", "", "", false},
		{"k", strings.Repeat("v", 70), "k", strings.Repeat("v", 63), true},
		{strings.Repeat("k", 70), "", strings.Repeat("k", 63), "", true},
		{"prefect.io/deployment-updated", "2026-01-02T03:04:05.123456+00:00", "prefect-io-deployment-updated", "2026-01-02t03-04-05-123456-00-00", true},
	}
	for _, tt := range tests {
		k, v, ok := sanitizeLabel(tt.key, tt.value)
		if ok != tt.ok || (ok && (k != tt.wantKey || v != tt.wantValue)) {
			t.Errorf("sanitizeLabel(%q, %q) = %q, %q, %v; want %q, %q, %v", tt.key, tt.value, k, v, ok, tt.wantKey, tt.wantValue, tt.ok)
		}
	}
}

func TestMergeLabels(t *testing.T) {
	t.Parallel()
	got := mergeLabels(map[string]string{"prefect.io/flow-run-id": "abc", "Team": "X"}, map[string]string{"team": "from-body", "own": "1"})
	want := map[string]string{"prefect-io-flow-run-id": "abc", "team": "from-body", "own": "1"}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("mergeLabels = %v, want %v (labels in the job body win)", got, want)
	}
	many := map[string]string{"prefect.io/flow-run-id": "abc"}
	for i := range 70 {
		many[fmt.Sprintf("l%02d", i)] = "v"
	}
	got = mergeLabels(many, map[string]string{"own": "1"})
	if len(got) != maxLabels || got["own"] != "1" || got["prefect-io-flow-run-id"] != "abc" || got["l69"] != "" {
		t.Errorf("mergeLabels over the limit kept %d labels (%v); want 64 with own, the flow run id and not the last ones", len(got), got)
	}
}

func TestParseExecutionID(t *testing.T) {
	t.Parallel()
	tests := []struct {
		id      string
		want    ExecutionID
		wantErr string
	}{
		{id: "projects/p1/locations/us-east1/jobs/j-0123/executions/j-0123-abcde",
			want: ExecutionID{Project: "p1", Region: "us-east1", Job: "j-0123", Execution: "j-0123-abcde"}},
		{id: "crimson-okapi-3f2a9c1", wantErr: "bare Cloud Run job name"},
		{id: "projects/p1/locations/us-east1/jobs/j-0123", wantErr: "not a Cloud Run execution name"},
		{id: "Not A Job", wantErr: "not a Cloud Run execution name"},
		{id: "", wantErr: "not a Cloud Run execution name"},
	}
	for _, tt := range tests {
		got, err := ParseExecutionID(tt.id)
		switch {
		case tt.wantErr != "":
			if err == nil || !strings.Contains(err.Error(), tt.wantErr) || !strings.Contains(err.Error(), fmt.Sprintf("%q", tt.id)) {
				t.Errorf("ParseExecutionID(%q) error = %v, want one naming the id and saying %q", tt.id, err, tt.wantErr)
			}
		case err != nil:
			t.Errorf("ParseExecutionID(%q): %v", tt.id, err)
		case got != tt.want || got.String() != tt.id:
			t.Errorf("ParseExecutionID(%q) = %+v (%s), want %+v", tt.id, got, got, tt.want)
		}
	}
}

func TestShlexSplit(t *testing.T) {
	t.Parallel()
	tests := []struct {
		in   string
		want []string
		err  bool
	}{
		{in: "prefect flow-run execute", want: []string{"prefect", "flow-run", "execute"}},
		{in: `python -c 'print("a b")'`, want: []string{"python", "-c", `print("a b")`}},
		{in: `a "b \" c" d\ e`, want: []string{"a", `b " c`, "d e"}},
		{in: `"a\nb"`, want: []string{`a\nb`}},
		{in: "", want: []string{}},
		{in: `''`, want: []string{""}},
		{in: `"open`, err: true},
	}
	for _, tt := range tests {
		got, err := shlexSplit(tt.in)
		if (err != nil) != tt.err || (!tt.err && !reflect.DeepEqual(got, tt.want)) {
			t.Errorf("shlexSplit(%q) = %q, %v; want %q (error %v)", tt.in, got, err, tt.want, tt.err)
		}
	}
}
