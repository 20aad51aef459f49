package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/pushpool/pushpool/dispatch/prefect"
	"github.com/pushpool/pushpool/dispatch/template"
	"github.com/pushpool/pushpool/internal/localstack"
)

var srv *localstack.Prefect

func TestMain(m *testing.M) {
	os.Exit(localstack.RunTestsWithPrefect(m, localstack.PrefectOptions{}, func(p *localstack.Prefect) { srv = p }))
}

// invoke runs the command with only the given environment.
func invoke(t *testing.T, ctx context.Context, env map[string]string, args ...string) (code int, stdout, stderr string) {
	t.Helper()
	var out, errOut bytes.Buffer
	lookup := func(k string) (string, bool) { v, ok := env[k]; return v, ok }
	code = run(ctx, make(chan struct{}), args, lookup, &out, &errOut)
	return code, out.String(), errOut.String()
}

func TestRun_usageErrorsNameTheFix(t *testing.T) {
	t.Parallel()
	api := map[string]string{"PREFECT_API_URL": "http://127.0.0.1:1/api"}
	tests := []struct {
		name string
		env  map[string]string
		args []string
		want string
	}{
		{"no command", nil, nil, "Usage:"},
		{"unknown command", nil, []string{"start"}, `unknown command "start"`},
		{"no API URL", nil, []string{"serve", "--pool", "p"}, "set PREFECT_API_URL or --api-url"},
		{"no pool", api, []string{"dispatch-once"}, "set --pool or PREFECT_DEFAULT_WORK_POOL_NAME"},
		{"no flow run", api, []string{"render"}, "--flow-run is required"},
		{"bad env number", map[string]string{"PREFECT_API_URL": "http://x/api", "PREFECT_WORKER_PREFETCH_SECONDS": "ten"}, []string{"serve", "--pool", "p"}, "PREFECT_WORKER_PREFETCH_SECONDS is \"ten\""},
		{"bad output", api, []string{"dispatch-once", "--pool", "p", "--output", "xml"}, "--output is \"xml\""},
		{"bad log level", api, []string{"dispatch-once", "--pool", "p", "--log-level", "LOUD"}, `log level "LOUD"`},
		{"stray argument", api, []string{"dispatch-once", "--pool", "p", "extra"}, `unexpected argument "extra"`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			code, _, stderr := invoke(t, t.Context(), tt.env, tt.args...)
			if code != exitUsage || !strings.Contains(stderr, tt.want) {
				t.Errorf("exit %d, stderr %q; want exit %d mentioning %q", code, stderr, exitUsage, tt.want)
			}
		})
	}
}

func TestRun_version(t *testing.T) {
	t.Parallel()
	code, out, _ := invoke(t, t.Context(), nil, "version")
	if code != exitOK || !strings.HasPrefix(out, "pushpool ") || !strings.Contains(out, "Prefect "+template.PrefectVersion) ||
		!strings.Contains(out, "pool types: azure-container-instance, azure-container-instance:push, cloud-run-v2, cloud-run-v2:push, ecs, ecs:push, process") {
		t.Errorf("version: exit %d, %q", code, out)
	}
}

// setup creates a pool of the given type with Prefect's default process
// template and a deployment of it whose command is `true`.
func setup(t *testing.T, poolType string) (api *prefect.Client, pool string, dep prefect.Deployment) {
	t.Helper()
	ctx := t.Context()
	api, err := prefect.New(prefect.Config{URL: srv.URL})
	if err != nil {
		t.Fatal(err)
	}
	meta, err := api.ReadWorkerMetadata(ctx)
	if err != nil {
		t.Fatal(err)
	}
	pool = fmt.Sprintf("cli-%d", time.Now().UnixNano())
	if _, err := api.CreateWorkPool(ctx, prefect.WorkPoolCreate{Name: pool, Type: poolType, BaseJobTemplate: meta["prefect"]["process"].DefaultBaseJobConfiguration}); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { api.DeleteWorkPool(context.Background(), pool) })
	flow, err := api.CreateFlow(ctx, "flow-"+pool, nil)
	if err != nil {
		t.Fatal(err)
	}
	dep, err = api.CreateDeployment(ctx, prefect.DeploymentCreate{Name: "d", FlowID: flow.ID, WorkPoolName: pool,
		JobVariables: map[string]any{"command": "true"}})
	if err != nil {
		t.Fatal(err)
	}
	return api, pool, dep
}

func newRun(t *testing.T, api *prefect.Client, dep prefect.Deployment) prefect.FlowRun {
	t.Helper()
	r, err := api.CreateFlowRunFromDeployment(t.Context(), dep.ID, prefect.DeploymentFlowRunCreate{})
	if err != nil {
		t.Fatal(err)
	}
	return r
}

