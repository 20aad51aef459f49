package provider

import (
	"reflect"
	"strings"
	"testing"

	"github.com/hashicorp/terraform-plugin-framework/attr"
	"github.com/hashicorp/terraform-plugin-framework/types"

	"github.com/pushpool/pushpool/dispatch/prefect"
	"github.com/pushpool/pushpool/provider/internal/jsonattr"
)

func decodeJSON(t *testing.T, doc string) any {
	t.Helper()
	if doc == "" {
		return nil
	}
	v, err := jsonattr.Decode(doc)
	if err != nil {
		t.Fatal(err)
	}
	return v
}

func TestParametersMatch(t *testing.T) {
	t.Parallel()
	schema := `{"type": "object", "properties": {"region": {"type": "string", "default": "eu"}, "n": {"type": "integer"}}}`
	tests := []struct {
		name               string
		configured, server string
		want               bool
	}{
		{"equal", `{"n": 1, "region": "us"}`, `{"region": "us", "n": 1.0}`, true},
		{"changed value", `{"n": 1}`, `{"n": 2}`, false},
		{"template resolved by the server", `{"label": {"__prefect_kind": "json", "value": "\"x\""}}`, `{"label": "x"}`, true},
		{"nested template", `{"cfg": {"a": [1, {"__prefect_kind": "jinja", "template": "{{ x }}"}]}}`, `{"cfg": {"a": [1, "y"]}}`, true},
		{"nested value still compared", `{"cfg": {"a": [1, {"__prefect_kind": "jinja"}]}}`, `{"cfg": {"a": [2, "y"]}}`, false},
		{"default filled in by the server", `{"n": 1}`, `{"n": 1, "region": "eu"}`, true},
		{"other value than the default", `{"n": 1}`, `{"n": 1, "region": "us"}`, false},
		{"key without a default added", `{}`, `{"n": 1}`, false},
		{"key removed on the server", `{"n": 1}`, `{}`, false},
		{"not an object", `[]`, `{}`, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			server, _ := decodeJSON(t, tt.server).(map[string]any)
			schemaObj, _ := decodeJSON(t, schema).(map[string]any)
			if got := parametersMatch(decodeJSON(t, tt.configured), server, schemaObj); got != tt.want {
				t.Errorf("parametersMatch(%s, %s) = %v, want %v", tt.configured, tt.server, got, tt.want)
			}
		})
	}
}

func TestParameterSchemasMatch(t *testing.T) {
	t.Parallel()
	tests := []struct {
		a, b string
		want bool
	}{
		{`{}`, `{"type": "object", "properties": {}}`, true},
		{`{}`, ``, true},
		{`{"properties": {}, "type": "object"}`, `{}`, true},
		{`{}`, `{"type": "object", "properties": {"x": {}}}`, false},
		{`{"type": "object", "properties": {"x": {"default": 1}}}`, `{"type": "object", "properties": {"x": {"default": 1.0}}}`, true},
		{`{"type": "object", "properties": {}, "required": []}`, `{}`, false},
	}
	for _, tt := range tests {
		if got := parameterSchemasMatch(decodeJSON(t, tt.a), decodeJSON(t, tt.b)); got != tt.want {
			t.Errorf("parameterSchemasMatch(%s, %s) = %v, want %v", tt.a, tt.b, got, tt.want)
		}
	}
}

func TestRRuleMatches(t *testing.T) {
	t.Parallel()
	tests := []struct {
		configured, server string
		want               bool
	}{
		{"FREQ=DAILY", "FREQ=DAILY", true},
		{"FREQ=DAILY;INTERVAL=1", "DTSTART:20200101T000000\nFREQ=DAILY;INTERVAL=1", true},
		{"RRULE:FREQ=MINUTELY;INTERVAL=5", "DTSTART:20261202T032000\nRRULE:FREQ=MINUTELY;INTERVAL=5", true},
		{"FREQ=DAILY", "DTSTART:20200101T000000\nFREQ=WEEKLY", false},
		{"DTSTART:20240101T000000\nFREQ=DAILY", "DTSTART:20200101T000000\nFREQ=DAILY", false},
		{"FREQ=DAILY", "FREQ=DAILY\nDTSTART:20200101T000000", false},
	}
	for _, tt := range tests {
		if got := rruleMatches(tt.configured, tt.server); got != tt.want {
			t.Errorf("rruleMatches(%q, %q) = %v, want %v", tt.configured, tt.server, got, tt.want)
		}
	}
}

