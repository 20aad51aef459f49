package template

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"reflect"
	"strings"
	"testing"
)

// fakeResolver serves variables and block documents from memory and counts
// the lookups.
type fakeResolver struct {
	vars   map[string]any
	byName map[string]map[string]any // "slug/name"
	byID   map[string]map[string]any
	err    error
	calls  map[string]int
}

var _ Resolver = (*fakeResolver)(nil)

func (f *fakeResolver) count(key string) {
	if f.calls == nil {
		f.calls = map[string]int{}
	}
	f.calls[key]++
}

func (f *fakeResolver) Variable(_ context.Context, name string) (any, bool, error) {
	f.count("var:" + name)
	if f.err != nil {
		return nil, false, f.err
	}
	v, ok := f.vars[name]
	return v, ok, nil
}

func (f *fakeResolver) BlockDocumentByID(_ context.Context, id string) (map[string]any, error) {
	f.count("id:" + id)
	if f.err != nil {
		return nil, f.err
	}
	d, ok := f.byID[id]
	if !ok {
		return nil, ErrNotFound
	}
	return d, nil
}

func (f *fakeResolver) BlockDocumentByName(_ context.Context, slug, name string) (map[string]any, error) {
	f.count("name:" + slug + "/" + name)
	if f.err != nil {
		return nil, f.err
	}
	d, ok := f.byName[slug+"/"+name]
	if !ok {
		return nil, ErrNotFound
	}
	return d, nil
}

func newFakeResolver() *fakeResolver {
	return &fakeResolver{
		vars: map[string]any{"tag": "v7", "n": json.Number("3")},
		byName: map[string]map[string]any{
			"secret/pw":  {"value": "hunter2"},
			"config/app": {"url": "https://x.test", "nested": map[string]any{"k": "v"}},
		},
		byID: map[string]map[string]any{"11111111-1111-4111-8111-111111111111": {"value": "by-id"}},
	}
}

// mustJSON decodes a JSON object the way callers must: with UseNumber.
func mustJSON(t *testing.T, s string) map[string]any {
	t.Helper()
	dec := json.NewDecoder(strings.NewReader(s))
	dec.UseNumber()
	var m map[string]any
	if err := dec.Decode(&m); err != nil {
		t.Fatalf("decode %s: %v", s, err)
	}
	return m
}

func TestRender(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name       string
		template   string
		deployment string
		flowRun    string
		want       string
	}{
		{
			name:     "defaults and generic fields",
			template: `{"job_configuration": {"image": "{{ image }}", "cpu": "{{ cpu }}", "gone": "{{ nothing }}"}, "variables": {"properties": {"image": {"default": "app"}, "cpu": {"default": 1.0}, "nothing": {"default": null}}}}`,
			want:     `{"image": "app", "cpu": 1.0, "command": null, "env": {}, "labels": {}, "name": null}`,
		},
		{
			name:       "env merged at every level",
			template:   `{"job_configuration": {"env": {"A": "conf", "B": "conf"}}, "variables": {"properties": {"env": {"default": {"B": "default", "C": "default"}}}}}`,
			deployment: `{"env": {"C": "dep", "D": "dep"}}`,
			flowRun:    `{"env": {"D": "run", "E": 5}}`,
			want:       `{"env": {"A": "conf", "B": "default", "C": "dep", "D": "run", "E": "5"}, "command": null, "labels": {}, "name": null}`,
		},
		{
			name:       "flow run replaces non-env variables",
			template:   `{"job_configuration": {"image": "{{ image }}", "cpu": "{{ cpu }}"}, "variables": {"properties": {}}}`,
			deployment: `{"image": "dep", "cpu": 1}`,
			flowRun:    `{"image": "run"}`,
			want:       `{"image": "run", "cpu": 1, "command": null, "env": {}, "labels": {}, "name": null}`,
		},
		{
			name:     "dotted keys nest and the nested format wins",
			template: `{"job_configuration": {"env": "{{ env }}", "spec": "{{ spec }}"}, "variables": {"properties": {}}}`,
			flowRun:  `{"env.A": "dotted", "env.B": "dotted", "env": {"A": "nested"}, "spec.cpu": 2}`,
			want:     `{"env": {"A": "nested", "B": "dotted"}, "spec": {"cpu": 2}, "command": null, "labels": {}, "name": null}`,
		},
		{
			name:     "blocks then variables",
			template: `{"job_configuration": {"pw": "{{ prefect.blocks.secret.pw }}", "url": "{{ prefect.blocks.config.app.url }}/{{ prefect.variables.tag }}", "n": "{{ prefect.variables.n }}", "ref": {"$ref": {"block_document_id": "11111111-1111-4111-8111-111111111111"}}, "none": "{{ prefect.variables.none }}"}, "variables": {"properties": {}}}`,
			want:     `{"pw": "hunter2", "url": "https://x.test/v7", "n": 3, "ref": {"value": "by-id"}, "none": "", "command": null, "env": {}, "labels": {}, "name": null}`,
		},
		{
			name:     "empty command is null",
			template: `{"job_configuration": {"command": "{{ command }}"}, "variables": {"properties": {"command": {"default": ""}}}}`,
			want:     `{"command": null, "env": {}, "labels": {}, "name": null}`,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			in := Input{BaseJobTemplate: mustJSON(t, tt.template)}
			if tt.deployment != "" {
				in.DeploymentJobVariables = mustJSON(t, tt.deployment)
			}
			if tt.flowRun != "" {
				in.FlowRunJobVariables = mustJSON(t, tt.flowRun)
			}
			before, _ := json.Marshal(in)
			got, err := Render(context.Background(), in, newFakeResolver())
			if err != nil {
				t.Fatalf("Render: %v", err)
			}
			if want := mustJSON(t, tt.want); !reflect.DeepEqual(canonical(got), canonical(want)) {
				g, _ := json.Marshal(got)
				t.Errorf("Render = %s\nwant     %s", g, tt.want)
			}
			if after, _ := json.Marshal(in); !bytes.Equal(before, after) {
				t.Error("Render modified its input")
			}
		})
	}
}