func TestRun_renderThenDispatchOnce(t *testing.T) {
	t.Parallel()
	api, pool, dep := setup(t, "process")
	run := newRun(t, api, dep)
	env := map[string]string{"PREFECT_API_URL": srv.URL, "PREFECT_API_KEY": "pnu_cli_test_key_123456", "PUSHPOOL_PROCESS_STATE_DIR": t.TempDir(),
		"PREFECT_CLIENT_CUSTOM_HEADERS": `{"X-Proxy-Authorization": "Bearer proxy-token-123456"}`}

	code, out, stderr := invoke(t, t.Context(), env, "render", "--flow-run", run.ID)
	if code != exitOK {
		t.Fatalf("render: exit %d: %s", code, stderr)
	}
	var rendered struct {
		FlowRunID string         `json:"flow_run_id"`
		Job       map[string]any `json:"job_configuration"`
	}
	if err := json.Unmarshal([]byte(out), &rendered); err != nil {
		t.Fatalf("render output is not JSON: %v\n%s", err, out)
	}
	renv, _ := rendered.Job["env"].(map[string]any)
	if rendered.FlowRunID != run.ID || rendered.Job["command"] != "true" || renv["PREFECT__FLOW_RUN_ID"] != run.ID {
		t.Errorf("render output = %s; want the run's job", out)
	}
	if strings.Contains(out, env["PREFECT_API_KEY"]) || renv["PREFECT_API_KEY"] != "**********" {
		t.Errorf("render shows the API key:\n%s", out)
	}
	// The job gets the custom headers, as from a worker; render hides them.
	if strings.Contains(out, "proxy-token-123456") || renv["PREFECT_CLIENT_CUSTOM_HEADERS"] != "**********" {
		t.Errorf("render shows the custom headers:\n%s", out)
	}

	code, out, stderr = invoke(t, t.Context(), env, "dispatch-once", "--pool", pool, "--output", "json", "--wait")
	if code != exitOK {
		t.Fatalf("dispatch-once: exit %d: %s", code, stderr)
	}
	var summary struct {
		Polled int `json:"polled"`
		Runs   []struct {
			FlowRunID        string `json:"flow_run_id"`
			Outcome          string `json:"outcome"`
			InfrastructureID string `json:"infrastructure_id"`
		} `json:"runs"`
	}
	if err := json.Unmarshal([]byte(out), &summary); err != nil {
		t.Fatalf("dispatch-once output is not JSON: %v\n%s", err, out)
	}
	if summary.Polled != 1 || len(summary.Runs) != 1 || summary.Runs[0].FlowRunID != run.ID || summary.Runs[0].Outcome != "submitted" {
		t.Fatalf("dispatch-once summary = %s; want the run submitted", out)
	}
	got, err := api.ReadFlowRun(t.Context(), run.ID)
	if err != nil {
		t.Fatal(err)
	}
	if got.InfrastructurePID == nil || *got.InfrastructurePID != summary.Runs[0].InfrastructureID {
		t.Errorf("infrastructure_pid = %v, want %s", got.InfrastructurePID, summary.Runs[0].InfrastructureID)
	}

	// Nothing is left to do: a table summary saying so, exit 0.
	code, out, stderr = invoke(t, t.Context(), env, "dispatch-once", "--pool", pool)
	if code != exitOK || !strings.Contains(out, "0 due run(s)") {
		t.Errorf("second dispatch-once: exit %d, %q, %s", code, out, stderr)
	}
}

func TestRun_dispatchOnceExplainsWhatCannotWork(t *testing.T) {
	t.Parallel()
	_, k8sPool, _ := setup(t, "kubernetes")
	env := map[string]string{"PREFECT_API_URL": srv.URL}
	tests := []struct {
		name string
		pool string
		want []string
	}{
		{"unknown pool", "no-such-pool", []string{`work pool "no-such-pool" does not exist`, "prefect_work_pool"}},
		{"pool type without a backend", k8sPool, []string{`type "kubernetes"`, "supported types: azure-container-instance", "ecs:push", "process"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			code, _, stderr := invoke(t, t.Context(), env, "dispatch-once", "--pool", tt.pool)
			for _, w := range tt.want {
				if code != exitFailed || !strings.Contains(stderr, w) {
					t.Errorf("exit %d, stderr %q; want exit %d mentioning %q", code, stderr, exitFailed, w)
				}
			}
		})
	}
}

func TestRun_serveDispatchesUntilCancelled(t *testing.T) {
	t.Parallel()
	api, pool, dep := setup(t, "process")
	fr := newRun(t, api, dep)
	env := map[string]string{"PREFECT_API_URL": srv.URL, "PUSHPOOL_PROCESS_STATE_DIR": t.TempDir()}
	ctx, cancel := context.WithCancel(t.Context())
	done := make(chan int, 1)
	var stderr bytes.Buffer
	go func() {
		lookup := func(k string) (string, bool) { v, ok := env[k]; return v, ok }
		done <- run(ctx, make(chan struct{}), []string{"serve", "--pool", pool}, lookup, &bytes.Buffer{}, &stderr)
	}()
	deadline := time.Now().Add(60 * time.Second)
	for {
		got, err := api.ReadFlowRun(t.Context(), fr.ID)
		if err != nil {
			t.Fatal(err)
		}
		if got.InfrastructurePID != nil {
			break
		}
		if time.Now().After(deadline) {
			cancel()
			<-done
			t.Fatalf("serve did not submit the run within 60s; its log:\n%s", stderr.String())
		}
		time.Sleep(100 * time.Millisecond)
	}
	cancel()
	if code := <-done; code != exitOK {
		t.Errorf("serve exited %d after its context ended, want 0; log:\n%s", code, stderr.String())
	}
	if !strings.Contains(stderr.String(), "stopped dispatching") || !strings.Contains(stderr.String(), "submitted=1") {
		t.Errorf("serve log lacks the closing counts:\n%s", stderr.String())
	}
}
