package main

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/pushpool/pushpool/dispatch/prefect"
)

// TestRun_jobsGetSettingsNotCredentials dispatches a process run whose pool
// template reads dispatcher variables with {{ $NAME }}: the job gets every
// Prefect setting the command was given (PREFECT_CLIENT_CUSTOM_HEADERS,
// PREFECT_API_TLS_INSECURE_SKIP_VERIFY written back as Prefect writes it,
// an alias under the setting's own name), but not PUSHPOOL_* nor a PREFECT_*
// name that is no setting; a template's {{ $AWS_SECRET_ACCESS_KEY }} and a
// variable outside PUSHPOOL_TEMPLATE_ENV render empty, an allowed one
// renders, and the run's log says which were refused and why.
func TestRun_jobsGetSettingsNotCredentials(t *testing.T) {
	t.Parallel()
	api, pool, dep := setup(t, "process")
	ctx := t.Context()
	wp, err := api.ReadWorkPool(ctx, pool)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := wp.BaseJobTemplate
	jc := tmpl["job_configuration"].(map[string]any)
	jc["env"] = map[string]any{
		"LEAKED_SECRET": "{{ $AWS_SECRET_ACCESS_KEY }}",
		"UNLISTED":      "{{ $BUILD_HOST }}",
		"TEAM":          "{{ $TEAM_NAME }}",
		"REGION":        "{{ $AWS_REGION }}",
	}
	// Prefect's server takes a placeholder only when the variables schema
	// declares its name, "$NAME" included: editing the pool is all it takes.
	props := tmpl["variables"].(map[string]any)["properties"].(map[string]any)
	for _, name := range []string{"$AWS_SECRET_ACCESS_KEY", "$BUILD_HOST", "$TEAM_NAME", "$AWS_REGION"} {
		props[name] = map[string]any{"type": "string"}
	}
	if err := api.UpdateWorkPool(ctx, pool, prefect.WorkPoolUpdate{BaseJobTemplate: tmpl}); err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	dump := filepath.Join(dir, "job.env")
	dep2, err := api.CreateDeployment(ctx, prefect.DeploymentCreate{Name: "settings", FlowID: dep.FlowID, WorkPoolName: pool,
		JobVariables: map[string]any{"command": fmt.Sprintf("sh -c 'env > %s'", dump)}})
	if err != nil {
		t.Fatal(err)
	}
	run := newRun(t, api, dep2)
	env := map[string]string{
		"PREFECT_API_URL":                      srv.URL,
		"PREFECT_CLIENT_CUSTOM_HEADERS":        `{"X-Proxy-Team":"data"}`,
		"PREFECT_API_TLS_INSECURE_SKIP_VERIFY": "true",
		"PREFECT_RUNNER_HEARTBEAT_FREQUENCY":   "45",
		"PREFECT_NOT_A_SETTING":                "x",
		"PUSHPOOL_PROCESS_STATE_DIR":           filepath.Join(dir, "state"),
		"PUSHPOOL_TEMPLATE_ENV":                "TEAM_*, AWS_REGION, AWS_SECRET_*",
		"AWS_SECRET_ACCESS_KEY":                "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY",
		"AWS_REGION":                           "eu-west-1",
		"TEAM_NAME":                            "data",
		"BUILD_HOST":                           "ci-7",
	}
	code, out, stderr := invoke(t, ctx, env, "dispatch-once", "--pool", pool, "--wait")
	if code != exitOK {
		t.Fatalf("dispatch-once: exit %d: %s\n%s", code, out, stderr)
	}
	var jobEnv string
	for deadline := time.Now().Add(30 * time.Second); ; time.Sleep(100 * time.Millisecond) {
		if b, err := os.ReadFile(dump); err == nil && strings.Contains(string(b), "PREFECT__FLOW_RUN_ID=") {
			jobEnv = string(b)
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the job wrote no environment to %s in 30s\n%s", dump, stderr)
		}
	}
	for _, want := range []string{
		"PREFECT_CLIENT_CUSTOM_HEADERS={\"X-Proxy-Team\":\"data\"}\n",
		"PREFECT_API_TLS_INSECURE_SKIP_VERIFY=True\n",
		"PREFECT_FLOWS_HEARTBEAT_FREQUENCY=45\n",
		"PREFECT_API_URL=" + srv.URL + "\n",
		"TEAM=data\n", "REGION=eu-west-1\n", "LEAKED_SECRET=\n", "UNLISTED=\n",
	} {
		if !strings.Contains(jobEnv, want) {
			t.Errorf("the job's environment lacks %q:\n%s", want, jobEnv)
		}
	}
	// A process job also inherits the test process's own environment, as
	// Prefect's process worker passes its os.environ; the command's
	// variables here are the lookup's only.
	for _, unwanted := range []string{env["AWS_SECRET_ACCESS_KEY"], "PREFECT_NOT_A_SETTING", "PUSHPOOL_TEMPLATE_ENV", "BUILD_HOST", "ci-7", "PREFECT_RUNNER_HEARTBEAT_FREQUENCY"} {
		if strings.Contains(jobEnv, unwanted) {
			t.Errorf("the job's environment holds %q:\n%s", unwanted, jobEnv)
		}
	}

	logs, err := api.ReadFlowRunLogs(ctx, run.ID)
	if err != nil {
		t.Fatal(err)
	}
	var text strings.Builder
	for _, l := range logs {
		text.WriteString(l.Message + "\n")
	}
	for _, want := range []string{
		"reads {{ $AWS_SECRET_ACCESS_KEY }}, which rendered empty: it is one of the dispatcher's credentials",
		"reads {{ $BUILD_HOST }}, which rendered empty: it is not in PUSHPOOL_TEMPLATE_ENV",
	} {
		if !strings.Contains(text.String(), want) {
			t.Errorf("the run's logs lack %q:\n%s", want, text.String())
		}
	}
	if strings.Contains(text.String(), env["AWS_SECRET_ACCESS_KEY"]) || strings.Contains(stderr, env["AWS_SECRET_ACCESS_KEY"]) {
		t.Error("the secret's value reached a log")
	}
}
