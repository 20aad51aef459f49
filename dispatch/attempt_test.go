package dispatch_test

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/pushpool/pushpool/dispatch"
	"github.com/pushpool/pushpool/dispatch/prefect"
)

// hourLater is a clock an hour ahead: a reconciler on it judges every claim
// as older than its claim timeout.
func hourLater() time.Time { return time.Now().Add(time.Hour) }

// starts counts the lines of the stand-in flow's starts file naming runID.
func (e *env) startsOf(runID string) int {
	e.t.Helper()
	data, err := os.ReadFile(e.starts)
	if err != nil && !errors.Is(err, os.ErrNotExist) {
		e.t.Fatal(err)
	}
	return strings.Count(string(data), runID)
}

// stateNames returns the names of the run's states, oldest first.
func (e *env) stateNames(id string) []string {
	e.t.Helper()
	states, err := e.api.ReadFlowRunStates(e.t.Context(), id)
	if err != nil {
		e.t.Fatal(err)
	}
	names := make([]string, len(states))
	for i, s := range states {
		names[i] = s.Name
	}
	return names
}

// reschedules counts the recoveries that put the run back to the schedule
// (a late lock's put-back copy of a Rescheduled state is not one).
func (e *env) reschedules(id string) int {
	e.t.Helper()
	states, err := e.api.ReadFlowRunStates(e.t.Context(), id)
	if err != nil {
		e.t.Fatal(err)
	}
	n := 0
	for _, s := range states {
		if s.Name == "Rescheduled" && s.Message != nil && strings.HasPrefix(*s.Message, "Flow run was claimed at") {
			n++
		}
	}
	return n
}

func countOf(names []string, name string) int {
	n := 0
	for _, s := range names {
		if s == name {
			n++
		}
	}
	return n
}

// retry runs the flow run again as the UI's Retry does: forced back to
// Scheduled (AwaitingRetry), due now.
func (e *env) retry(id string) {
	e.t.Helper()
	now := time.Now().UTC()
	if _, err := e.api.SetFlowRunState(e.t.Context(), id, prefect.StateCreate{Type: prefect.StateScheduled, Name: "AwaitingRetry",
		StateDetails: prefect.StateDetails{ScheduledTime: &now}}, true); err != nil {
		e.t.Fatalf("retry flow run %s: %v", id, err)
	}
}

