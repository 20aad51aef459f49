package dispatchtest

import (
	"context"
	"fmt"
	"regexp"
	"testing"
	"time"

	"github.com/pushpool/pushpool/dispatch"
	"github.com/pushpool/pushpool/dispatch/prefect"
)

// EndToEnd describes one backend's end-to-end check against a real Prefect
// server: a pool made from the backend's default base job template, a
// deployment, a due run, one dispatch pass.
type EndToEnd struct {
	// API is a client of the Prefect server the test started.
	API *prefect.Client
	// PoolType is the pool's type, e.g. "ecs".
	PoolType string
	// BaseJobTemplate is the pool's base job template (the backend's default).
	BaseJobTemplate map[string]any
	// JobVariables are the deployment's job variables: what the emulator
	// needs (cluster, project, resource group...).
	JobVariables map[string]any
	// Backend is the backend under test, pointed at its emulator.
	Backend dispatch.Backend
	// Count reports how many pieces of infrastructure exist for a flow run.
	Count func(t *testing.T, flowRunID string) int
	// PIDPattern matches the infrastructure_pid format of the backend.
	PIDPattern *regexp.Regexp
}

// Dispatched is what RunEndToEnd leaves behind, for further checks such as
// reconciling the run after its infrastructure exits.
type Dispatched struct {
	// Dispatcher is the dispatcher that submitted the run.
	Dispatcher *dispatch.Dispatcher
	// Pool is the pool's name.
	Pool string
	// FlowRunID is the dispatched run; InfrastructureID its recorded pid.
	FlowRunID, InfrastructureID string
}

// RunEndToEnd creates a pool, a deployment and a due run, runs a dispatch
// pass and checks that the run was claimed, started and its
// infrastructure_pid recorded in the backend's format. It then simulates a
// dispatcher that died after starting the job but before recording it (the
// run Pending without a pid): a reconcile pass past the claim timeout must
// find the attempt's infrastructure and record it, starting nothing. Last,
// it runs the run again as the UI's Retry does (Crashed, then forced back to
// Scheduled) and checks that the next pass starts new infrastructure.
func RunEndToEnd(t *testing.T, e EndToEnd) Dispatched {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	pool := fmt.Sprintf("e2e-%s-%s", sanitize(e.PoolType), NewFlowRunID()[:8])
	if _, err := e.API.CreateWorkPool(ctx, prefect.WorkPoolCreate{Name: pool, Type: e.PoolType, BaseJobTemplate: e.BaseJobTemplate}); err != nil {
		t.Fatalf("create work pool %s of type %s with the default template: %v", pool, e.PoolType, err)
	}
	flow, err := e.API.CreateFlow(ctx, "e2e-"+sanitize(e.PoolType), nil)
	if err != nil {
		t.Fatalf("create flow: %v", err)
	}
	entrypoint := "flows/hello.py:hello"
	dep, err := e.API.CreateDeployment(ctx, prefect.DeploymentCreate{
		Name: pool, FlowID: flow.ID, WorkPoolName: pool, Entrypoint: &entrypoint, JobVariables: e.JobVariables,
	})
	if err != nil {
		t.Fatalf("create deployment in pool %s with job variables %v: %v", pool, e.JobVariables, err)
	}
	now := time.Now().UTC()
	run, err := e.API.CreateFlowRunFromDeployment(ctx, dep.ID, prefect.DeploymentFlowRunCreate{
		State: &prefect.StateCreate{Type: prefect.StateScheduled, Name: "Scheduled",
			StateDetails: prefect.StateDetails{ScheduledTime: &now}},
	})
	if err != nil {
		t.Fatalf("create a due flow run: %v", err)
	}
	cfg := dispatch.Config{
		WorkerName:  "pushpool-e2e",
		SettingsEnv: map[string]string{"PREFECT_API_URL": "http://127.0.0.1:4200/api"},
	}
	d, err := dispatch.New(cfg, e.API, e.Backend, nil)
	if err != nil {
		t.Fatal(err)
	}

	first := pass(ctx, t, e.API, d, pool, run.ID)
	if !e.PIDPattern.MatchString(first) {
		t.Errorf("infrastructure_pid %q of flow run %s does not match Prefect's format %s", first, run.ID, e.PIDPattern)
	}
	if n := e.Count(t, run.ID); n != 1 {
		t.Fatalf("after the first pass the platform holds %d pieces of infrastructure for flow run %s, want 1", n, run.ID)
	}

	// The dispatcher "died" after Start, before recording the pid: the run
	// is Pending with no pid. A reconciler whose clock is past the claim
	// timeout finds the attempt's infrastructure and records it.
	empty := ""
	if err := e.API.UpdateFlowRun(ctx, run.ID, prefect.FlowRunUpdate{InfrastructurePID: &empty}); err != nil {
		t.Fatalf("clear the infrastructure_pid of flow run %s: %v", run.ID, err)
	}
	later := cfg
	later.Now = func() time.Time { return time.Now().Add(time.Hour) }
	dl, err := dispatch.New(later, e.API, e.Backend, nil)
	if err != nil {
		t.Fatal(err)
	}
	rec, err := dispatch.NewReconciler(dl, dispatch.ReconcileConfig{})
	if err != nil {
		t.Fatal(err)
	}
	rres, err := rec.RunOnce(ctx, pool)
	if err != nil {
		t.Fatalf("reconcile pool %s: %v", pool, err)
	}
	if rres.Count(dispatch.ActionRecorded) != 1 {
		t.Fatalf("reconcile of a run whose pid was not recorded = %+v; want its infrastructure found and recorded", rres)
	}
	got, err := e.API.ReadFlowRun(ctx, run.ID)
	if err != nil {
		t.Fatal(err)
	}
	if got.InfrastructurePID == nil || *got.InfrastructurePID != first {
		t.Errorf("after recovery flow run %s records %v, want the first attempt's %q", run.ID, got.InfrastructurePID, first)
	}
	if n := e.Count(t, run.ID); n != 1 {
		t.Errorf("after recovery the platform holds %d pieces of infrastructure for flow run %s, want 1", n, run.ID)
	}

	// Retry, as the UI does it: the run crashed, then is forced back to
	// Scheduled. It is a new attempt and gets new infrastructure.
	for _, st := range []prefect.StateCreate{
		{Type: prefect.StateCrashed, Name: "Crashed", Message: "e2e: the first attempt crashed"},
		{Type: prefect.StateScheduled, Name: "AwaitingRetry", StateDetails: prefect.StateDetails{ScheduledTime: ptr(time.Now().UTC())}},
	} {
		if _, err := e.API.SetFlowRunState(ctx, run.ID, st, true); err != nil {
			t.Fatalf("set flow run %s %s: %v", run.ID, st.Type, err)
		}
	}
	second := pass(ctx, t, e.API, d, pool, run.ID)
	if second == first {
		t.Errorf("the retried flow run %s recorded the first attempt's infrastructure %q: a run that is run again must start again", run.ID, first)
	}
	if n := e.Count(t, run.ID); n != 2 {
		t.Errorf("after a retry the platform holds %d pieces of infrastructure for flow run %s, want 2", n, run.ID)
	}
	return Dispatched{Dispatcher: d, Pool: pool, FlowRunID: run.ID, InfrastructureID: second}
}

