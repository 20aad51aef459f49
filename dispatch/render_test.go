package dispatch_test

import (
	"encoding/json"
	"errors"
	"strings"
	"testing"

	"github.com/pushpool/pushpool/dispatch"
	"github.com/pushpool/pushpool/dispatch/prefect"
	"github.com/pushpool/pushpool/dispatch/template"
)

// secretBlock saves a Secret block and returns its name.
func (e *env) secretBlock(value string) string {
	e.t.Helper()
	ctx := e.t.Context()
	if err := e.api.InstallSystemBlockTypes(ctx); err != nil {
		e.t.Fatal(err)
	}
	bt, err := e.api.ReadBlockType(ctx, "secret")
	if err != nil {
		e.t.Fatal(err)
	}
	schema, err := e.api.LatestBlockSchema(ctx, bt.ID)
	if err != nil {
		e.t.Fatal(err)
	}
	name := "db-" + strings.ToLower(strings.ReplaceAll(e.pool.Name, "_", "-"))
	if _, err := e.api.CreateBlockDocument(ctx, prefect.BlockDocument{Name: &name, Data: map[string]any{"value": value}, BlockSchemaID: schema.ID, BlockTypeID: bt.ID}); err != nil {
		e.t.Fatalf("create secret block: %v", err)
	}
	return name
}

func TestDispatcher_Render_redactsSecrets(t *testing.T) {
	t.Parallel()
	e := newEnv(t, nil)
	const secret, apiKey = "s3cr3t-db-password", "pnu_test_api_key_0123456789"
	block := e.secretBlock(secret)
	dep := e.deployment("secrets", func(in *prefect.DeploymentCreate) {
		in.JobVariables = map[string]any{"command": e.command, "env": map[string]any{
			"DB_URL":      "postgres://app:{{ prefect.blocks.secret." + block + " }}@db/app", // secret inside text
			"DB_PASSWORD": "{{ prefect.blocks.secret." + block + " }}",                       // secret by name and value
			"GREETING":    "hello",
		}}
	})
	run := e.run(dep)
	// The dispatcher's own API key reaches jobs through SettingsEnv; Render
	// needs no backend.
	d, err := dispatch.New(dispatch.Config{WorkerName: "pushpool-test",
		SettingsEnv: map[string]string{"PREFECT_API_URL": srv.URL, "PREFECT_API_KEY": apiKey}}, e.api, nil, nil)
	if err != nil {
		t.Fatal(err)
	}

	job, err := d.Render(t.Context(), run.ID)
	if err != nil {
		t.Fatal(err)
	}
	out, _ := json.Marshal(job.Configuration)
	for _, s := range []string{secret, apiKey} {
		if strings.Contains(string(out), s) {
			t.Errorf("rendered job shows a secret %q:\n%s", s, out)
		}
	}
	env, _ := job.Configuration["env"].(map[string]any)
	want := map[string]any{
		"DB_URL":               "postgres://app:" + dispatch.Redacted + "@db/app",
		"DB_PASSWORD":          dispatch.Redacted,
		"PREFECT_API_KEY":      dispatch.Redacted,
		"GREETING":             "hello",
		"PREFECT__FLOW_RUN_ID": run.ID,
		"PREFECT_API_URL":      srv.URL,
	}
	for k, v := range want {
		if env[k] != v {
			t.Errorf("env[%s] = %v, want %v", k, env[k], v)
		}
	}
	if job.Configuration["command"] != e.command {
		t.Errorf("command = %v, want the deployment's %q", job.Configuration["command"], e.command)
	}
	// Rendering starts nothing and leaves the run as it was.
	if got := e.read(run.ID); got.StateType == nil || *got.StateType != prefect.StateScheduled {
		t.Errorf("after Render the run is %v, want SCHEDULED", got.StateType)
	}
}

func TestDispatcher_Render_namesWhatIsMissing(t *testing.T) {
	t.Parallel()
	e := newEnv(t, nil)
	d, _ := e.dispatcherWith(t.TempDir(), dispatch.Config{})
	const id = "00000000-0000-4000-8000-000000000000"
	_, err := d.Render(t.Context(), id)
	if err == nil || !strings.Contains(err.Error(), id) || !strings.Contains(err.Error(), "does not exist") {
		t.Errorf("Render of a missing run = %v; want an error naming the run", err)
	}
}

func TestCheckJobVariables(t *testing.T) {
	t.Parallel()
	var tmpl map[string]any
	if err := json.Unmarshal([]byte(`{
		"job_configuration": {"command": "{{ command }}", "cpu": "{{ cpu }}", "env": "{{ env }}"},
		"variables": {"type": "object", "required": ["image"], "properties": {
			"image": {"type": "string"}, "cpu": {"type": "integer", "default": 1}, "command": {"type": "string"}}}}`), &tmpl); err != nil {
		t.Fatal(err)
	}
	pool := prefect.WorkPool{Name: "ecs-prod", BaseJobTemplate: tmpl}
	tests := []struct {
		name     string
		vars     map[string]any
		wantErr  string // a part of the error; empty means no error
		wantType any
	}{
		{name: "valid", vars: map[string]any{"cpu": json.Number("2"), "command": "run"}},
		{name: "required variable left to the flow runs", vars: map[string]any{}},
		{name: "wrong type", vars: map[string]any{"cpu": "lots"}, wantErr: `job variable "cpu" of deployment "nightly" does not fit work pool "ecs-prod"`, wantType: &template.ValidationError{}},
		{name: "renders to an invalid job", vars: map[string]any{"env": json.Number("5")}, wantErr: `render a job of deployment "nightly" from work pool "ecs-prod"`, wantType: &template.ConfigError{}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			err := dispatch.CheckJobVariables(t.Context(), nil, pool, "nightly", tt.vars)
			if tt.wantErr == "" {
				if err != nil {
					t.Fatalf("CheckJobVariables: %v", err)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
				t.Fatalf("CheckJobVariables = %v, want an error containing %q", err, tt.wantErr)
			}
			switch want := tt.wantType.(type) {
			case *template.ValidationError:
				if !errors.As(err, &want) {
					t.Errorf("CheckJobVariables = %T, want a *template.ValidationError", err)
				}
			case *template.ConfigError:
				if !errors.As(err, &want) {
					t.Errorf("CheckJobVariables = %T, want a *template.ConfigError", err)
				}
			}
		})
	}
}
