package dispatch

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/pushpool/pushpool/dispatch/prefect"
)

// ServeConfig configures Serve.
type ServeConfig struct {
	// PollInterval is the longest wait between passes: how late a run created
	// for "now" (a manual or automation-triggered run) can be picked up.
	// Runs scheduled ahead are woken for by a timer at their due time, not
	// at the next poll. Zero means 10s, Prefect's PREFECT_WORKER_QUERY_SECONDS.
	PollInterval time.Duration
	// OnPass, when set, is called with the result of every pass.
	OnPass func(PassResult)
	// Reconciler, when set, makes a reconcile pass after every dispatch
	// pass, so the runs started are watched too.
	Reconciler *Reconciler
	// OnReconcile, when set, is called with the result of every reconcile pass.
	OnReconcile func(ReconcileResult)
}

// minWait keeps a loop whose next due time is already past from spinning.
const minWait = 50 * time.Millisecond

// Serve makes passes over the pool until ctx ends. After each pass it sleeps
// until the next run falls inside the lookahead window (see NextPass), or
// PollInterval, whichever is sooner, so scheduled runs start on time without a tight poll.
// A failing pass (Prefect unreachable, pool missing) is logged and retried
// after PollInterval; Serve returns nil when ctx ends, after the last pass has
// recorded every run it claimed.
func (d *Dispatcher) Serve(ctx context.Context, pool string, cfg ServeConfig) error {
	if cfg.PollInterval < 0 {
		return errors.New("serve config: PollInterval must not be negative")
	}
	if cfg.PollInterval == 0 {
		cfg.PollInterval = 10 * time.Second
	}
	log := d.log.With(slog.String("work_pool", pool))
	for ctx.Err() == nil {
		res, err := d.RunOnce(ctx, pool)
		if err != nil && ctx.Err() == nil {
			log.ErrorContext(ctx, "dispatch pass failed; retrying after the poll interval", slog.String("error", err.Error()), slog.Duration("poll_interval", cfg.PollInterval))
		}
		if cfg.OnPass != nil && err == nil {
			cfg.OnPass(res)
		}
		if ctx.Err() != nil {
			break
		}
		if cfg.Reconciler != nil {
			rres, err := cfg.Reconciler.RunOnce(ctx, pool)
			switch {
			case err != nil && ctx.Err() == nil:
				log.ErrorContext(ctx, "reconcile pass failed; retrying after the next dispatch pass", slog.String("error", err.Error()))
			case err == nil && cfg.OnReconcile != nil:
				cfg.OnReconcile(rres)
			}
		}
		wait := cfg.PollInterval
		switch {
		case err != nil:
		case d.cfg.MaxRunsPerPass > 0 && res.Polled >= d.cfg.MaxRunsPerPass:
			wait = 0 // the pass was cut short; more runs are due now
		default:
			if at, ok, err := d.NextPass(ctx, pool, cfg.PollInterval, res); err != nil {
				log.WarnContext(ctx, "could not look up the next due run; waiting the poll interval", slog.String("error", err.Error()))
			} else if ok {
				wait = min(wait, max(at.Sub(d.cfg.Now()), minWait))
			}
		}
		if wait > 0 {
			log.DebugContext(ctx, "waiting for the next pass", slog.Duration("wait", wait))
			t := time.NewTimer(wait)
			select {
			case <-ctx.Done():
				t.Stop()
			case <-t.C:
			}
		}
	}
	return nil
}

// NextPass returns when the next pass should start so that the pool's next
// Scheduled run is claimed on time: the run's due time less the lookahead, or
// now for a run already inside the lookahead window that the last pass did
// not see (it became due while that pass ran). Only runs due within horizon
// after the window count; runs the last pass handled and left Scheduled
// (deferred, rejected, errored) are left to the poll interval. ok is false
// when no run counts.
func (d *Dispatcher) NextPass(ctx context.Context, pool string, horizon time.Duration, last PassResult) (at time.Time, ok bool, err error) {
	now := d.cfg.Now()
	window := now.Add(d.cfg.Lookahead)
	before := window.Add(horizon)
	handled := make(map[string]bool, len(last.Runs))
	for _, r := range last.Runs {
		handled[r.FlowRunID] = true
	}
	runs, err := d.api.GetScheduledFlowRuns(ctx, pool, prefect.ScheduledRunsRequest{
		WorkQueueNames: d.cfg.WorkQueues, ScheduledBefore: &before, Limit: 200,
	})
	if err != nil {
		return time.Time{}, false, fmt.Errorf("look up upcoming flow runs of pool %q: %w", pool, err)
	}
	for _, sr := range runs {
		if handled[sr.FlowRun.ID] {
			continue
		}
		start := sr.FlowRun.DueTime().Add(-d.cfg.Lookahead)
		if start.Before(now) {
			start = now
		}
		if !ok || start.Before(at) {
			at, ok = start, true
		}
	}
	return at, ok, nil
}