// TestAttempt_retriedRunStartsAgain: a run whose first attempt crashed is
// retried from the UI. The retry is a new attempt: while it is claimed and
// not yet started, the reconciler does not judge it by the first attempt's
// exit; its abandoned claim is recovered; and it starts on new
// infrastructure and completes.
func TestAttempt_retriedRunStartsAgain(t *testing.T) {
	t.Parallel()
	e := newEnv(t, nil)
	dep := e.deployment("fail-first", func(in *prefect.DeploymentCreate) {
		in.JobVariables = map[string]any{"command": e.command, "env": map[string]any{"FAIL_FIRST": "1"}}
	})
	run := e.run(dep)
	d, b := e.dispatcher(t.TempDir())
	first := e.submitted(d, run.ID)
	b.Wait()
	rec := e.reconciler(d, dispatch.ReconcileConfig{ExitGrace: time.Nanosecond})
	got := e.reconcileUntil(rec, run.ID, prefect.StateCrashed)
	if !strings.Contains(stateMessage(got), "status code 1") {
		t.Fatalf("first attempt crashed with %q; want exit code 1", stateMessage(got))
	}

	// Retried; a dispatcher claims it and dies before starting anything.
	e.retry(run.ID)
	dead, _ := e.dispatcher(t.TempDir())
	dead.DieAfterClaim(func(string) bool { return true })
	if res, err := dead.RunOnce(t.Context(), e.pool.Name); err != nil || res.Count(dispatch.Skipped) != 1 {
		t.Fatalf("the dying pass = %+v, %v", res, err)
	}
	// The recorded pid is the first attempt's, which exited 1: it is not
	// this attempt's, so the claim is left alone within the claim timeout.
	if res, err := rec.RunOnce(t.Context(), e.pool.Name); err != nil || len(res.Runs) != 0 {
		t.Fatalf("reconcile of a fresh retry claim = %+v, %v; want nothing done (the pid is the earlier attempt's)", res, err)
	}
	if st := e.read(run.ID); *st.StateType != prefect.StatePending {
		t.Fatalf("the retried run is %s, want still PENDING", *st.StateType)
	}
	// Past the claim timeout the abandoned claim is rescheduled...
	late, _ := e.dispatcherWith(t.TempDir(), dispatch.Config{Now: hourLater})
	res, err := e.reconciler(late, dispatch.ReconcileConfig{}).RunOnce(t.Context(), e.pool.Name)
	if err != nil || res.Count(dispatch.ActionRescheduled) != 1 {
		t.Fatalf("reconcile past the claim timeout = %+v, %v; want the retry rescheduled", res, err)
	}
	// ...and the next pass starts it on new infrastructure.
	second := e.submitted(d, run.ID)
	if second == first {
		t.Fatalf("the retry got the first attempt's infrastructure %s", first)
	}
	e.waitState(run.ID, prefect.StateCompleted)
	if n := e.startsOf(run.ID); n != 2 {
		t.Errorf("the run started %d times, want twice (the crashed attempt and the retry)", n)
	}
	names := e.stateNames(run.ID)
	for name, want := range map[string]int{"Rescheduled": 1, "Crashed": 1, "Completed": 1} {
		if n := countOf(names, name); n != want {
			t.Errorf("%d %s states, want %d; history %v", n, name, want, names)
		}
	}
}

// TestAttempt_startedButUnrecordedIsFound: a dispatcher killed after
// starting a run's job but before recording it. Past the claim timeout the
// reconciler finds the attempt's infrastructure, records it and starts
// nothing.
func TestAttempt_startedButUnrecordedIsFound(t *testing.T) {
	t.Parallel()
	e := newEnv(t, nil)
	run := e.run(e.longDeployment(20))
	state := t.TempDir()
	dead, b := e.dispatcher(state)
	t.Cleanup(func() { b.StopAll(context.Background()); b.Wait() })
	dead.DieAfterStart(func(string) bool { return true })
	if res, err := dead.RunOnce(t.Context(), e.pool.Name); err != nil || res.Count(dispatch.Skipped) != 1 {
		t.Fatalf("the dying pass = %+v, %v", res, err)
	}
	started := b.Running()
	if len(started) != 1 {
		t.Fatalf("processes running after the dying pass: %v, want one", started)
	}
	e.waitState(run.ID, prefect.StateRunning)
	if pid := e.read(run.ID).InfrastructurePID; pid != nil && *pid != "" {
		t.Fatalf("infrastructure_pid %s recorded; the dispatcher died before recording", *pid)
	}
	// Another dispatcher on the host (same state directory), an hour later.
	late, _ := e.dispatcherWith(state, dispatch.Config{Now: hourLater})
	res, err := e.reconciler(late, dispatch.ReconcileConfig{}).RunOnce(t.Context(), e.pool.Name)
	if err != nil || res.Count(dispatch.ActionRecorded) != 1 {
		t.Fatalf("reconcile = %+v, %v; want the attempt's process found and recorded", res, err)
	}
	if pid := e.read(run.ID).InfrastructurePID; pid == nil || *pid != started[0] {
		t.Errorf("recorded infrastructure_pid = %v, want the started process %s", pid, started[0])
	}
	if n := e.startsOf(run.ID); n != 1 {
		t.Errorf("the run started %d times, want once", n)
	}
	e.wantLog(run.ID, "found and recorded it")
}

