package dispatch_test

import (
	"context"
	"os"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/pushpool/pushpool/dispatch"
	"github.com/pushpool/pushpool/dispatch/backend/process"
	"github.com/pushpool/pushpool/dispatch/prefect"
)

// longDeployment runs the stand-in flow, which stays Running for seconds.
func (e *env) longDeployment(seconds int) prefect.Deployment {
	return e.deployment("long", func(in *prefect.DeploymentCreate) {
		in.JobVariables = map[string]any{"command": e.command + " " + strconv.Itoa(seconds)}
	})
}

// submitted dispatches the env's due runs and returns the infrastructure
// id of the given run.
func (e *env) submitted(d *dispatch.Dispatcher, runID string) string {
	e.t.Helper()
	res, err := d.RunOnce(e.t.Context(), e.pool.Name)
	if err != nil {
		e.t.Fatal(err)
	}
	for _, r := range res.Runs {
		if r.FlowRunID == runID && r.Outcome == dispatch.Submitted {
			return r.InfrastructureID
		}
	}
	e.t.Fatalf("run %s was not submitted: %+v", runID, res.Runs)
	return ""
}

func pidOf(t testing.TB, infraID string) int {
	t.Helper()
	_, p, _ := strings.Cut(infraID, ":")
	pid, err := strconv.Atoi(p)
	if err != nil {
		t.Fatalf("infrastructure id %q has no pid", infraID)
	}
	return pid
}

func (e *env) reconciler(d *dispatch.Dispatcher, cfg dispatch.ReconcileConfig) *dispatch.Reconciler {
	e.t.Helper()
	r, err := dispatch.NewReconciler(d, cfg)
	if err != nil {
		e.t.Fatal(err)
	}
	return r
}

// reconcileUntil runs reconcile passes until the run reaches the state type.
func (e *env) reconcileUntil(r *dispatch.Reconciler, id string, want prefect.StateType) prefect.FlowRun {
	e.t.Helper()
	return e.reconcileUntilWithin(r, id, want, 60*time.Second)
}

func (e *env) reconcileUntilWithin(r *dispatch.Reconciler, id string, want prefect.StateType, within time.Duration) prefect.FlowRun {
	e.t.Helper()
	deadline := time.Now().Add(within)
	for {
		if _, err := r.RunOnce(e.t.Context(), e.pool.Name); err != nil {
			e.t.Fatal(err)
		}
		got := e.read(id)
		if *got.StateType == want {
			return got
		}
		if time.Now().After(deadline) {
			e.t.Fatalf("run %s is %s, want %s; states:\n%s", id, *got.StateType, want, e.history(id))
		}
		time.Sleep(200 * time.Millisecond)
	}
}

func stateMessage(r prefect.FlowRun) string {
	if r.State == nil || r.State.Message == nil {
		return ""
	}
	return *r.State.Message
}

