package dispatch_test

import (
	"context"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/pushpool/pushpool/dispatch"
	"github.com/pushpool/pushpool/dispatch/backend/process"
	"github.com/pushpool/pushpool/dispatch/prefect"
)

// scheduleAt creates a run of the deployment due at the given time.
func (e *env) scheduleAt(dep prefect.Deployment, due time.Time) prefect.FlowRun {
	e.t.Helper()
	due = due.UTC()
	r, err := e.api.CreateFlowRunFromDeployment(e.t.Context(), dep.ID, prefect.DeploymentFlowRunCreate{
		State: &prefect.StateCreate{Type: prefect.StateScheduled, Name: "Scheduled", StateDetails: prefect.StateDetails{ScheduledTime: &due}},
	})
	if err != nil {
		e.t.Fatalf("create flow run: %v", err)
	}
	return r
}

// claimTime is when the run was first moved to PENDING.
func (e *env) claimTime(id string) time.Time {
	e.t.Helper()
	states, err := e.api.ReadFlowRunStates(e.t.Context(), id)
	if err != nil {
		e.t.Fatal(err)
	}
	for _, s := range states {
		if s.Type == prefect.StatePending && s.Timestamp != nil {
			return *s.Timestamp
		}
	}
	e.t.Fatalf("flow run %s was never claimed; states:\n%s", id, e.history(id))
	return time.Time{}
}

func TestDispatcher_Serve_wakesWhenARunIsDue(t *testing.T) {
	t.Parallel()
	e := newEnv(t, nil)
	const lookahead = time.Second
	due := time.Now().Add(4 * time.Second)
	run := e.scheduleAt(e.dep, due)
	d, b := e.dispatcherWith(t.TempDir(), dispatch.Config{Lookahead: lookahead})

	ctx, cancel := context.WithCancel(t.Context())
	var (
		mu     sync.Mutex
		passes []dispatch.PassResult
		done   = make(chan error, 1)
	)
	// The poll interval is far longer than the test: only the timer for the
	// run's due time can start it.
	go func() {
		done <- d.Serve(ctx, e.pool.Name, dispatch.ServeConfig{PollInterval: time.Hour, OnPass: func(r dispatch.PassResult) {
			mu.Lock()
			passes = append(passes, r)
			mu.Unlock()
		}})
	}()
	e.waitState(run.ID, prefect.StateCompleted)
	cancel()
	if err := <-done; err != nil {
		t.Fatalf("Serve returned %v after its context ended, want nil", err)
	}
	b.Wait()

	// Claimed no earlier than the lookahead before the due time (100ms for
	// the two clocks' reading of the same host time).
	if claimed := e.claimTime(run.ID); claimed.Before(due.Add(-lookahead - 100*time.Millisecond)) {
		t.Errorf("claimed at %s, more than the lookahead (%s) before the due time %s", claimed.Format(time.RFC3339Nano), lookahead, due.Format(time.RFC3339Nano))
	}
	mu.Lock()
	defer mu.Unlock()
	submitted := 0
	for _, p := range passes {
		submitted += p.Count(dispatch.Submitted)
	}
	if submitted != 1 || len(passes) < 2 {
		t.Errorf("passes = %+v; want an empty first pass, then the run submitted once", passes)
	}
}

func TestDispatcher_NextPass(t *testing.T) {
	t.Parallel()
	e := newEnv(t, nil)
	now := time.Now()
	const lookahead = 10 * time.Second
	d, _ := e.dispatcherWith(t.TempDir(), dispatch.Config{Lookahead: lookahead, Now: func() time.Time { return now }})
	seen := e.scheduleAt(e.dep, now.Add(5*time.Second))    // inside the window, handled by the last pass
	missed := e.scheduleAt(e.dep, now.Add(-2*time.Second)) // due already, not seen by the last pass
	later := e.scheduleAt(e.dep, now.Add(40*time.Second))
	e.scheduleAt(e.dep, now.Add(30*time.Minute)) // beyond every horizon below
	lastPass := func(ids ...string) dispatch.PassResult {
		var r dispatch.PassResult
		for _, id := range ids {
			r.Runs = append(r.Runs, dispatch.RunResult{FlowRunID: id, Outcome: dispatch.Deferred})
		}
		return r
	}

	tests := []struct {
		name    string
		horizon time.Duration
		last    dispatch.PassResult
		want    time.Time // zero: no pass needed
	}{
		{"a run that became due during the last pass: now", time.Minute, lastPass(seen.ID), now},
		{"else the earliest run less the lookahead", time.Minute, lastPass(seen.ID, missed.ID), later.NextScheduledStartTime.Add(-lookahead)},
		{"nothing within a short horizon", 10 * time.Second, lastPass(seen.ID, missed.ID), time.Time{}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			at, ok, err := d.NextPass(t.Context(), e.pool.Name, tt.horizon, tt.last)
			if err != nil {
				t.Fatal(err)
			}
			switch {
			case tt.want.IsZero() && ok:
				t.Errorf("NextPass = %s, want none", at)
			case !tt.want.IsZero() && (!ok || !at.Equal(tt.want)):
				t.Errorf("NextPass = %s, %v; want %s", at, ok, tt.want)
			}
		})
	}
}

