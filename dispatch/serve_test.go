package dispatch_test

import (
	"context"
	"sync"
	"testing"
	"time"

	"github.com/pushpool/pushpool/dispatch"
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