// TestAttempt_recoveryHasOneWinner: eight reconcilers judge the same
// abandoned claims at once; each claim is rescheduled exactly once.
func TestAttempt_recoveryHasOneWinner(t *testing.T) {
	t.Parallel()
	e := newEnv(t, nil)
	const runs, reconcilers = 6, 8
	ids := make([]string, runs)
	for i := range ids {
		ids[i] = e.run(e.dep).ID
	}
	dead, _ := e.dispatcher(t.TempDir())
	dead.DieAfterClaim(func(string) bool { return true })
	if res, err := dead.RunOnce(t.Context(), e.pool.Name); err != nil || res.Count(dispatch.Skipped) != runs {
		t.Fatalf("the dying pass = %+v, %v; want all %d runs claimed and abandoned", res, err, runs)
	}
	recs := make([]*dispatch.Reconciler, reconcilers)
	for i := range recs {
		late, _ := e.dispatcherWith(t.TempDir(), dispatch.Config{Now: hourLater})
		recs[i] = e.reconciler(late, dispatch.ReconcileConfig{})
	}
	// Rounds of all reconcilers at once, until every claim is recovered. On
	// PostgreSQL the first round settles all; on SQLite, whose server reads
	// the current state without a row lock, two racing locks may both be
	// accepted and then both back off, and a later round settles the run.
	var rescheduled atomic.Int64
	for round := 1; ; round++ {
		var wg sync.WaitGroup
		start := make(chan struct{})
		for _, rec := range recs {
			wg.Go(func() {
				<-start
				res, err := rec.RunOnce(t.Context(), e.pool.Name)
				if err != nil {
					t.Error(err)
				}
				rescheduled.Add(int64(res.Count(dispatch.ActionRescheduled)))
			})
		}
		close(start)
		wg.Wait()
		pending := 0
		for _, id := range ids {
			if *e.read(id).StateType == prefect.StatePending {
				pending++
			}
		}
		if pending == 0 {
			t.Logf("all %d claims recovered in %d round(s)", runs, round)
			break
		}
		if round == 5 {
			t.Fatalf("%d claims still unrecovered after %d rounds", pending, round)
		}
	}
	if n := rescheduled.Load(); n != runs {
		t.Errorf("%d reconcilers rescheduled %d claims in all, want each of the %d once", reconcilers, n, runs)
	}
	for _, id := range ids {
		if n := e.reschedules(id); n != 1 {
			t.Errorf("run %s was rescheduled %d times, want once; states:\n%s", id, n, e.history(id))
		}
		if got := e.read(id); *got.StateType != prefect.StateScheduled {
			t.Errorf("run %s is %s after the recovery, want SCHEDULED (%s); states:\n%s", id, *got.StateType, stateMessage(got), e.history(id))
		}
	}
}

// TestAttempt_suspendedRunResumesOnNewInfrastructure: a real flow suspends
// itself (its process exits); resumed, it is a new attempt, started on new
// infrastructure, and completes.
func TestAttempt_suspendedRunResumesOnNewInfrastructure(t *testing.T) {
	t.Parallel()
	e := newEnv(t, nil)
	flows, _ := filepath.Abs("testdata/flows")
	marks := filepath.Join(t.TempDir(), "starts")
	entrypoint := "suspender.py:suspender"
	dep := e.deployment("suspender", func(in *prefect.DeploymentCreate) {
		in.Entrypoint = &entrypoint
		in.PullSteps = []map[string]any{{"prefect.deployments.steps.set_working_directory": map[string]any{"directory": flows}}}
		in.Parameters = map[string]any{"marks": marks}
		in.JobVariables = map[string]any{
			"command": filepath.Join(srv.Venv, "bin", "prefect") + " flow-run execute",
			"env":     map[string]any{"PREFECT_HOME": t.TempDir(), "PREFECT_RESULTS_PERSIST_BY_DEFAULT": "true", "PREFECT_LOCAL_STORAGE_PATH": t.TempDir()},
		}
	})
	run := e.run(dep)
	d, b := e.dispatcher(t.TempDir())
	first := e.submitted(d, run.ID)
	e.waitStateWithin(run.ID, prefect.StatePaused, 2*time.Minute)
	b.Wait() // a suspended flow's process exits
	if _, err := e.api.ResumeFlowRun(t.Context(), run.ID); err != nil {
		t.Fatalf("resume flow run %s: %v", run.ID, err)
	}
	if got := e.read(run.ID); *got.StateType != prefect.StateScheduled {
		t.Fatalf("the resumed run is %s, want SCHEDULED (to be started again)", *got.StateType)
	}
	second := e.submitted(d, run.ID)
	if second == first {
		t.Fatalf("the resumed run got the suspended attempt's infrastructure %s", first)
	}
	e.waitStateWithin(run.ID, prefect.StateCompleted, 2*time.Minute)
	data, _ := os.ReadFile(marks)
	if n := strings.Count(string(data), "start"); n != 2 {
		t.Errorf("the flow started %d times, want twice (before suspending, after resuming): %q", n, data)
	}
}