func ptr[T any](v T) *T { return &v }

// pass runs one dispatch pass that must submit flowRunID, and returns the
// infrastructure_pid Prefect recorded for it.
func pass(ctx context.Context, t *testing.T, api *prefect.Client, d *dispatch.Dispatcher, pool, flowRunID string) string {
	t.Helper()
	res, err := d.RunOnce(ctx, pool)
	if err != nil {
		t.Fatalf("dispatch pass over pool %s: %v", pool, err)
	}
	var got *dispatch.RunResult
	for i := range res.Runs {
		if res.Runs[i].FlowRunID == flowRunID {
			got = &res.Runs[i]
		}
	}
	if got == nil {
		t.Fatalf("the dispatch pass over pool %s did not see flow run %s: %+v", pool, flowRunID, res)
	}
	if got.Outcome != dispatch.Submitted {
		t.Fatalf("flow run %s: outcome %s, want %s (error: %v)", flowRunID, got.Outcome, dispatch.Submitted, got.Err)
	}
	run, err := api.ReadFlowRun(ctx, flowRunID)
	if err != nil {
		t.Fatalf("read flow run %s: %v", flowRunID, err)
	}
	if run.InfrastructurePID == nil || *run.InfrastructurePID != got.InfrastructureID {
		t.Fatalf("flow run %s: infrastructure_pid in Prefect is %v, the pass submitted %q", flowRunID, run.InfrastructurePID, got.InfrastructureID)
	}
	if run.State == nil || run.State.Type != prefect.StatePending {
		t.Errorf("flow run %s after submission is in %v, want PENDING (the flow itself moves it to RUNNING)", flowRunID, run.State)
	}
	return got.InfrastructureID
}

var unsafe = regexp.MustCompile(`[^a-z0-9-]+`)

func sanitize(s string) string { return unsafe.ReplaceAllString(s, "-") }