func TestRender_Errors(t *testing.T) {
	t.Parallel()
	apiDown := errors.New("connection refused")
	tests := []struct {
		name     string
		template string
		flowRun  string
		failing  error
		check    func(*testing.T, error)
	}{
		{
			name:     "missing block wraps ErrNotFound and names the placeholder",
			template: `{"job_configuration": {"pw": "{{ prefect.blocks.secret.nope }}"}, "variables": {}}`,
			check: func(t *testing.T, err error) {
				var re *ResolveError
				if !errors.As(err, &re) || re.Kind != BlockDocument || re.Placeholder != "{{ prefect.blocks.secret.nope }}" {
					t.Errorf("error = %v, want a *ResolveError for the block placeholder", err)
				}
				if !errors.Is(err, ErrNotFound) || !strings.Contains(err.Error(), "deleted") {
					t.Errorf("error = %v, want ErrNotFound and a hint", err)
				}
			},
		},
		{
			name:     "resolver failure is wrapped for variables",
			template: `{"job_configuration": {"tag": "x-{{ prefect.variables.tag }}"}, "variables": {}}`,
			failing:  apiDown,
			check: func(t *testing.T, err error) {
				var re *ResolveError
				if !errors.As(err, &re) || re.Kind != Variable || !errors.Is(err, apiDown) {
					t.Errorf("error = %v, want a *ResolveError wrapping the resolver's error", err)
				}
			},
		},
		{
			name:     "keypath miss does not leak the secret",
			template: `{"job_configuration": {"pw": "{{ prefect.blocks.secret.pw.nope }}", "other": "{{ prefect.blocks.secret.pw }}"}, "variables": {}}`,
			check: func(t *testing.T, err error) {
				if err == nil || strings.Contains(err.Error(), "hunter2") {
					t.Errorf("error = %v, want an error without the secret", err)
				}
			},
		},
		{
			name:     "object block inside a string",
			template: `{"job_configuration": {"x": "a{{ prefect.blocks.config.app }}"}, "variables": {}}`,
			check: func(t *testing.T, err error) {
				if err == nil || strings.Contains(err.Error(), "https://x.test") {
					t.Errorf("error = %v, want an error without the block's data", err)
				}
			},
		},
		{
			name:     "label that is not a string",
			template: `{"job_configuration": {"labels": {"a": "{{ n }}"}}, "variables": {"properties": {"n": {"default": 1}}}}`,
			check:    wantConfigError("labels"),
		},
		{
			name:     "env that is not an object",
			template: `{"job_configuration": {"env": "{{ env }}"}, "variables": {}}`,
			flowRun:  `{"env": "A=1"}`,
			check:    wantConfigError("env"),
		},
		{
			name:     "conflicting dotted keys",
			template: `{"job_configuration": {}, "variables": {}}`,
			flowRun:  `{"a.b": 1, "a.b.c": 2}`,
			check:    wantConfigError("a.b.c"),
		},
		{
			name:     "no job_configuration",
			template: `{"variables": {}}`,
			check:    wantConfigError("job_configuration"),
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			r := newFakeResolver()
			r.err = tt.failing
			in := Input{BaseJobTemplate: mustJSON(t, tt.template)}
			if tt.flowRun != "" {
				in.FlowRunJobVariables = mustJSON(t, tt.flowRun)
			}
			_, err := Render(context.Background(), in, r)
			if err == nil {
				t.Fatal("Render returned no error")
			}
			tt.check(t, err)
		})
	}
}