// pendingBackend starts nothing real: its jobs stay pending forever with a
// platform's reason, as a task whose image cannot be pulled.
type pendingBackend struct {
	dispatch.Backend
	stopped atomic.Int64
}

func (p *pendingBackend) Start(_ context.Context, job dispatch.Job) (string, error) {
	return "pending:" + job.Attempt.Token(), nil
}

func (p *pendingBackend) Status(_ context.Context, id string) (dispatch.Status, error) {
	_, key, _ := dispatch.ParseToken(strings.TrimPrefix(id, "pending:"))
	return dispatch.Status{State: dispatch.StatePending, Attempt: key, Reason: "CannotPullContainerError: pull image manifest has been retried 5 time(s)"}, nil
}

func (p *pendingBackend) Stop(context.Context, string) error { p.stopped.Add(1); return nil }

// TestAttempt_infrastructureThatNeverStartsIsCrashed: past the start
// timeout a run whose infrastructure is still pending is crashed with the
// platform's reason and its infrastructure stopped. The timeout is the
// job's task_start_timeout_seconds, else Config.StartTimeout; the
// dispatcher labels the run with it, and without run labels
// (Config.NoRunLabels) the reconciler reads it from the rendered job.
func TestAttempt_infrastructureThatNeverStartsIsCrashed(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name        string
		noLabels    bool
		jobTimeout  any // the job configuration's task_start_timeout_seconds; nil: none
		wantTimeout string
	}{
		{name: "labelled, Config.StartTimeout", wantTimeout: "2s"},
		{name: "labelled, the job's timeout", jobTimeout: 3, wantTimeout: "3s"},
		{name: "no run labels, the job's timeout", noLabels: true, jobTimeout: 3, wantTimeout: "3s"},
		{name: "no run labels, Config.StartTimeout", noLabels: true, wantTimeout: "2s"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			e := newEnv(t, nil)
			if tc.jobTimeout != nil {
				tmpl := processTemplate(t, t.Context(), e.api)
				tmpl["job_configuration"].(map[string]any)["task_start_timeout_seconds"] = tc.jobTimeout
				if err := e.api.UpdateWorkPool(t.Context(), e.pool.Name, prefect.WorkPoolUpdate{BaseJobTemplate: tmpl}); err != nil {
					t.Fatal(err)
				}
			}
			run := e.run(e.dep)
			pb := &pendingBackend{}
			d, err := dispatch.New(dispatch.Config{StartTimeout: 2 * time.Second, NoRunLabels: tc.noLabels,
				SettingsEnv: map[string]string{"PREFECT_API_URL": srv.URL}}, e.api, pb, nil)
			if err != nil {
				t.Fatal(err)
			}
			e.submitted(d, run.ID)
			labels := e.read(run.ID).Labels
			if tc.noLabels {
				for k := range labels {
					if strings.HasPrefix(k, "prefect.worker.") || strings.HasPrefix(k, "prefect.work-pool.") || strings.HasPrefix(k, "pushpool.io/") {
						t.Errorf("label %s = %v; want no worker, pool or pushpool label with NoRunLabels", k, labels[k])
					}
				}
			} else if l := labels["pushpool.io/start-timeout-seconds"]; fmt.Sprint(l)+"s" != tc.wantTimeout {
				t.Errorf("start timeout label = %v, want %s", l, tc.wantTimeout)
			}
			rec := e.reconciler(d, dispatch.ReconcileConfig{})
			if res, err := rec.RunOnce(t.Context(), e.pool.Name); err != nil || len(res.Runs) != 0 {
				t.Fatalf("reconcile within the start timeout = %+v, %v; want nothing done", res, err)
			}
			got := e.reconcileUntilWithin(rec, run.ID, prefect.StateCrashed, 30*time.Second)
			msg := stateMessage(got)
			if !strings.Contains(msg, "did not start within "+tc.wantTimeout) || !strings.Contains(msg, "CannotPullContainerError") {
				t.Errorf("Crashed message = %q; want the start timeout %s and the platform's reason", msg, tc.wantTimeout)
			}
			if pb.stopped.Load() != 1 {
				t.Errorf("Stop was called %d times, want once", pb.stopped.Load())
			}
		})
	}
}