func TestSameInstant(t *testing.T) {
	t.Parallel()
	tests := []struct {
		a, b string
		want bool
	}{
		{"2024-01-01T02:00:00+02:00", "2024-01-01T00:00:00Z", true},
		{"2024-01-01T00:00:00", "2024-01-01T00:00:00Z", true},
		{"2024-01-01T00:00:00.123456Z", "2024-01-01T00:00:00.123456+00:00", true},
		{"2024-01-01T00:00:00Z", "2024-01-01T00:00:01Z", false},
		{"yesterday", "yesterday", false},
	}
	for _, tt := range tests {
		if got := sameInstant(tt.a, tt.b); got != tt.want {
			t.Errorf("sameInstant(%q, %q) = %v, want %v", tt.a, tt.b, got, tt.want)
		}
	}
}

func TestParseScheduleImportID(t *testing.T) {
	t.Parallel()
	tests := []struct {
		id, dep, schedule string
		ok                bool
	}{
		{"d1,s1", "d1", "s1", true},
		{" d1 , s1 ", "d1", "s1", true},
		{"d1", "", "", false},
		{"d1,", "", "", false},
		{",s1", "", "", false},
		{"d1,s1,x", "", "", false},
	}
	for _, tt := range tests {
		dep, schedule, err := parseScheduleImportID(tt.id)
		if (err == nil) != tt.ok || dep != tt.dep || schedule != tt.schedule {
			t.Errorf("parseScheduleImportID(%q) = %q, %q, %v; want %q, %q, ok %v", tt.id, dep, schedule, err, tt.dep, tt.schedule, tt.ok)
		}
	}
}

func TestPullStep_roundTrip(t *testing.T) {
	t.Parallel()
	null := DeploymentPullStepModel{Env: types.MapNull(types.StringType)}
	with := func(f func(*DeploymentPullStepModel)) DeploymentPullStepModel {
		s := null
		f(&s)
		return s
	}
	tests := []struct {
		name string
		step DeploymentPullStepModel
		api  string
	}{
		{"git_clone", with(func(s *DeploymentPullStepModel) {
			s.Type, s.Repository, s.Branch, s.IncludeSubmodules = types.StringValue("git_clone"), types.StringValue("https://x/y"), types.StringValue("main"), types.BoolValue(true)
		}), `{"prefect.deployments.steps.git_clone": {"branch": "main", "include_submodules": true, "repository": "https://x/y"}}`},
		{"pull_from_s3", with(func(s *DeploymentPullStepModel) {
			s.Type, s.Bucket, s.Requires = types.StringValue("pull_from_s3"), types.StringValue("b"), types.StringValue("prefect-aws")
		}), `{"prefect_aws.deployments.steps.pull_from_s3": {"bucket": "b", "requires": "prefect-aws"}}`},
		{"run_shell_script", with(func(s *DeploymentPullStepModel) {
			s.Type, s.Script = types.StringValue("run_shell_script"), types.StringValue("make")
			s.Env = types.MapValueMust(types.StringType, map[string]attr.Value{"A": types.StringValue("1")})
		}), `{"prefect.deployments.steps.run_shell_script": {"env": {"A": "1"}, "script": "make"}}`},
		{"another step function", with(func(s *DeploymentPullStepModel) {
			s.Type, s.Directory = types.StringValue("acme.steps.fetch"), types.StringValue("/x")
		}), `{"acme.steps.fetch": {"directory": "/x"}}`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			got, err := tt.step.toAPI()
			if err != nil {
				t.Fatal(err)
			}
			if !jsonattr.EqualValues(got, decodeJSON(t, tt.api)) {
				t.Errorf("toAPI = %v, want %s", got, tt.api)
			}
			back, ignored, err := pullStepFromAPI(decodeJSON(t, tt.api).(map[string]any))
			if err != nil || len(ignored) != 0 {
				t.Fatalf("pullStepFromAPI: %v, ignored %v", err, ignored)
			}
			if !reflect.DeepEqual(back, tt.step) {
				t.Errorf("pullStepFromAPI = %+v, want %+v", back, tt.step)
			}
		})
	}
}

func TestPullStepFromAPI_unmanagedFields(t *testing.T) {
	t.Parallel()
	step, ignored, err := pullStepFromAPI(map[string]any{"prefect.deployments.steps.git_clone": map[string]any{
		"repository": "r", "id": "clone", "include_submodules": "yes"}})
	if err != nil || step.Type.ValueString() != "git_clone" || step.Repository.ValueString() != "r" {
		t.Fatalf("pullStepFromAPI = %+v, %v", step, err)
	}
	if strings.Join(ignored, ",") != "id,include_submodules" {
		t.Errorf("ignored = %v, want id and include_submodules (not a bool)", ignored)
	}
	if _, _, err := pullStepFromAPI(map[string]any{"a": map[string]any{}, "b": map[string]any{}}); err == nil {
		t.Error("pullStepFromAPI accepted a step with two functions")
	}
}