// stalledBackend is a process backend whose Status blocks until release is
// closed or the call's context ends: a platform that answers slowly.
type stalledBackend struct {
	*process.Backend
	release  chan struct{}
	entered  chan struct{} // closed at the first Status call
	enter    sync.Once
	returned atomic.Bool // some Status call returned
}

func newStalledBackend(t *testing.T) *stalledBackend {
	b, err := process.New(process.Config{StateDir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(b.Wait)
	return &stalledBackend{Backend: b, release: make(chan struct{}), entered: make(chan struct{})}
}

func (s *stalledBackend) Status(ctx context.Context, id string) (dispatch.Status, error) {
	s.enter.Do(func() { close(s.entered) })
	defer s.returned.Store(true)
	select {
	case <-s.release:
		return dispatch.Status{State: dispatch.StateRunning}, nil
	case <-ctx.Done():
		return dispatch.Status{}, fmt.Errorf("status of %s: %w", id, context.Cause(ctx))
	}
}

// runningRun creates a run that is RUNNING on infrastructure id pid.
func (e *env) runningRun(pid string) prefect.FlowRun {
	e.t.Helper()
	run := e.run(e.dep)
	for _, st := range []prefect.StateType{prefect.StatePending, prefect.StateRunning} {
		if r, err := e.api.SetFlowRunState(e.t.Context(), run.ID, prefect.StateCreate{Type: st}, false); err != nil || r.Status != prefect.Accept {
			e.t.Fatalf("set flow run %s %s: %+v, %v", run.ID, st, r, err)
		}
	}
	if err := e.api.UpdateFlowRun(e.t.Context(), run.ID, prefect.FlowRunUpdate{InfrastructurePID: &pid}); err != nil {
		e.t.Fatal(err)
	}
	return run
}

// serveDispatcher returns a dispatcher on backend logging to logger.
func (e *env) serveDispatcher(backend dispatch.Backend, logger *slog.Logger) *dispatch.Dispatcher {
	e.t.Helper()
	d, err := dispatch.New(dispatch.Config{WorkerName: "pushpool-test", SettingsEnv: map[string]string{"PREFECT_API_URL": srv.URL}}, e.api, backend, logger)
	if err != nil {
		e.t.Fatal(err)
	}
	return d
}

// TestDispatcher_Serve_dispatchesWhileAReconcilePassIsSlow: a reconcile
// pass stuck on a slow platform does not hold back dispatch passes: a run
// created while it is stuck is submitted before it ends.
func TestDispatcher_Serve_dispatchesWhileAReconcilePassIsSlow(t *testing.T) {
	t.Parallel()
	e := newEnv(t, nil)
	sb := newStalledBackend(t)
	e.runningRun("elsewhere:1") // its Status stalls the reconcile pass
	d := e.serveDispatcher(sb, nil)
	rec := e.reconciler(d, dispatch.ReconcileConfig{})

	ctx, cancel := context.WithCancel(t.Context())
	defer cancel()
	var (
		mu     sync.Mutex
		events []string
	)
	note := func(s string) {
		mu.Lock()
		events = append(events, s)
		mu.Unlock()
	}
	submitted := make(chan struct{})
	var once sync.Once
	done := make(chan error, 1)
	go func() {
		done <- d.Serve(ctx, e.pool.Name, dispatch.ServeConfig{PollInterval: 200 * time.Millisecond, Reconciler: rec, ReconcileInterval: 100 * time.Millisecond,
			OnPass: func(res dispatch.PassResult) {
				if res.Count(dispatch.Submitted) > 0 {
					note("run submitted")
					once.Do(func() { close(submitted) })
				}
			},
			OnReconcile: func(dispatch.ReconcileResult) { note("reconcile pass ended") },
		})
	}()
	select {
	case <-sb.entered:
	case <-time.After(60 * time.Second):
		t.Fatal("the reconcile pass never asked for a status")
	}
	run := e.run(e.dep)
	select {
	case <-submitted:
	case <-time.After(60 * time.Second):
		t.Fatalf("run %s was not submitted while the reconcile pass was stuck", run.ID)
	}
	if sb.returned.Load() {
		t.Error("the stalled Status returned before the run was submitted")
	}
	close(sb.release)
	e.waitState(run.ID, prefect.StateCompleted)
	deadline := time.Now().Add(30 * time.Second)
	for {
		mu.Lock()
		n := len(events)
		mu.Unlock()
		if n >= 2 || time.Now().After(deadline) {
			break
		}
		time.Sleep(50 * time.Millisecond)
	}
	cancel()
	if err := <-done; err != nil {
		t.Fatalf("Serve returned %v, want nil", err)
	}
	mu.Lock()
	defer mu.Unlock()
	if len(events) < 2 || events[0] != "run submitted" || events[1] != "reconcile pass ended" {
		t.Errorf("events = %q; want the run submitted before the stuck reconcile pass ended", events)
	}
}

// levelRecorder keeps every record's level and message.
type levelRecorder struct {
	mu      sync.Mutex
	records []slog.Record
}

func (l *levelRecorder) Enabled(context.Context, slog.Level) bool { return true }
func (l *levelRecorder) Handle(_ context.Context, r slog.Record) error {
	l.mu.Lock()
	l.records = append(l.records, r)
	l.mu.Unlock()
	return nil
}
func (l *levelRecorder) WithAttrs([]slog.Attr) slog.Handler { return l }
func (l *levelRecorder) WithGroup(string) slog.Handler      { return l }

// atLeast returns the messages of the records at level or above.
func (l *levelRecorder) atLeast(level slog.Level) []string {
	l.mu.Lock()
	defer l.mu.Unlock()
	var out []string
	for _, r := range l.records {
		if r.Level >= level {
			out = append(out, r.Message)
		}
	}
	return out
}

// TestDispatcher_Serve_shutdownMidReconcileLogsOneLine: a shutdown while a
// reconcile pass waits on the platform for every run logs one line, not one
// warning per run, and reports the runs as skipped, not errored.
func TestDispatcher_Serve_shutdownMidReconcileLogsOneLine(t *testing.T) {
	t.Parallel()
	const runs = 20
	e := newEnv(t, nil)
	sb := newStalledBackend(t)
	for i := range runs {
		e.runningRun(fmt.Sprintf("elsewhere:%d", i+1))
	}
	logs := &levelRecorder{}
	d := e.serveDispatcher(sb, slog.New(logs))
	rec := e.reconciler(d, dispatch.ReconcileConfig{})

	ctx, cancel := context.WithCancel(t.Context())
	results := make(chan dispatch.ReconcileResult, 1)
	passed := make(chan struct{}, 1)
	done := make(chan error, 1)
	go func() {
		done <- d.Serve(ctx, e.pool.Name, dispatch.ServeConfig{PollInterval: time.Hour, Reconciler: rec,
			OnPass:      func(dispatch.PassResult) { passed <- struct{}{} },
			OnReconcile: func(r dispatch.ReconcileResult) { results <- r }})
	}()
	// The shutdown comes while the dispatch loop waits for its next pass and
	// the reconcile pass waits on the platform.
	for _, ch := range []<-chan struct{}{passed, sb.entered} {
		select {
		case <-ch:
		case <-time.After(60 * time.Second):
			t.Fatal("the first dispatch pass did not end, or the reconcile pass never asked for a status")
		}
	}
	cancel()
	if err := <-done; err != nil {
		t.Fatalf("Serve returned %v, want nil", err)
	}
	if warn := logs.atLeast(slog.LevelWarn); len(warn) != 0 {
		t.Errorf("the shutdown logged %d warnings or errors: %q", len(warn), warn)
	}
	if info := logs.atLeast(slog.LevelInfo); len(info) != 1 || !strings.Contains(info[0], "shutdown") {
		t.Errorf("the shutdown logged %q; want one line saying so", info)
	}
	select {
	case res := <-results:
		if len(res.Runs) != 0 || res.Skipped != runs {
			t.Errorf("the cut-off pass = %d runs reported %+v, %d skipped; want none reported and %d skipped", len(res.Runs), res.Runs, res.Skipped, runs)
		}
	default:
		t.Error("the cut-off reconcile pass was not reported")
	}
}