// throttledBackend fails every start as throttled; with startsAnyway it
// starts the job first, as a call whose response was lost after AWS applied
// it.
type throttledBackend struct {
	dispatch.Backend
	startsAnyway bool
	finds        atomic.Int64
}

func (tb *throttledBackend) Start(ctx context.Context, job dispatch.Job) (string, error) {
	if tb.startsAnyway {
		if _, err := tb.Backend.Start(ctx, job); err != nil {
			return "", err
		}
	}
	return "", fmt.Errorf("flow run %s: RunTask: ThrottlingException: Rate exceeded: %w", job.FlowRunID, dispatch.ErrRetryable)
}

func (tb *throttledBackend) Find(ctx context.Context, job dispatch.Job) (string, bool, error) {
	tb.finds.Add(1)
	return tb.Backend.Find(ctx, job)
}

// TestAttempt_retryableStartErrors: a start that fails as throttled but did
// start the job is recorded, not started again; one that started nothing is
// requeued with a backoff, MaxRequeues times in a row, then crashed.
func TestAttempt_retryableStartErrors(t *testing.T) {
	t.Parallel()
	e := newEnv(t, nil)
	_, pb := e.dispatcher(t.TempDir())

	t.Run("started anyway", func(t *testing.T) {
		run := e.run(e.dep)
		tb := &throttledBackend{Backend: pb, startsAnyway: true}
		d, err := dispatch.New(dispatch.Config{SettingsEnv: map[string]string{"PREFECT_API_URL": srv.URL}}, e.api, tb, nil)
		if err != nil {
			t.Fatal(err)
		}
		e.submitted(d, run.ID)
		e.waitState(run.ID, prefect.StateCompleted)
		if n := e.startsOf(run.ID); n != 1 {
			t.Errorf("the run started %d times, want once", n)
		}
		if tb.finds.Load() != 1 {
			t.Errorf("Find was called %d times, want once (before giving the attempt up)", tb.finds.Load())
		}
		e.wantLog(run.ID, "but the infrastructure had started")
	})
	t.Run("requeued then crashed", func(t *testing.T) {
		run := e.run(e.dep)
		tb := &throttledBackend{Backend: pb}
		d, err := dispatch.New(dispatch.Config{MaxRequeues: 2, RequeueBackoff: time.Millisecond,
			SettingsEnv: map[string]string{"PREFECT_API_URL": srv.URL}}, e.api, tb, nil)
		if err != nil {
			t.Fatal(err)
		}
		deadline := time.Now().Add(time.Minute)
		for *e.read(run.ID).StateType != prefect.StateCrashed {
			if time.Now().After(deadline) {
				t.Fatalf("run is not crashed after a minute of throttled starts; history %v", e.stateNames(run.ID))
			}
			if _, err := d.RunOnce(t.Context(), e.pool.Name); err != nil {
				t.Fatal(err)
			}
			time.Sleep(50 * time.Millisecond)
		}
		names := e.stateNames(run.ID)
		if n := countOf(names, "Requeued"); n != 2 {
			t.Errorf("%d Requeued states, want 2 (MaxRequeues); history %v", n, names)
		}
		if msg := stateMessage(e.read(run.ID)); !strings.Contains(msg, "ThrottlingException") || !strings.Contains(msg, "2 times in a row") {
			t.Errorf("Crashed message = %q; want the cause and the requeue count", msg)
		}
		if n := e.startsOf(run.ID); n != 0 {
			t.Errorf("the run started %d times, want never", n)
		}
	})
}