func wantConfigError(field string) func(*testing.T, error) {
	return func(t *testing.T, err error) {
		t.Helper()
		var ce *ConfigError
		if !errors.As(err, &ce) || ce.Field != field {
			t.Errorf("error = %v, want a *ConfigError for %q", err, field)
		}
	}
}

func TestRender_LooksUpOncePerName(t *testing.T) {
	t.Parallel()
	r := newFakeResolver()
	in := Input{BaseJobTemplate: mustJSON(t, `{"job_configuration": {"a": "{{ prefect.blocks.secret.pw }}", "b": "x{{ prefect.blocks.secret.pw }}", "c": ["{{ prefect.variables.tag }}", "{{ prefect.variables.tag }}/{{ prefect.variables.gone }}"], "d": "{{ prefect.variables.gone }}"}, "variables": {}}`)}
	if _, err := Render(context.Background(), in, r); err != nil {
		t.Fatal(err)
	}
	want := map[string]int{"name:secret/pw": 1, "var:tag": 1, "var:gone": 1}
	if !reflect.DeepEqual(r.calls, want) {
		t.Errorf("lookups = %v, want %v", r.calls, want)
	}
}

func TestRender_NilResolver(t *testing.T) {
	t.Parallel()
	in := Input{BaseJobTemplate: mustJSON(t, `{"job_configuration": {"a": "{{ a }}"}, "variables": {"properties": {"a": {"default": "x"}}}}`)}
	if _, err := Render(context.Background(), in, nil); err != nil {
		t.Errorf("Render without placeholders needing a resolver: %v", err)
	}
	in = Input{BaseJobTemplate: mustJSON(t, `{"job_configuration": {"a": "{{ prefect.variables.a }}"}, "variables": {}}`)}
	var re *ResolveError
	if _, err := Render(context.Background(), in, nil); !errors.As(err, &re) {
		t.Errorf("Render with a variable and no resolver: %v, want a *ResolveError", err)
	}
}

func TestMergeJobVariables(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name                string
		deployment, flowRun string
		want                string
		wantErr             bool
	}{
		{"flow run wins", `{"a": 1, "b": 1}`, `{"b": 2}`, `{"a": 1, "b": 2}`, false},
		{"env merged", `{"env": {"A": "1", "B": "1"}}`, `{"env": {"B": "2"}}`, `{"env": {"A": "1", "B": "2"}}`, false},
		{"env pairs", `{"env": {"A": "1"}}`, `{"env": [["B", "2"], "CD"]}`, `{"env": {"A": "1", "B": "2", "C": "D"}}`, false},
		{"empty string env is a no-op", `{"env": {"A": "1"}}`, `{"env": ""}`, `{"env": {"A": "1"}}`, false},
		{"deployment env not an object", `{"env": null}`, `{"env": {"B": "2"}}`, `{"env": {"B": "2"}}`, false},
		{"no deployment", ``, `{"env": {"B": "2"}}`, `{"env": {"B": "2"}}`, false},
		{"flow run env a string", `{"env": {"A": "1"}}`, `{"env": "A=1"}`, ``, true},
		{"flow run env null", `{"env": {"A": "1"}}`, `{"env": null}`, ``, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			var dep map[string]any
			if tt.deployment != "" {
				dep = mustJSON(t, tt.deployment)
			}
			got, err := mergeJobVariables(dep, mustJSON(t, tt.flowRun))
			if (err != nil) != tt.wantErr {
				t.Fatalf("mergeJobVariables error = %v, wantErr %v", err, tt.wantErr)
			}
			if !tt.wantErr && !reflect.DeepEqual(canonical(got), canonical(mustJSON(t, tt.want))) {
				t.Errorf("mergeJobVariables = %v, want %s", got, tt.want)
			}
		})
	}
}

func TestConfigError_Error(t *testing.T) {
	t.Parallel()
	if got := (&ConfigError{Field: "labels", Reason: "is array"}).Error(); got != `invalid job configuration field "labels": is array` {
		t.Errorf("Error() = %q", got)
	}
	if got := (&ConfigError{Reason: "broken"}).Error(); got != "invalid job configuration: broken" {
		t.Errorf("Error() = %q", got)
	}
}
