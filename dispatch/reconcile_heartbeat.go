package dispatch

import (
	"context"
	"fmt"
	"log/slog"
	"strings"
	"time"

	"github.com/pushpool/pushpool/dispatch/prefect"
)

// flowRunResource is the prefix of a flow run's resource id in events.
const flowRunResource = "prefect.flow-run."

// heartbeatBook holds the last heartbeat of every RUNNING run of a pass,
// read with one query.
type heartbeatBook struct {
	covers map[string]bool      // the runs the query covered
	last   map[string]time.Time // their last heartbeats; absent: none sent
	err    error                // why the query failed
}

// readHeartbeats reads the last heartbeat of every RUNNING run among runs
// with one count of heartbeat events by flow run (whose newest event's time
// the server reports), over the time since the earliest of them started. A
// failure is logged once; the runs whose judgement needs their heartbeats
// are then left for the next pass.
func (r *Reconciler) readHeartbeats(ctx context.Context, pool string, now time.Time, runs []prefect.FlowRun) *heartbeatBook {
	var running []prefect.FlowRun
	for _, run := range runs {
		if run.State != nil && run.State.Type == prefect.StateRunning {
			running = append(running, run)
		}
	}
	book := &heartbeatBook{covers: make(map[string]bool, len(running))}
	if len(running) == 0 {
		return book
	}
	for _, run := range running {
		book.covers[run.ID] = true
	}
	book.last, book.err = r.heartbeatsOf(ctx, running)
	if book.err != nil && ctx.Err() == nil {
		r.d.log.WarnContext(ctx, "could not read the heartbeats of the pool's running flow runs; runs judged by them wait for the next pass",
			slog.String("work_pool", pool), slog.Int("runs", len(running)), slog.String("error", book.err.Error()))
	}
	return book
}

// heartbeatsOf returns the time of the last heartbeat each run sent since
// it started (a minute earlier, for clocks that differ); runs that sent none
// are absent. One request, however many runs.
func (r *Reconciler) heartbeatsOf(ctx context.Context, runs []prefect.FlowRun) (map[string]time.Time, error) {
	f := prefect.EventFilter{Names: []string{heartbeatEvent}}
	var since *time.Time
	unbounded := false // a run with no start time: as far back as the server looks
	for _, run := range runs {
		f.ResourceIDs = append(f.ResourceIDs, flowRunResource+run.ID)
		if run.StartTime == nil {
			unbounded = true
		} else if s := run.StartTime.Add(-time.Minute); since == nil || s.Before(*since) {
			since = &s
		}
	}
	if !unbounded {
		f.Since = since
	}
	counts, err := r.d.api.CountEventsByResource(ctx, f)
	if err != nil {
		return nil, fmt.Errorf("read the heartbeats of %d flow run(s): %w", len(runs), err)
	}
	last := make(map[string]time.Time, len(counts))
	for _, c := range counts {
		if id, ok := strings.CutPrefix(c.Value, flowRunResource); ok && c.Count > 0 {
			last[id] = c.EndTime
		}
	}
	return last, nil
}

// lastHeartbeat returns when the run last sent a heartbeat; sent is false
// when it never did. It reads the pass's batch when that covers the run,
// else asks the server about this run alone.
func (rp *reconcilePass) lastHeartbeat(ctx context.Context, run prefect.FlowRun) (last time.Time, sent bool, err error) {
	book := rp.beats
	if !book.covers[run.ID] {
		beats, err := rp.r.heartbeatsOf(ctx, []prefect.FlowRun{run})
		if err != nil {
			return time.Time{}, false, err
		}
		last, sent = beats[run.ID]
		return last, sent, nil
	}
	if book.err != nil {
		return time.Time{}, false, fmt.Errorf("%w: %w", errDeferred, book.err)
	}
	last, sent = book.last[run.ID]
	return last, sent, nil
}

// heartbeat crashes a RUNNING run whose heartbeats stopped, and stops its
// infrastructure pid (when known) so a frozen process cannot come back and
// write states. alive reports that the run sent a heartbeat within the window.
func (rp *reconcilePass) heartbeat(ctx context.Context, run prefect.FlowRun, pid string, rl *runLog, log *slog.Logger) (c RunCheck, acted, alive bool) {
	r := rp.r
	last, sent, err := rp.lastHeartbeat(ctx, run)
	switch {
	case err != nil:
		c, acted = failed(ctx, run, err, log, "could not read the run's heartbeats; will retry next pass")
		return c, acted, false
	case !sent:
		return RunCheck{}, false, false // never sent one: judged by its infrastructure only
	}
	silent := rp.now.Sub(last)
	if silent < r.cfg.HeartbeatWindow {
		return RunCheck{}, false, true
	}
	msg := fmt.Sprintf("Flow run sent no heartbeat since %s (%s ago; the window is %s): its process is frozen or its infrastructure was lost.",
		last.UTC().Format(time.RFC3339), silent.Round(time.Second), r.cfg.HeartbeatWindow)
	if pid != "" {
		msg += fmt.Sprintf(" Its infrastructure %s was stopped.", pid)
	}
	c, acted = rp.crash(ctx, run, rl, msg)
	if c.Action == ActionCrashed && pid != "" {
		if err := r.d.backend.Stop(context.WithoutCancel(ctx), pid); err != nil {
			rl.add(prefect.LogWarning, fmt.Sprintf("Could not stop infrastructure %s of the crashed run: %v", pid, err))
		}
	}
	return c, acted, false
}