// TestDispatcher_DispatchRuns_obeysQueuesAndLimits: runs woken by id (a
// delayed wake-up, a shard, a webhook) start only when the pool's
// get_scheduled_flow_runs would hand them out: not from a paused queue, not
// beyond a concurrency limit.
func TestDispatcher_DispatchRuns_obeysQueuesAndLimits(t *testing.T) {
	t.Parallel()
	limit := 1
	e := newEnv(t, &limit)
	d, b := e.dispatcher(t.TempDir())
	t.Cleanup(func() { b.StopAll(context.Background()); b.Wait() })
	long := e.longDeployment(30)
	a, c := e.run(long), e.run(long)
	wake := func(id string) dispatch.RunResult {
		res, err := d.DispatchRuns(t.Context(), e.pool.Name, []dispatch.Wake{{FlowRunID: id}})
		if err != nil || len(res.Runs) != 1 {
			t.Fatalf("DispatchRuns(%s) = %+v, %v", id, res, err)
		}
		return res.Runs[0]
	}
	if r := wake(a.ID); r.Outcome != dispatch.Submitted {
		t.Fatalf("first woken run: %s (%v), want submitted", r.Outcome, r.Err)
	}
	// The pool's limit of 1 is taken by the first run.
	if r := wake(c.ID); r.Outcome != dispatch.Deferred || !strings.Contains(fmt.Sprint(r.Err), "concurrency limit") {
		t.Errorf("a run woken beyond the pool's concurrency limit: %s (%v), want deferred", r.Outcome, r.Err)
	}
	if got := e.read(c.ID); *got.StateType != prefect.StateScheduled {
		t.Errorf("the deferred run is %s, want SCHEDULED", *got.StateType)
	}

	// A paused queue holds its runs.
	q := "paused-" + e.pool.Name[len(e.pool.Name)-6:]
	if _, err := e.api.CreateWorkQueue(t.Context(), e.pool.Name, prefect.WorkQueueCreate{Name: q, IsPaused: true}); err != nil {
		t.Fatal(err)
	}
	e2 := newEnv(t, nil)
	d2, b2 := e2.dispatcher(t.TempDir())
	t.Cleanup(func() { b2.StopAll(context.Background()); b2.Wait() })
	if _, err := e2.api.CreateWorkQueue(t.Context(), e2.pool.Name, prefect.WorkQueueCreate{Name: q, IsPaused: true}); err != nil {
		t.Fatal(err)
	}
	inPaused := e2.deployment("paused", func(in *prefect.DeploymentCreate) { in.WorkQueueName = q })
	p := e2.run(inPaused)
	res, err := d2.DispatchRuns(t.Context(), e2.pool.Name, []dispatch.Wake{{FlowRunID: p.ID}})
	if err != nil || len(res.Runs) != 1 || res.Runs[0].Outcome != dispatch.Deferred {
		t.Fatalf("a run of a paused queue woken by id: %+v, %v; want deferred", res, err)
	}
	if got := e2.read(p.ID); *got.StateType != prefect.StateScheduled {
		t.Errorf("the run of the paused queue is %s, want SCHEDULED", *got.StateType)
	}
}