func TestReconciler_crashesAKilledProcessWithTheExplanation(t *testing.T) {
	t.Parallel()
	e := newEnv(t, nil)
	run := e.run(e.longDeployment(300))
	d, _ := e.dispatcher(t.TempDir())
	infra := e.submitted(d, run.ID)
	e.waitState(run.ID, prefect.StateRunning)
	rec := e.reconciler(d, dispatch.ReconcileConfig{})

	// A running process is left alone.
	if res, err := rec.RunOnce(t.Context(), e.pool.Name); err != nil || len(res.Runs) != 0 || res.Checked != 1 {
		t.Fatalf("reconcile of a healthy run = %+v, %v; want it checked and left alone", res, err)
	}
	if err := syscall.Kill(pidOf(t, infra), syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	got := e.reconcileUntil(rec, run.ID, prefect.StateCrashed)
	msg := stateMessage(got)
	if !strings.Contains(msg, "non-zero status code 137") || !strings.Contains(msg, "killed") {
		t.Errorf("Crashed message = %q; want exit code 137 explained", msg)
	}
	e.wantLog(run.ID, "status code 137")
}

func TestReconciler_cancellation(t *testing.T) {
	t.Parallel()
	e := newEnv(t, nil)
	d, _ := e.dispatcher(t.TempDir())
	rec := e.reconciler(d, dispatch.ReconcileConfig{CancelGrace: time.Nanosecond})
	cancelling := prefect.StateCreate{Type: prefect.StateCancelling, Name: "Cancelling", Message: "cancelled by a test"}

	t.Run("a running process is stopped", func(t *testing.T) {
		run := e.run(e.longDeployment(300))
		infra := e.submitted(d, run.ID)
		e.waitState(run.ID, prefect.StateRunning)
		if _, err := e.api.SetFlowRunState(t.Context(), run.ID, cancelling, false); err != nil {
			t.Fatal(err)
		}
		got := e.reconcileUntil(rec, run.ID, prefect.StateCancelled)
		if stateMessage(got) != "cancelled by a test" {
			t.Errorf("Cancelled message = %q; want the Cancelling state's", stateMessage(got))
		}
		if err := syscall.Kill(pidOf(t, infra), 0); err == nil {
			t.Errorf("process %s still runs after the cancellation", infra)
		}
		e.wantLog(run.ID, "was stopped by pushpool")
	})
	t.Run("a claim with no infrastructure yet", func(t *testing.T) {
		run := e.run(e.dep)
		if _, err := e.api.SetFlowRunState(t.Context(), run.ID, prefect.StateCreate{Type: prefect.StatePending}, false); err != nil {
			t.Fatal(err)
		}
		if _, err := e.api.SetFlowRunState(t.Context(), run.ID, cancelling, false); err != nil {
			t.Fatal(err)
		}
		e.reconcileUntil(rec, run.ID, prefect.StateCancelled)
		e.wantLog(run.ID, "before any infrastructure was started")
	})
}

func TestReconciler_abandonedClaimIsResubmittedOnce(t *testing.T) {
	t.Parallel()
	e := newEnv(t, nil)
	run := e.run(e.dep)
	// A dispatcher killed between claim and submit: the run is PENDING,
	// nothing started, no infrastructure recorded.
	dead, _ := e.dispatcher(t.TempDir())
	dead.DieAfterClaim(func(string) bool { return true })
	if res, err := dead.RunOnce(t.Context(), e.pool.Name); err != nil || res.Count(dispatch.Skipped) != 1 {
		t.Fatalf("the dying pass = %+v, %v; want the run claimed and skipped", res, err)
	}
	if got := e.read(run.ID); got.State.Type != prefect.StatePending || (got.InfrastructurePID != nil && *got.InfrastructurePID != "") {
		t.Fatalf("after the dispatcher died the run is %s with pid %v; want PENDING without infrastructure", got.State.Type, got.InfrastructurePID)
	}
	d, b := e.dispatcher(t.TempDir())
	if res, _ := d.RunOnce(t.Context(), e.pool.Name); len(res.Runs) != 0 {
		t.Fatalf("a dispatch pass touched the claimed run: %+v", res.Runs)
	}
	// A reconciler within the claim timeout leaves the claim alone.
	patient := e.reconciler(d, dispatch.ReconcileConfig{ClaimTimeout: time.Hour})
	if res, err := patient.RunOnce(t.Context(), e.pool.Name); err != nil || len(res.Runs) != 0 {
		t.Fatalf("reconcile within the claim timeout = %+v, %v; want nothing done", res, err)
	}
	// Past it (a reconciler whose clock is an hour ahead), the claim is
	// rescheduled, and the next pass submits the run once.
	d2, b2 := e.dispatcherWith(t.TempDir(), dispatch.Config{Now: func() time.Time { return time.Now().Add(time.Hour) }})
	late := e.reconciler(d2, dispatch.ReconcileConfig{})
	res, err := late.RunOnce(t.Context(), e.pool.Name)
	if err != nil || res.Count(dispatch.ActionRescheduled) != 1 {
		t.Fatalf("reconcile past the claim timeout = %+v, %v; want the run rescheduled", res, err)
	}
	e.submitted(d, run.ID)
	// Further passes and reconciles find nothing left to do for the run.
	if res, _ := d.RunOnce(t.Context(), e.pool.Name); res.Count(dispatch.Submitted) != 0 {
		t.Errorf("a later pass submitted again: %+v", res.Runs)
	}
	b.Wait()
	b2.Wait()
	e.waitState(run.ID, prefect.StateCompleted)
	data, err := os.ReadFile(e.starts)
	if err != nil {
		t.Fatal(err)
	}
	if n := strings.Count(string(data), run.ID); n != 1 {
		t.Errorf("run started %d times, want once", n)
	}
	e.wantLog(run.ID, "rescheduled for the next dispatch pass")
}

func TestReconciler_abandonedAgainAndAgainIsCrashed(t *testing.T) {
	t.Parallel()
	e := newEnv(t, nil)
	run := e.run(e.dep)
	// The run's abandoned claims were rescheduled MaxReschedules (2) times
	// already and claimed again, and that claim is abandoned too.
	for _, st := range []prefect.StateCreate{
		{Type: prefect.StatePending, Name: "Pending"},
		{Type: prefect.StatePending, Name: "Recovering"},
		{Type: prefect.StateScheduled, Name: "Rescheduled"},
		{Type: prefect.StatePending, Name: "Pending"},
		{Type: prefect.StatePending, Name: "Recovering"},
		{Type: prefect.StateScheduled, Name: "Rescheduled"},
		{Type: prefect.StatePending, Name: "Pending"},
	} {
		if r, err := e.api.SetFlowRunState(t.Context(), run.ID, st, false); err != nil || r.Status != prefect.Accept {
			t.Fatalf("set %s %s: %+v, %v", st.Type, st.Name, r, err)
		}
	}
	now := time.Now()
	d, _ := e.dispatcherWith(t.TempDir(), dispatch.Config{Now: func() time.Time { return now.Add(2 * time.Hour) }})
	got := e.reconcileUntil(e.reconciler(d, dispatch.ReconcileConfig{ClaimTimeout: time.Hour, MaxReschedules: 2}), run.ID, prefect.StateCrashed)
	if !strings.Contains(stateMessage(got), "even after it was rescheduled 2 times in a row") {
		t.Errorf("Crashed message = %q", stateMessage(got))
	}
}

// TestReconciler_Observe applies pushed infrastructure events with the
// polling rules: a stale event changes nothing, a failure event crashes the
// run with the platform's reason, and an event for a run whose dispatcher
// died before recording its infrastructure records it first.
func TestReconciler_Observe(t *testing.T) {
	t.Parallel()
	e := newEnv(t, nil)
	dep := e.longDeployment(300)
	d, b := e.dispatcher(t.TempDir())
	t.Cleanup(func() { b.StopAll(t.Context()); b.Wait() })
	rec := e.reconciler(d, dispatch.ReconcileConfig{})
	oom := dispatch.Status{State: dispatch.StateExited, ExitCode: 137, Reason: "OutOfMemoryError: Container killed due to memory usage"}

	run := e.run(dep)
	infra := e.submitted(d, run.ID)
	e.waitState(run.ID, prefect.StateRunning)
	// An event about other infrastructure (an earlier attempt) is ignored.
	if c, acted, err := rec.Observe(t.Context(), dispatch.InfraEvent{FlowRunID: run.ID, InfrastructureID: "elsewhere:1", Status: oom}); err != nil || acted {
		t.Fatalf("Observe of a stale event = %+v, %v, %v; want nothing done", c, acted, err)
	}
	// A running report of a running run needs nothing.
	if c, acted, err := rec.Observe(t.Context(), dispatch.InfraEvent{FlowRunID: run.ID, InfrastructureID: infra,
		Status: dispatch.Status{State: dispatch.StateRunning}}); err != nil || acted {
		t.Fatalf("Observe of a running report = %+v, %v, %v; want nothing done", c, acted, err)
	}
	c, acted, err := rec.Observe(t.Context(), dispatch.InfraEvent{FlowRunID: run.ID, InfrastructureID: infra, Status: oom})
	if err != nil || !acted || c.Action != dispatch.ActionCrashed {
		t.Fatalf("Observe of an OOM exit = %+v, %v, %v; want the run crashed", c, acted, err)
	}
	msg := stateMessage(e.read(run.ID))
	if !strings.Contains(msg, "137") || !strings.Contains(msg, "OutOfMemoryError") {
		t.Errorf("Crashed message = %q; want the exit code and the platform's reason", msg)
	}
	// Repeated delivery of the same event changes nothing more.
	if _, acted, err := rec.Observe(t.Context(), dispatch.InfraEvent{FlowRunID: run.ID, InfrastructureID: infra, Status: oom}); err != nil || acted {
		t.Errorf("a redelivered event acted again (%v, %v)", acted, err)
	}

	// A claimed run whose dispatcher died before recording: the event's
	// infrastructure is recorded, then judged.
	orphan := e.run(dep)
	if r, err := e.api.SetFlowRunState(t.Context(), orphan.ID, prefect.StateCreate{Type: prefect.StatePending, Name: "Pending",
		StateDetails: prefect.StateDetails{TransitionID: prefect.NewTransitionID()}}, false); err != nil || r.Status != prefect.Accept {
		t.Fatalf("claim: %+v, %v", r, err)
	}
	fail := dispatch.Status{State: dispatch.StateExited, ExitCode: 1, Reason: "Essential container in task exited"}
	c, acted, err = rec.Observe(t.Context(), dispatch.InfraEvent{FlowRunID: orphan.ID, InfrastructureID: "cluster::arn:aws:ecs:us-east-1:123456789012:task/cluster/abc", Status: fail})
	if err != nil || !acted || c.Action != dispatch.ActionCrashed {
		t.Fatalf("Observe for an unrecorded run = %+v, %v, %v; want it crashed", c, acted, err)
	}
	got := e.read(orphan.ID)
	if got.InfrastructurePID == nil || !strings.HasSuffix(*got.InfrastructurePID, "task/cluster/abc") {
		t.Errorf("infrastructure_pid = %v; want the event's infrastructure recorded", got.InfrastructurePID)
	}
	e.wantLog(orphan.ID, "recorded on the flow run")

	if _, _, err := rec.Observe(t.Context(), dispatch.InfraEvent{InfrastructureID: infra, Status: oom}); err == nil {
		t.Error("Observe of an event without a flow run id succeeded; want an error")
	}
}

// sweeper is a process backend that also sweeps, counting its calls.
type sweeper struct {
	*process.Backend
	calls int
}

func (s *sweeper) Sweep(context.Context) (int, error) { s.calls++; return 2, nil }

func TestReconciler_RunOnce_sweepsFinishedJobs(t *testing.T) {
	t.Parallel()
	e := newEnv(t, nil)
	b, err := process.New(process.Config{StateDir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	sw := &sweeper{Backend: b}
	d, err := dispatch.New(dispatch.Config{}, e.api, sw, nil)
	if err != nil {
		t.Fatal(err)
	}
	res, err := e.reconciler(d, dispatch.ReconcileConfig{}).RunOnce(t.Context(), e.pool.Name)
	if err != nil || res.Swept != 2 || sw.calls != 1 {
		t.Errorf("reconcile with a sweeping backend = %+v, %v after %d Sweep calls; want one call and Swept 2", res, err, sw.calls)
	}
}
