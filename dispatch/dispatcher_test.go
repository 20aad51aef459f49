package dispatch_test

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/pushpool/pushpool/dispatch"
	"github.com/pushpool/pushpool/dispatch/backend/process"
	"github.com/pushpool/pushpool/dispatch/prefect"
	"github.com/pushpool/pushpool/internal/localstack"
)

var srv *localstack.Prefect

func TestMain(m *testing.M) {
	// The foreman checks worker health every second instead of every 15, so
	// the pool-status test sees NOT_READY within seconds of the last pass.
	opts := localstack.PrefectOptions{Env: map[string]string{"PREFECT_SERVER_SERVICES_FOREMAN_LOOP_SECONDS": "1"}}
	os.Exit(localstack.RunTestsWithPrefect(m, opts, func(p *localstack.Prefect) { srv = p }))
}

func ptr[T any](v T) *T { return &v }

// env is one test's pool, flow and deployment on the shared server.
type env struct {
	t       testing.TB
	api     *prefect.Client
	pool    prefect.WorkPool
	flow    prefect.Flow
	dep     prefect.Deployment
	dir     string
	starts  string
	python  string
	command string
}

// newEnv creates a process pool whose default command is the stand-in flow
// run in testdata, which records its start and completes itself.
func newEnv(t testing.TB, poolLimit *int) *env {
	t.Helper()
	ctx := t.Context()
	// Generous retries: on a loaded 2-core machine the test server's SQLite
	// database answers 503 for a while when 210 runs are created at once.
	api, err := prefect.New(prefect.Config{URL: srv.URL, MaxRetries: 10})
	if err != nil {
		t.Fatal(err)
	}
	e := &env{t: t, api: api, dir: t.TempDir()}
	e.starts = filepath.Join(e.dir, "starts")
	e.python = filepath.Join(srv.Venv, "bin", "python")
	script, _ := filepath.Abs("testdata/complete_run.py")
	e.command = fmt.Sprintf("%s %s %s", e.python, script, e.starts)

	name := fmt.Sprintf("pool-%d", time.Now().UnixNano())
	tmpl := processTemplate(t, ctx, api)
	e.pool, err = api.CreateWorkPool(ctx, prefect.WorkPoolCreate{Name: name, Type: "process", BaseJobTemplate: tmpl, ConcurrencyLimit: poolLimit})
	if err != nil {
		t.Fatalf("create pool: %v", err)
	}
	t.Cleanup(func() { api.DeleteWorkPool(context.Background(), name) })
	e.flow, err = api.CreateFlow(ctx, "flow-"+name, nil)
	if err != nil {
		t.Fatal(err)
	}
	e.dep = e.deployment("dep", nil)
	return e
}

// processTemplate is Prefect's own default base job template for process pools.
func processTemplate(t testing.TB, ctx context.Context, api *prefect.Client) map[string]any {
	meta, err := api.ReadWorkerMetadata(ctx)
	if err != nil {
		t.Fatalf("read worker metadata: %v", err)
	}
	tmpl := meta["prefect"]["process"].DefaultBaseJobConfiguration
	if tmpl == nil {
		t.Fatal("the server has no default process template")
	}
	return tmpl
}

func (e *env) deployment(name string, mutate func(*prefect.DeploymentCreate)) prefect.Deployment {
	e.t.Helper()
	in := prefect.DeploymentCreate{Name: name, FlowID: e.flow.ID, WorkPoolName: e.pool.Name,
		JobVariables: map[string]any{"command": e.command}}
	if mutate != nil {
		mutate(&in)
	}
	dep, err := e.api.CreateDeployment(e.t.Context(), in)
	if err != nil {
		e.t.Fatalf("create deployment: %v", err)
	}
	return dep
}

func (e *env) run(dep prefect.Deployment) prefect.FlowRun {
	e.t.Helper()
	// The idempotency key makes the client's retries of a create safe.
	r, err := e.api.CreateFlowRunFromDeployment(e.t.Context(), dep.ID, prefect.DeploymentFlowRunCreate{IdempotencyKey: uuid.NewString()})
	if err != nil {
		e.t.Fatalf("create flow run: %v", err)
	}
	return r
}

func (e *env) dispatcher(stateDir string) (*dispatch.Dispatcher, *process.Backend) {
	return e.dispatcherWith(stateDir, dispatch.Config{})
}

