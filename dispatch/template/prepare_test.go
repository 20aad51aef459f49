package template

import (
	"encoding/json"
	"reflect"
	"testing"
	"time"
)

func testRunInfo() RunInfo {
	return RunInfo{
		FlowRunID: "fr-1", FlowRunName: "crimson-otter",
		FlowID: "f-1", FlowName: "etl",
		DeploymentID: "d-1", DeploymentName: "nightly",
		DeploymentUpdated: time.Date(2024, 6, 1, 12, 30, 0, 123456789, time.FixedZone("CEST", 2*3600)),
		WorkPoolID:        "wp-1", WorkPoolName: "pool",
		WorkerName: "dispatcher", WorkerID: "w-1",
		SettingsEnv: map[string]string{"PREFECT_API_URL": "http://api.test/api", "PREFECT_API_KEY": "pnu_x"},
		FlowRun:     map[string]any{"id": "fr-1", "name": "crimson-otter", "tags": []any{"a"}, "run_count": json.Number("0")},
		Flow:        map[string]any{"id": "f-1", "name": "etl"},
		Env: func(name string) (string, bool) {
			if name == "REGION" {
				return "eu", true
			}
			return "", false
		},
	}
}

func TestPrepare(t *testing.T) {
	t.Parallel()
	config := map[string]any{
		"command": nil,
		"env":     map[string]any{"PREFECT_API_KEY": nil, "OWN": "1", "PREFECT__FLOW_RUN_ID": "mine"},
		"labels":  map[string]any{"team": "data", "prefect.io/flow-name": "custom"},
		"name":    "{{ ctx.flow.name }}-{{ ctx.flow_run.name }}-{{ $REGION }}",
		"image":   "app",
	}
	got := Prepare(config, testRunInfo())
	want := map[string]any{
		"command": DefaultCommand,
		"env": map[string]any{
			"PREFECT_API_URL":          "http://api.test/api",
			"PREFECT__FLOW_RUN_ID":     "mine",
			"PREFECT__WORKER_ID":       "w-1",
			"PREFECT__WORKER_NAME":     "dispatcher",
			"PREFECT__FLOW_ID":         "f-1",
			"PREFECT__FLOW_NAME":       "etl",
			"PREFECT__DEPLOYMENT_ID":   "d-1",
			"PREFECT__DEPLOYMENT_NAME": "nightly",
			"OWN":                      "1",
		},
		"labels": map[string]any{
			"prefect.io/flow-run-id":        "fr-1",
			"prefect.io/flow-run-name":      "crimson-otter",
			"prefect.io/version":            PrefectVersion,
			"prefect.io/work-pool-name":     "pool",
			"prefect.io/work-pool-id":       "wp-1",
			"prefect.io/worker-name":        "dispatcher",
			"prefect.io/flow-id":            "f-1",
			"prefect.io/flow-name":          "custom",
			"prefect.io/deployment-id":      "d-1",
			"prefect.io/deployment-name":    "nightly",
			"prefect.io/deployment-updated": "2024-06-01T10:30:00.123456+00:00",
			"team":                          "data",
		},
		"name":  "etl-crimson-otter-eu",
		"image": "app",
	}
	if !reflect.DeepEqual(got, want) {
		g, _ := json.MarshalIndent(got, "", " ")
		t.Errorf("Prepare =\n%s", g)
	}
	if config["command"] != nil || config["name"] != "{{ ctx.flow.name }}-{{ ctx.flow_run.name }}-{{ $REGION }}" {
		t.Error("Prepare modified its input")
	}
}

func TestPrepare_Name(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		in   any
		want any
	}{
		{"null falls back to the flow run name", nil, "crimson-otter"},
		{"empty falls back", "", "crimson-otter"},
		{"plain kept", "job", "job"},
		{"whole value keeps its type", "{{ ctx.flow_run.tags }}", []any{"a"}},
		{"falsy value falls back", "{{ ctx.flow_run.run_count }}", "crimson-otter"},
		{"unknown whole placeholder keeps the template", "{{ ctx.flow_run.nope }}", "{{ ctx.flow_run.nope }}"},
		{"unknown embedded placeholder is empty", "x{{ ctx.flow_run.nope }}", "x"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			got := Prepare(map[string]any{"name": tt.in}, testRunInfo())["name"]
			if !reflect.DeepEqual(got, tt.want) {
				t.Errorf("name = %#v, want %#v", got, tt.want)
			}
		})
	}
}

func TestPrepare_Absent(t *testing.T) {
	t.Parallel()
	got := Prepare(nil, RunInfo{FlowRunID: "fr", FlowRunName: "run", PrefectVersion: "9.9.9"})
	want := map[string]any{
		"command": DefaultCommand,
		"env":     map[string]any{"PREFECT__FLOW_RUN_ID": "fr"},
		"labels":  map[string]any{"prefect.io/flow-run-id": "fr", "prefect.io/flow-run-name": "run", "prefect.io/version": "9.9.9"},
		"name":    "run",
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("Prepare = %#v, want %#v", got, want)
	}
}

func TestPyISOFormat(t *testing.T) {
	t.Parallel()
	tests := []struct {
		in   time.Time
		want string
	}{
		{time.Date(2024, 1, 2, 3, 4, 5, 0, time.UTC), "2024-01-02T03:04:05+00:00"},
		{time.Date(2024, 1, 2, 3, 4, 5, 1000, time.UTC), "2024-01-02T03:04:05.000001+00:00"},
		{time.Date(2024, 1, 2, 3, 4, 5, 999, time.UTC), "2024-01-02T03:04:05+00:00"},
		{time.Date(2024, 1, 2, 1, 0, 0, 0, time.FixedZone("X", 3*3600)), "2024-01-01T22:00:00+00:00"},
	}
	for _, tt := range tests {
		if got := pyISOFormat(tt.in); got != tt.want {
			t.Errorf("pyISOFormat(%v) = %q, want %q", tt.in, got, tt.want)
		}
	}
}
