package dispatch

import (
	"context"
	"fmt"
	"time"

	"github.com/pushpool/pushpool/dispatch/prefect"
)

// listRuns returns the runs a pass checks: every PENDING and CANCELLING run
// of the pool, and the RUNNING runs whose turn it is (runningTurn).
//
// PENDING and CANCELLING runs are listed in full every pass: they are few
// (a run is PENDING from its claim until its flow starts), and their
// deadlines are short (claim and start timeouts, cancellations a user
// waits for). RUNNING runs are the many, and the only thing a pass must
// read per run is its infrastructure_pid, which no projection or count of
// the API returns in bulk; so they are taken in turn, RunningPerPass at a
// time.
func (r *Reconciler) listRuns(ctx context.Context, pool string) ([]prefect.FlowRun, error) {
	waiting, err := r.d.api.FilterFlowRuns(ctx, prefect.FlowRunFilter{WorkPools: []string{pool},
		StateTypes: []prefect.StateType{prefect.StatePending, prefect.StateCancelling}})
	if err != nil {
		return nil, fmt.Errorf("list the pending and cancelling flow runs of pool %q: %w", pool, err)
	}
	running, err := r.runningTurn(ctx, pool)
	if err != nil {
		return nil, fmt.Errorf("list the running flow runs of pool %q: %w", pool, err)
	}
	// A run that started between the two requests is in both: keep it once.
	seen := make(map[string]bool, len(waiting))
	runs := waiting
	for _, run := range waiting {
		seen[run.ID] = true
	}
	for _, run := range running {
		if !seen[run.ID] {
			runs = append(runs, run)
		}
	}
	return runs, nil
}

// runningTurn returns the pool's RUNNING runs whose turn it is: up to
// RunningPerPass of them in order of start time (the server orders and
// filters by the start time, else the expected start time), from where the
// previous pass over the pool stopped. When the list runs out, the next
// pass starts again from the earliest. The position is a start time, not an
// offset, so runs that finish or start meanwhile do not shift the turns: a
// run that started before the position waits for the next round, one that
// started after it comes in this one. Runs that share the position's start
// time are read again at the start of the next turn rather than skipped.
func (r *Reconciler) runningTurn(ctx context.Context, pool string) ([]prefect.FlowRun, error) {
	limit := r.cfg.RunningPerPass
	from := r.cursor(pool)
	f := prefect.FlowRunFilter{WorkPools: []string{pool}, StateTypes: []prefect.StateType{prefect.StateRunning}, Sort: "START_TIME_ASC"}
	if !from.IsZero() {
		f.StartedSince = &from
	}
	var runs []prefect.FlowRun
	for limit < 0 || len(runs) < limit {
		n := prefect.MaxPageSize
		if limit > 0 {
			n = min(n, limit-len(runs))
		}
		page, err := r.d.api.FilterFlowRunsPage(ctx, f, len(runs), n)
		if err != nil {
			return nil, err
		}
		runs = append(runs, page...)
		if len(page) < n {
			r.setCursor(pool, time.Time{}) // the end: start again next pass
			return runs, nil
		}
	}
	next := startedAt(runs[len(runs)-1])
	if !next.After(from) {
		// More than a turn's worth of runs share one start time: step past
		// it rather than read the same turn forever.
		next = from.Add(time.Microsecond)
	}
	r.setCursor(pool, next)
	return runs, nil
}

// startedAt is what the server orders RUNNING runs by: the start time, else
// the expected start time.
func startedAt(run prefect.FlowRun) time.Time {
	switch {
	case run.StartTime != nil:
		return *run.StartTime
	case run.ExpectedStartTime != nil:
		return *run.ExpectedStartTime
	}
	return time.Time{}
}

func (r *Reconciler) cursor(pool string) time.Time {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.cursors[pool]
}

func (r *Reconciler) setCursor(pool string, at time.Time) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.cursors[pool] = at
}