func (e *env) dispatcherWith(stateDir string, cfg dispatch.Config) (*dispatch.Dispatcher, *process.Backend) {
	e.t.Helper()
	b, err := process.New(process.Config{StateDir: stateDir})
	if err != nil {
		e.t.Fatal(err)
	}
	e.t.Cleanup(b.Wait)
	if cfg.Lookahead == 0 {
		// Prefect's default prefetch; TestDispatcher_RunOnce_zeroLookahead
		// builds its dispatcher without this helper.
		cfg.Lookahead = dispatch.DefaultLookahead
	}
	cfg.WorkerName = "pushpool-test"
	cfg.SettingsEnv = map[string]string{"PREFECT_API_URL": srv.URL}
	d, err := dispatch.New(cfg,
		e.api, b, slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn})))
	if err != nil {
		e.t.Fatal(err)
	}
	return d, b
}

func (e *env) read(id string) prefect.FlowRun {
	e.t.Helper()
	r, err := e.api.ReadFlowRun(e.t.Context(), id)
	if err != nil {
		e.t.Fatal(err)
	}
	return r
}

// waitState waits until the run reaches the state type.
func (e *env) waitState(id string, want prefect.StateType) prefect.FlowRun {
	e.t.Helper()
	return e.waitStateWithin(id, want, 60*time.Second)
}