func TestPullStep_problems(t *testing.T) {
	t.Parallel()
	step := func(typ string, set func(*DeploymentPullStepModel)) DeploymentPullStepModel {
		s := DeploymentPullStepModel{Type: types.StringValue(typ), Env: types.MapNull(types.StringType)}
		if set != nil {
			set(&s)
		}
		return s
	}
	tests := []struct {
		name   string
		step   DeploymentPullStepModel
		fields []string
	}{
		{"complete", step("git_clone", func(s *DeploymentPullStepModel) { s.Repository = types.StringValue("r") }), nil},
		{"missing required", step("pull_from_s3", nil), []string{"bucket"}},
		{"field of another type", step("set_working_directory", func(s *DeploymentPullStepModel) {
			s.Directory, s.Bucket = types.StringValue("/x"), types.StringValue("b")
		}), []string{"bucket"}},
		{"requires is always allowed", step("pip_install_requirements", func(s *DeploymentPullStepModel) { s.Requires = types.StringValue("x") }), nil},
		{"unknown short type", step("git_pull", nil), []string{"type"}},
		{"a function takes anything", step("acme.steps.fetch", func(s *DeploymentPullStepModel) { s.Bucket = types.StringValue("b") }), nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			var got []string
			for _, p := range tt.step.problems() {
				got = append(got, p.field)
			}
			if !reflect.DeepEqual(got, tt.fields) {
				t.Errorf("problems on %v, want %v", got, tt.fields)
			}
		})
	}
}

func TestCheckPoolJobVariables(t *testing.T) {
	strict := `{"type": "object", "additionalProperties": false, "properties": {"cpu": {"type": "integer"}}}`
	tests := []struct {
		name, template, vars string
		err                  string
	}{
		{"empty template", `{}`, `{"cpu": "lots", "other": 1}`, ""},
		{"no template", ``, `{"cpu": 1}`, ""},
		{"variables schema only: checked as the server does", `{"variables": ` + strict + `}`, `{"cpu": "lots"}`, `want integer`},
		{"variables schema only, valid", `{"variables": ` + strict + `}`, `{"cpu": 2}`, ""},
		{"job_configuration without variables", `{"job_configuration": {"cpu": "{{ cpu }}"}}`, `{"cpu": "lots"}`, ""},
		{"full template, valid", `{"job_configuration": {"cpu": "{{ cpu }}"}, "variables": ` + strict + `}`, `{"cpu": 2}`, ""},
		{"full template, undefined variable", `{"job_configuration": {"cpu": "{{ cpu }}"}, "variables": ` + strict + `}`, `{"gpu": 1}`, `does not define it`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tmpl, _ := decodeJSON(t, tt.template).(map[string]any)
			vars, _ := decodeJSON(t, tt.vars).(map[string]any)
			pool := prefect.WorkPool{Name: "pool", BaseJobTemplate: tmpl}
			err := checkPoolJobVariables(t.Context(), nil, pool, "dep", vars)
			switch {
			case tt.err == "" && err != nil:
				t.Fatalf("unexpected error: %v", err)
			case tt.err != "" && (err == nil || !strings.Contains(err.Error(), tt.err)):
				t.Fatalf("error %v, want one containing %q", err, tt.err)
			}
		})
	}
}

func TestPlannedPools(t *testing.T) {
	p := newPlannedPools()
	if _, ok := p.lookup("a"); ok {
		t.Fatal("an empty record has pool a")
	}
	p.record("a", plannedTemplate{known: true, template: map[string]any{"variables": map[string]any{}}})
	p.record("b", plannedTemplate{})
	server := prefect.WorkPool{Name: "a", Type: "ecs", BaseJobTemplate: map[string]any{}}
	if got, ok := p.lookup("a"); !ok || !got.known || got.apply("a", &server).Type != "ecs" || got.apply("a", &server).BaseJobTemplate["variables"] == nil {
		t.Errorf("pool a: %+v, %v", got, ok)
	}
	if got, ok := p.lookup("b"); !ok || got.known {
		t.Errorf("pool b: %+v, %v; want an unknown template", got, ok)
	}
	p.forget("a")
	if _, ok := p.lookup("a"); ok {
		t.Error("pool a is still recorded after forget")
	}
	var none *plannedPools // resources configured without the provider's data record nothing
	none.record("a", plannedTemplate{known: true})
	if _, ok := none.lookup("a"); ok {
		t.Error("a nil record has pool a")
	}
}