// waitStateWithin waits up to within until the run reaches the state type.
func (e *env) waitStateWithin(id string, want prefect.StateType, within time.Duration) prefect.FlowRun {
	e.t.Helper()
	deadline := time.Now().Add(within)
	for {
		r := e.read(id)
		if r.StateType != nil && *r.StateType == want {
			return r
		}
		if time.Now().After(deadline) {
			e.t.Fatalf("flow run %s is %v, want %s; states:\n%s\nlogs:\n%s", id, r.StateType, want, e.history(id), e.logs(id))
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// history describes a run's states, oldest first, for failure messages.
func (e *env) history(id string) string {
	states, err := e.api.ReadFlowRunStates(e.t.Context(), id)
	if err != nil {
		return err.Error()
	}
	var b strings.Builder
	for _, s := range states {
		fmt.Fprintf(&b, "  %s %s %s transition=%s\n", s.Timestamp.Format("15:04:05.000000"), s.Type, s.Name, s.StateDetails.TransitionID)
	}
	return b.String()
}

// wantLog fails the test unless the run's logs in Prefect contain text.
func (e *env) wantLog(id, text string) {
	e.t.Helper()
	if logs := e.logs(id); !strings.Contains(logs, text) {
		e.t.Errorf("logs of run %s lack %q:\n%s", id, text, logs)
	}
}

func (e *env) logs(id string) string {
	e.t.Helper()
	logs, err := e.api.ReadFlowRunLogs(e.t.Context(), id)
	if err != nil {
		e.t.Fatal(err)
	}
	var b strings.Builder
	for _, l := range logs {
		b.WriteString(l.Message + "\n")
	}
	return b.String()
}

func TestDispatcher_RunOnce_submitsAndRecords(t *testing.T) {
	t.Parallel()
	e := newEnv(t, nil)
	run := e.run(e.dep)
	d, b := e.dispatcher(t.TempDir())

	res, err := d.RunOnce(t.Context(), e.pool.Name)
	if err != nil {
		t.Fatal(err)
	}
	if res.Count(dispatch.Submitted) != 1 || res.Runs[0].FlowRunID != run.ID {
		t.Fatalf("pass = %+v, want the run submitted", res)
	}
	got := e.read(run.ID)
	if got.InfrastructurePID == nil || *got.InfrastructurePID != res.Runs[0].InfrastructureID {
		t.Errorf("infrastructure_pid = %v, want %s", got.InfrastructurePID, res.Runs[0].InfrastructureID)
	}
	if got.Labels["prefect.worker.name"] != "pushpool-test" || got.Labels["prefect.work-pool.name"] != e.pool.Name {
		t.Errorf("labels = %v, want the worker and pool labels", got.Labels)
	}
	b.Wait()
	e.waitState(run.ID, prefect.StateCompleted)
	e.wantLog(run.ID, "submitted to infrastructure "+res.Runs[0].InfrastructureID)
	// A second pass finds nothing to do.
	if res, err := d.RunOnce(t.Context(), e.pool.Name); err != nil || len(res.Runs) != 0 {
		t.Errorf("second pass = %+v, %v; want nothing", res, err)
	}
}

// TestDispatcher_RunOnce_zeroLookahead: a Lookahead of zero claims a run
// once it is due, never before (PREFECT_WORKER_PREFETCH_SECONDS=0).
func TestDispatcher_RunOnce_zeroLookahead(t *testing.T) {
	t.Parallel()
	e := newEnv(t, nil)
	due := time.Now().Add(3 * time.Second).UTC()
	run, err := e.api.CreateFlowRunFromDeployment(t.Context(), e.dep.ID, prefect.DeploymentFlowRunCreate{
		IdempotencyKey: uuid.NewString(),
		State:          &prefect.StateCreate{Type: prefect.StateScheduled, Name: "Scheduled", StateDetails: prefect.StateDetails{ScheduledTime: &due}},
	})
	if err != nil {
		t.Fatal(err)
	}
	b, err := process.New(process.Config{StateDir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(b.Wait)
	d, err := dispatch.New(dispatch.Config{WorkerName: "pushpool-test", SettingsEnv: map[string]string{"PREFECT_API_URL": srv.URL}}, e.api, b, nil)
	if err != nil {
		t.Fatal(err)
	}
	if res, err := d.RunOnce(t.Context(), e.pool.Name); err != nil || len(res.Runs) != 0 {
		t.Fatalf("pass before the due time = %+v, %v; want nothing claimed", res, err)
	}
	time.Sleep(time.Until(due))
	res, err := d.RunOnce(t.Context(), e.pool.Name)
	if err != nil || res.Count(dispatch.Submitted) != 1 || res.Runs[0].FlowRunID != run.ID {
		t.Fatalf("pass at the due time = %+v, %v; want the run submitted", res, err)
	}
	if claimed := res.Runs[0].SubmittedAt; claimed.Before(due) {
		t.Errorf("run submitted at %s, before it was due at %s", claimed, due)
	}
}

func TestDispatcher_RunOnce_racingDispatchersStartEachRunOnce(t *testing.T) {
	// Not parallel: its 210 runs saturate the test server's SQLite database,
	// which would starve the other tests of this package.
	e := newEnv(t, nil)
	const runs = 210 // more than one page of get_scheduled_flow_runs
	ids := map[string]bool{}
	var mu sync.Mutex
	var wg sync.WaitGroup
	sem := make(chan struct{}, 4)
	for i := 0; i < runs; i++ {
		wg.Go(func() {
			sem <- struct{}{}
			defer func() { <-sem }()
			r := e.run(e.dep)
			mu.Lock()
			ids[r.ID] = true
			mu.Unlock()
		})
	}
	wg.Wait()

	// Four dispatchers with separate state directories: only Prefect's
	// orchestration stands between them and a double start.
	type out struct {
		res dispatch.PassResult
		err error
	}
	outs := make([]out, 4)
	backends := make([]*process.Backend, 4)
	start := make(chan struct{})
	for i := range outs {
		// Four submissions at a time each: the test server's SQLite database
		// is the bottleneck, not the dispatchers.
		d, b := e.dispatcherWith(t.TempDir(), dispatch.Config{MaxConcurrentSubmissions: 4})
		backends[i] = b
		wg.Go(func() {
			<-start
			outs[i].res, outs[i].err = d.RunOnce(t.Context(), e.pool.Name)
		})
	}
	close(start)
	wg.Wait()
	submitted := 0
	for i, o := range outs {
		if o.err != nil {
			t.Fatalf("dispatcher %d: %v", i, o.err)
		}
		submitted += o.res.Count(dispatch.Submitted)
		if n := o.res.Count(dispatch.Crashed) + o.res.Count(dispatch.Errored); n > 0 {
			t.Errorf("dispatcher %d: %d runs crashed or errored: %+v", i, n, o.res.Runs)
		}
		t.Logf("dispatcher %d: %d submitted, %d lost claims", i, o.res.Count(dispatch.Submitted), o.res.Count(dispatch.LostClaim))
	}
	for _, b := range backends {
		b.Wait()
	}
	if submitted != runs {
		t.Errorf("submitted %d runs in all, want %d", submitted, runs)
	}
	data, err := os.ReadFile(e.starts)
	if err != nil {
		t.Fatal(err)
	}
	started := map[string]int{}
	for _, id := range strings.Fields(string(data)) {
		started[id]++
	}
	for id := range ids {
		if started[id] != 1 {
			t.Errorf("flow run %s started %d times, want exactly once; its states:\n%s", id, started[id], e.history(id))
		}
	}
	left, err := e.api.FilterFlowRuns(t.Context(), prefect.FlowRunFilter{DeploymentIDs: []string{e.dep.ID},
		StateTypes: []prefect.StateType{prefect.StateScheduled, prefect.StatePending, prefect.StateRunning}})
	if err != nil {
		t.Fatal(err)
	}
	if len(left) != 0 {
		t.Errorf("%d runs are not COMPLETED; the first, %s, is %s with states:\n%s", len(left), left[0].ID, *left[0].StateName, e.history(left[0].ID))
	}
}

func TestDispatcher_RunOnce_crashesRunsThatCannotStart(t *testing.T) {
	t.Parallel()
	e := newEnv(t, nil)
	missing := e.deployment("missing-binary", func(in *prefect.DeploymentCreate) {
		in.JobVariables = map[string]any{"command": "no-such-binary-for-pushpool"}
	})
	run := e.run(missing)
	d, _ := e.dispatcher(t.TempDir())
	res, err := d.RunOnce(t.Context(), e.pool.Name)
	if err != nil {
		t.Fatal(err)
	}
	if res.Count(dispatch.Crashed) != 1 {
		t.Fatalf("pass = %+v, want the run crashed", res.Runs)
	}
	got := e.read(run.ID)
	if *got.StateType != prefect.StateCrashed || got.State.Message == nil ||
		!strings.HasPrefix(*got.State.Message, "Failed to submit flow run to infrastructure:") ||
		!strings.Contains(*got.State.Message, "no-such-binary-for-pushpool") {
		t.Errorf("state = %s %v, want Crashed naming the command", *got.StateType, got.State.Message)
	}
	e.wantLog(run.ID, "not found on this host's PATH")
}

func TestDispatcher_RunOnce_invalidJobVariablesNameTheVariable(t *testing.T) {
	t.Parallel()
	e := newEnv(t, nil)
	run := e.run(e.dep)
	// The pool's schema changes after the deployment was made: its command
	// (a string) is no longer what the schema allows.
	tmpl := e.pool.BaseJobTemplate
	vars := tmpl["variables"].(map[string]any)["properties"].(map[string]any)
	vars["command"] = map[string]any{"type": "integer"}
	if err := e.api.UpdateWorkPool(t.Context(), e.pool.Name, prefect.WorkPoolUpdate{BaseJobTemplate: tmpl}); err != nil {
		t.Fatal(err)
	}
	d, _ := e.dispatcher(t.TempDir())
	if _, err := d.RunOnce(t.Context(), e.pool.Name); err != nil {
		t.Fatal(err)
	}
	got := e.read(run.ID)
	msg := ""
	if got.State.Message != nil {
		msg = *got.State.Message
	}
	if *got.StateType != prefect.StateCrashed || !strings.Contains(msg, "command") || !strings.Contains(msg, e.pool.Name) || !strings.Contains(msg, "dep") {
		t.Errorf("state = %s %q, want Crashed naming the variable, the pool and the deployment", *got.StateType, msg)
	}
}

func TestDispatcher_RunOnce_deploymentStates(t *testing.T) {
	t.Parallel()
	e := newEnv(t, nil)
	paused := e.deployment("paused", nil)
	pausedRun := e.run(paused)
	if err := e.api.UpdateDeployment(t.Context(), paused.ID, prefect.DeploymentUpdate{Paused: ptr(true)}); err != nil {
		t.Fatal(err)
	}
	doomed := e.deployment("doomed", nil)
	orphan := e.run(doomed)
	if err := e.api.DeleteDeployment(t.Context(), doomed.ID); err != nil {
		t.Fatal(err)
	}
	d, _ := e.dispatcher(t.TempDir())
	res, err := d.RunOnce(t.Context(), e.pool.Name)
	if err != nil {
		t.Fatal(err)
	}
	outcomes := map[string]dispatch.Outcome{}
	for _, r := range res.Runs {
		outcomes[r.FlowRunID] = r.Outcome
	}
	if _, err := e.api.ReadFlowRun(t.Context(), orphan.ID); err == nil {
		if outcomes[orphan.ID] != dispatch.Cancelled || *e.read(orphan.ID).StateType != prefect.StateCancelled {
			t.Errorf("run of a deleted deployment: outcome %q state %s, want cancelled", outcomes[orphan.ID], *e.read(orphan.ID).StateType)
		}
	} else if !prefect.IsNotFound(err) {
		t.Fatal(err)
	}
	if p, ok := outcomes[pausedRun.ID]; ok && p != dispatch.Deferred {
		t.Errorf("run of a paused deployment: outcome %q, want deferred (or not offered)", p)
	}
	if st := *e.read(pausedRun.ID).StateType; st != prefect.StateScheduled {
		t.Errorf("run of a paused deployment is %s, want still SCHEDULED", st)
	}
}

func TestDispatcher_RunOnce_respectsConcurrencyLimits(t *testing.T) {
	t.Parallel()
	t.Run("work pool", func(t *testing.T) {
		t.Parallel()
		e := newEnv(t, ptr(1))
		e.run(e.dep)
		e.run(e.dep)
		e.run(e.dep)
		d, _ := e.dispatcher(t.TempDir())
		res, err := d.RunOnce(t.Context(), e.pool.Name)
		if err != nil {
			t.Fatal(err)
		}
		if res.Count(dispatch.Submitted) != 1 || res.Polled != 1 {
			t.Errorf("pool limit 1: polled %d, submitted %d; want 1 and 1", res.Polled, res.Count(dispatch.Submitted))
		}
	})
	t.Run("deployment with ENQUEUE", func(t *testing.T) {
		t.Parallel()
		e := newEnv(t, nil)
		limited := e.deployment("limited", func(in *prefect.DeploymentCreate) {
			in.JobVariables = map[string]any{"command": "sleep 30"}
			in.ConcurrencyLimit = ptr(1)
			in.ConcurrencyOptions = &prefect.ConcurrencyOptions{CollisionStrategy: "ENQUEUE"}
		})
		a, b := e.run(limited), e.run(limited)
		d, backend := e.dispatcher(t.TempDir())
		res, err := d.RunOnce(t.Context(), e.pool.Name)
		if err != nil {
			t.Fatal(err)
		}
		if res.Count(dispatch.Submitted) != 1 || res.Count(dispatch.Rejected) != 1 {
			t.Fatalf("outcomes %+v, want one submitted and one rejected", res.Runs)
		}
		waiting := a
		if res.Runs[0].FlowRunID == a.ID && res.Runs[0].Outcome == dispatch.Submitted ||
			res.Runs[1].FlowRunID == a.ID && res.Runs[1].Outcome == dispatch.Submitted {
			waiting = b
		}
		if r := e.read(waiting.ID); *r.StateName != "AwaitingConcurrencySlot" {
			t.Errorf("the second run is %s, want AwaitingConcurrencySlot", *r.StateName)
		}
		for _, r := range res.Runs {
			if r.InfrastructureID != "" {
				backend.Stop(t.Context(), r.InfrastructureID)
			}
		}
	})
}

func TestDispatcher_RunOnce_unknownPool(t *testing.T) {
	t.Parallel()
	e := newEnv(t, nil)
	d, _ := e.dispatcher(t.TempDir())
	_, err := d.RunOnce(t.Context(), "no-such-pool")
	if err == nil || !strings.Contains(err.Error(), `"no-such-pool" does not exist`) || !prefect.IsNotFound(err) {
		t.Fatalf("err = %v, want a not-found error naming the pool and the fix", err)
	}
}

// cancellingBackend ends the pass's context during its first submission.
type cancellingBackend struct {
	dispatch.Backend
	once   sync.Once
	cancel context.CancelFunc
}

func (c *cancellingBackend) Start(ctx context.Context, job dispatch.Job) (string, error) {
	c.once.Do(c.cancel)
	return c.Backend.Start(ctx, job)
}

func TestDispatcher_RunOnce_contextEndingMidPassLeavesNoClaimUnrecorded(t *testing.T) {
	t.Parallel()
	e := newEnv(t, nil)
	const runs = 12
	ids := make([]string, runs)
	for i := range ids {
		ids[i] = e.run(e.dep).ID
	}
	b, err := process.New(process.Config{StateDir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(b.Wait)
	ctx, cancel := context.WithCancel(t.Context())
	d, err := dispatch.New(dispatch.Config{WorkerName: "pushpool-test", MaxConcurrentSubmissions: 4,
		SettingsEnv: map[string]string{"PREFECT_API_URL": srv.URL}}, e.api, &cancellingBackend{Backend: b, cancel: cancel}, nil)
	if err != nil {
		t.Fatal(err)
	}

	res, err := d.RunOnce(ctx, e.pool.Name)
	if err != nil {
		t.Fatal(err)
	}
	b.Wait()
	if res.Count(dispatch.Submitted) == 0 {
		t.Fatalf("pass = %+v; want at least the run whose submission ended the context submitted", res.Runs)
	}
	outcome := map[string]dispatch.Outcome{}
	for _, r := range res.Runs {
		outcome[r.FlowRunID] = r.Outcome
	}
	for _, id := range ids {
		r := e.read(id)
		switch {
		case r.InfrastructurePID != nil:
			// claimed and recorded
		case *r.StateType == prefect.StateScheduled:
			if o := outcome[id]; o != "" && o != dispatch.Skipped {
				t.Errorf("run %s is still Scheduled with outcome %q, want skipped or not reached", id, o)
			}
		default:
			t.Errorf("run %s is %s with no infrastructure recorded (outcome %q); states:\n%s", id, *r.StateType, outcome[id], e.history(id))
		}
	}
	t.Logf("%d submitted, %d skipped, %d not reached", res.Count(dispatch.Submitted), res.Count(dispatch.Skipped), runs-len(res.Runs))
}

// TestDispatcher_poolReadyWhilePassesRun: every pass heartbeats for the
// pool, so Prefect shows it READY while passes run and NOT_READY once they
// stop (after three missed heartbeat intervals), as with a worker.
func TestDispatcher_poolReadyWhilePassesRun(t *testing.T) {
	t.Parallel()
	e := newEnv(t, nil)
	status := func() string {
		p, err := e.api.ReadWorkPool(t.Context(), e.pool.Name)
		if err != nil {
			t.Fatal(err)
		}
		return p.Status
	}
	if s := status(); s != "NOT_READY" {
		t.Fatalf("a new pool is %s, want NOT_READY", s)
	}
	d, _ := e.dispatcherWith(t.TempDir(), dispatch.Config{HeartbeatInterval: time.Second})
	for range 4 {
		if _, err := d.RunOnce(t.Context(), e.pool.Name); err != nil {
			t.Fatal(err)
		}
		if s := status(); s != "READY" {
			t.Fatalf("the pool is %s while passes run, want READY", s)
		}
		time.Sleep(time.Second)
	}
	workers, err := e.api.ListWorkers(t.Context(), e.pool.Name)
	if err != nil || len(workers) != 1 || workers[0].Status != "ONLINE" {
		t.Fatalf("workers of the pool = %+v, %v; want one ONLINE worker", workers, err)
	}
	stopped := time.Now()
	for status() != "NOT_READY" {
		if time.Since(stopped) > 30*time.Second {
			t.Fatalf("the pool is still READY %s after the last pass", time.Since(stopped).Round(time.Second))
		}
		time.Sleep(250 * time.Millisecond)
	}
	if since := time.Since(stopped); since < 2*time.Second {
		t.Errorf("the pool went NOT_READY %s after the last pass, before three heartbeat intervals", since)
	}
}

// slowBackend takes delay for every submission and never finishes the first:
// a cloud API that hangs.
type slowBackend struct {
	dispatch.Backend
	delay time.Duration
	first sync.Once
}

func (s *slowBackend) Start(ctx context.Context, job dispatch.Job) (string, error) {
	stuck := false
	s.first.Do(func() { stuck = true })
	if stuck {
		<-ctx.Done()
		return "", fmt.Errorf("submit flow run %s: %w", job.FlowRunID, context.Cause(ctx))
	}
	select {
	case <-time.After(s.delay):
	case <-ctx.Done():
		return "", fmt.Errorf("submit flow run %s: %w", job.FlowRunID, context.Cause(ctx))
	}
	return s.Backend.Start(ctx, job)
}

// TestDispatcher_RunOnce_invocationDeadline: a cloud function's context
// carries the platform's deadline. The pass stops claiming early, abandons a
// hanging submission in time to put its run back in the schedule, and
// returns before the deadline with every claimed run recorded: no run is
// left Pending without an infrastructure id.
func TestDispatcher_RunOnce_invocationDeadline(t *testing.T) {
	t.Parallel()
	e := newEnv(t, nil)
	const runs = 16
	ids := make([]string, runs)
	for i := range ids {
		ids[i] = e.run(e.dep).ID
	}
	b, err := process.New(process.Config{StateDir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(b.Wait)
	d, err := dispatch.New(dispatch.Config{WorkerName: "pushpool-test", MaxConcurrentSubmissions: 2,
		SubmitReserve: 1500 * time.Millisecond, RecordReserve: time.Second,
		SettingsEnv: map[string]string{"PREFECT_API_URL": srv.URL}}, e.api, &slowBackend{Backend: b, delay: 700 * time.Millisecond}, nil)
	if err != nil {
		t.Fatal(err)
	}

	ctx, cancel := context.WithTimeout(t.Context(), 5*time.Second)
	defer cancel()
	deadline, _ := ctx.Deadline()
	res, err := d.RunOnce(ctx, e.pool.Name)
	if err != nil {
		t.Fatal(err)
	}
	if late := time.Since(deadline); late > 0 {
		t.Errorf("RunOnce returned %v after the invocation deadline", late)
	}
	b.Wait()
	var recorded, requeued, untouched int
	for _, id := range ids {
		r := e.read(id)
		switch {
		case r.InfrastructurePID != nil:
			recorded++
		case *r.StateType == prefect.StateScheduled && strings.Contains(e.logs(id), "time running out"):
			requeued++
		case *r.StateType == prefect.StateScheduled:
			untouched++
		default:
			t.Errorf("run %s is %s with no infrastructure recorded; states:\n%s", id, *r.StateType, e.history(id))
		}
	}
	t.Logf("%d recorded, %d put back after the deadline cut their submission, %d not claimed; pass %+v", recorded, requeued, untouched, res.Runs)
	// The hanging submission is always cut; on a loaded machine a slow one
	// started just before the cut-off may be cut too, and is put back alike.
	if recorded == 0 || requeued < 1 || untouched == 0 {
		t.Errorf("recorded %d, requeued %d, untouched %d; want some recorded, the hanging one (at least) requeued, and claiming stopped before all %d", recorded, requeued, untouched, runs)
	}
}

// TestDispatcher_RunOnce_requestsPerRun counts the Prefect requests of a
// pass: three per run (claim, labels, infrastructure id), and a few per pass
// (pool, heartbeat, poll, the deployment and flow once, batched logs); a
// second pass within ReadCacheTTL reads neither the pool, nor the
// deployment, nor the flow again, and sends no heartbeat.
func TestDispatcher_RunOnce_requestsPerRun(t *testing.T) {
	t.Parallel()
	e := newEnv(t, nil)
	api := &countingAPI{API: e.api}
	// An hour's heartbeat interval: the second pass comes well within half
	// of it however slow the machine (with 30 s it may not).
	d, err := dispatch.New(dispatch.Config{WorkerName: "pushpool-test", Lookahead: dispatch.DefaultLookahead, ReadCacheTTL: time.Hour,
		HeartbeatInterval: time.Hour, SettingsEnv: map[string]string{"PREFECT_API_URL": srv.URL}}, api, noopBackend{}, nil)
	if err != nil {
		t.Fatal(err)
	}
	const n = 20
	for _, perPass := range []int{7, 2} {
		for range n {
			e.run(e.dep)
		}
		api.n.Store(0)
		api.logs.Store(0)
		start := time.Now()
		res, err := d.RunOnce(t.Context(), e.pool.Name)
		if err != nil || res.Count(dispatch.Submitted) != n {
			t.Fatalf("pass = %+v, %v; want %d runs submitted", res, err, n)
		}
		// Log lines go out in batches at most 2 s apart: a pass slowed by a
		// loaded machine may send one more batch per 2 s it took.
		slow := min(api.logs.Load()-1, int64(time.Since(start)/(2*time.Second)))
		if got, limit := api.n.Load(), int64(3*n+perPass)+max(slow, 0); got > limit {
			t.Errorf("a pass over %d runs made %d Prefect requests (%d of them log batches), want at most %d (3 a run, %d a pass, and %d log batches for a slow pass)", n, got, api.logs.Load(), limit, perPass, max(slow, 0))
		}
	}
}
