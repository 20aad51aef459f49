package dispatch

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strconv"
	"sync"
	"time"

	"github.com/pushpool/pushpool/dispatch/prefect"
)

// ReconcileConfig configures a Reconciler. Defaults are filled in by
// NewReconciler.
type ReconcileConfig struct {
	// FlowHeartbeatFrequency is how often flow runs send heartbeats
	// (PREFECT_FLOWS_HEARTBEAT_FREQUENCY). Zero means 180s, Prefect's default.
	FlowHeartbeatFrequency time.Duration
	// HeartbeatWindow is how long a RUNNING run that has sent heartbeats may
	// go without one before it is crashed as a zombie. Zero means three
	// times FlowHeartbeatFrequency.
	HeartbeatWindow time.Duration
	// ClaimTimeout is how long a run may stay PENDING with no infrastructure
	// recorded before its claim counts as abandoned (its dispatcher died
	// between claim and submit). It must exceed a pass's RecordTimeout.
	// Zero means 3 minutes.
	ClaimTimeout time.Duration
	// ExitGrace is how long a run may stay non-terminal after its
	// infrastructure exited with code 0, or vanished, before it is crashed:
	// the flow's final state may still be on its way. Zero means 60s.
	ExitGrace time.Duration
	// CancelGrace is how long a CANCELLING run that started is left to
	// `prefect flow-run execute`, which cancels itself (and runs the flow's
	// on_cancellation hooks), before its infrastructure is stopped. Zero
	// means 30s; runs that never started are stopped at once.
	CancelGrace time.Duration
}

func (c *ReconcileConfig) fillDefaults() {
	if c.FlowHeartbeatFrequency == 0 {
		c.FlowHeartbeatFrequency = 180 * time.Second
	}
	if c.HeartbeatWindow == 0 {
		c.HeartbeatWindow = 3 * c.FlowHeartbeatFrequency
	}
	if c.ClaimTimeout == 0 {
		c.ClaimTimeout = 3 * time.Minute
	}
	if c.ExitGrace == 0 {
		c.ExitGrace = 60 * time.Second
	}
	if c.CancelGrace == 0 {
		c.CancelGrace = 30 * time.Second
	}
}

// Reconciler watches the runs a Dispatcher started: it compares what their
// infrastructure says with what Prefect says and settles the difference, as
// the Python worker would if one were running. Like a Dispatcher it keeps no
// state between passes.
type Reconciler struct {
	d   *Dispatcher
	cfg ReconcileConfig
}

// NewReconciler returns a Reconciler using the dispatcher's API, backend,
// worker name, logger and clock.
func NewReconciler(d *Dispatcher, cfg ReconcileConfig) (*Reconciler, error) {
	for name, v := range map[string]time.Duration{"FlowHeartbeatFrequency": cfg.FlowHeartbeatFrequency, "HeartbeatWindow": cfg.HeartbeatWindow,
		"ClaimTimeout": cfg.ClaimTimeout, "ExitGrace": cfg.ExitGrace, "CancelGrace": cfg.CancelGrace} {
		if v < 0 {
			return nil, fmt.Errorf("reconcile config: %s must not be negative", name)
		}
	}
	cfg.fillDefaults()
	if cfg.ClaimTimeout <= d.cfg.RecordTimeout {
		return nil, fmt.Errorf("reconcile config: ClaimTimeout (%s) must exceed the dispatcher's RecordTimeout (%s), or live claims would be taken for abandoned ones", cfg.ClaimTimeout, d.cfg.RecordTimeout)
	}
	return &Reconciler{d: d, cfg: cfg}, nil
}

// Action is what a reconcile pass did about one flow run.
type Action string

// The actions of a reconcile pass.
const (
	// ActionCrashed: the run was set CRASHED (its infrastructure failed or
	// vanished, or its heartbeats stopped).
	ActionCrashed Action = "crashed"
	// ActionCancelled: the CANCELLING run's infrastructure was stopped (or was
	// already gone) and the run set CANCELLED.
	ActionCancelled Action = "cancelled"
	// ActionRescheduled: an abandoned claim was put back to SCHEDULED for the
	// next dispatch pass to claim and submit.
	ActionRescheduled Action = "rescheduled"
	// ActionErrored: the run could not be checked or settled; the next pass
	// tries again.
	ActionErrored Action = "errored"
)

// RunCheck reports one flow run a reconcile pass acted on.
type RunCheck struct {
	FlowRunID string
	Action    Action
	// Message is the state message written, or the error.
	Message string
}

// ReconcileResult reports one reconcile pass. Runs that needed nothing are
// counted in Checked but not listed.
type ReconcileResult struct {
	Pool    string
	Checked int
	Runs    []RunCheck
	// Swept counts the finished jobs' resources removed by a Sweeper backend.
	Swept int
}

// Count returns how many runs had the action.
func (r ReconcileResult) Count(a Action) int {
	return countWhere(r.Runs, func(c RunCheck) bool { return c.Action == a })
}

// rescheduleLabel counts how often a run's abandoned claim was rescheduled.
const rescheduleLabel = "pushpool.claim-reschedules"

// heartbeatEvent is the event a running flow emits every
// PREFECT_FLOWS_HEARTBEAT_FREQUENCY seconds.
const heartbeatEvent = "prefect.flow-run.heartbeat"

// RunOnce checks every PENDING, RUNNING and CANCELLING run of the pool once.
// It returns an error only when the runs cannot be listed.
func (r *Reconciler) RunOnce(ctx context.Context, pool string) (ReconcileResult, error) {
	res := ReconcileResult{Pool: pool}
	runs, err := r.d.api.FilterFlowRuns(ctx, prefect.FlowRunFilter{WorkPools: []string{pool},
		StateTypes: []prefect.StateType{prefect.StatePending, prefect.StateRunning, prefect.StateCancelling}})
	if err != nil {
		return res, fmt.Errorf("list the active flow runs of pool %q: %w", pool, err)
	}
	res.Checked = len(runs)
	var (
		mu  sync.Mutex
		wg  sync.WaitGroup
		sem = make(chan struct{}, r.d.cfg.MaxConcurrentSubmissions)
	)
	for _, run := range runs {
		sem <- struct{}{}
		wg.Go(func() {
			defer func() { <-sem }()
			c, acted := r.check(ctx, pool, run)
			if acted {
				mu.Lock()
				res.Runs = append(res.Runs, c)
				mu.Unlock()
			}
		})
	}
	wg.Wait()
	if sw, ok := r.d.backend.(Sweeper); ok {
		n, err := sw.Sweep(ctx)
		res.Swept = n
		if err != nil {
			r.d.log.WarnContext(ctx, "could not remove the resources of finished jobs; will retry next pass", slog.String("work_pool", pool), slog.String("error", err.Error()))
		}
	}
	return res, nil
}

// check decides about one run; acted is false when nothing needed doing.
func (r *Reconciler) check(ctx context.Context, pool string, run prefect.FlowRun) (RunCheck, bool) {
	log := r.d.log.With(slog.String("flow_run_id", run.ID), slog.String("work_pool", pool))
	rl := newRunLog(r.d.api, run.ID, log)
	defer rl.flush(context.WithoutCancel(ctx))
	if run.State == nil {
		return RunCheck{}, false
	}
	if run.State.Type == prefect.StateCancelling {
		return r.cancel(ctx, run, rl, log)
	}
	if run.InfrastructurePID == nil || *run.InfrastructurePID == "" {
		if run.State.Type == prefect.StatePending {
			return r.abandonedClaim(ctx, run, rl)
		}
		return RunCheck{}, false // running somewhere pushpool did not start it
	}
	pid := *run.InfrastructurePID
	st, err := r.d.backend.Status(ctx, pid)
	switch {
	case errors.Is(err, ErrForeign):
		log.DebugContext(ctx, "infrastructure not observable from here", slog.String("error", err.Error()))
		return RunCheck{}, false
	case err != nil:
		log.WarnContext(ctx, "could not read the infrastructure status; will retry next pass", slog.String("infrastructure_id", pid), slog.String("error", err.Error()))
		return errored(run, err)
	}
	return r.judge(ctx, run, pid, st, rl, log)
}

// judge decides about a PENDING or RUNNING run given what its
// infrastructure reports.
func (r *Reconciler) judge(ctx context.Context, run prefect.FlowRun, pid string, st Status, rl *runLog, log *slog.Logger) (RunCheck, bool) {
	now := r.d.cfg.Now()
	switch st.State {
	case StateExited:
		if st.ExitCode != 0 {
			return r.crash(ctx, run, rl, crashMessage(st.ExitCode, st.Reason))
		}
		since := st.ExitedAt
		if since.IsZero() {
			since = stateTime(*run.State)
		}
		if now.Sub(since) >= r.cfg.ExitGrace {
			return r.crash(ctx, run, rl, fmt.Sprintf("Flow run infrastructure %s exited with status code 0 at %s without reporting a final state for the run; the flow process probably died before it could (look at the infrastructure's own logs).",
				pid, since.UTC().Format(time.RFC3339)))
		}
	case StateNotFound:
		if now.Sub(stateTime(*run.State)) >= r.cfg.ExitGrace {
			msg := fmt.Sprintf("Flow run infrastructure %s no longer exists and the run did not report a final state.", pid)
			if st.Reason != "" {
				msg += " " + st.Reason + "."
			}
			return r.crash(ctx, run, rl, msg)
		}
	case StateRunning, StatePending:
		if run.State.Type == prefect.StateRunning {
			return r.heartbeat(ctx, run, rl, log)
		}
	}
	return RunCheck{}, false
}

// InfraEvent is a report about one flow run's infrastructure that the
// platform pushed (an ECS task state change through EventBridge, a Cloud
// Run execution event), so a function need not poll Backend.Status.
type InfraEvent struct {
	// FlowRunID is the run the infrastructure belongs to, as its tags or
	// labels say.
	FlowRunID string
	// InfrastructureID is the infrastructure's id in the backend's
	// infrastructure_pid format.
	InfrastructureID string
	// Status is what the event says the infrastructure is doing.
	Status Status
}

// Observe applies a pushed infrastructure event to its flow run with the same
// rules RunOnce applies to a polled status. An event about other
// infrastructure than the run's recorded one (an earlier attempt), or about
// a run that is not PENDING, RUNNING or CANCELLING, changes nothing. A
// PENDING run with no infrastructure recorded (its dispatcher died after
// submitting) gets the event's infrastructure recorded first. acted is false
// when nothing needed doing.
func (r *Reconciler) Observe(ctx context.Context, ev InfraEvent) (c RunCheck, acted bool, err error) {
	if ev.FlowRunID == "" || ev.InfrastructureID == "" {
		return RunCheck{}, false, fmt.Errorf("infrastructure event %+v names no flow run or no infrastructure: only infrastructure started by pushpool (tagged with its flow run id) can be observed", ev)
	}
	run, err := r.d.api.ReadFlowRun(ctx, ev.FlowRunID)
	if prefect.IsNotFound(err) {
		return RunCheck{}, false, nil // deleted: nothing to settle
	}
	if err != nil {
		return RunCheck{}, false, fmt.Errorf("read flow run %s for an event of infrastructure %s: %w", ev.FlowRunID, ev.InfrastructureID, err)
	}
	if run.State == nil {
		return RunCheck{}, false, nil
	}
	log := r.d.log.With(slog.String("flow_run_id", run.ID), slog.String("infrastructure_id", ev.InfrastructureID))
	rl := newRunLog(r.d.api, run.ID, log)
	defer rl.flush(context.WithoutCancel(ctx))
	recorded := ""
	if run.InfrastructurePID != nil {
		recorded = *run.InfrastructurePID
	}
	same := recorded == ev.InfrastructureID
	if m, ok := r.d.backend.(InfrastructureMatcher); ok && recorded != "" && !same {
		same = m.SameInfrastructure(recorded, ev.InfrastructureID)
	}
	switch {
	case recorded != "" && !same:
		log.DebugContext(ctx, "event about other infrastructure than the run's; ignored", slog.String("recorded", recorded))
		return RunCheck{}, false, nil
	case run.State.Type == prefect.StateCancelling:
		c, acted := r.cancel(ctx, run, rl, log)
		return c, acted, nil
	case run.State.Type != prefect.StatePending && run.State.Type != prefect.StateRunning:
		return RunCheck{}, false, nil
	case recorded == "":
		pid := ev.InfrastructureID
		if err := r.d.api.UpdateFlowRun(ctx, run.ID, prefect.FlowRunUpdate{InfrastructurePID: &pid}); err != nil {
			return RunCheck{}, false, fmt.Errorf("record infrastructure %s on flow run %s: %w", pid, run.ID, err)
		}
		run.InfrastructurePID = &pid
		rl.add(prefect.LogInfo, fmt.Sprintf("Infrastructure %s reported by the platform was recorded on the flow run (its dispatcher had not recorded it).", pid))
	}
	c, acted = r.judge(ctx, run, *run.InfrastructurePID, ev.Status, rl, log)
	return c, acted, nil
}

// heartbeat crashes a RUNNING run whose heartbeats stopped, and stops its
// infrastructure so a frozen process cannot come back and write states.
func (r *Reconciler) heartbeat(ctx context.Context, run prefect.FlowRun, rl *runLog, log *slog.Logger) (RunCheck, bool) {
	f := prefect.EventFilter{Names: []string{heartbeatEvent}, ResourceIDs: []string{"prefect.flow-run." + run.ID}, Descending: true}
	if run.StartTime != nil {
		since := run.StartTime.Add(-time.Minute)
		f.Since = &since
	}
	events, err := r.d.api.ReadEvents(ctx, f, 1)
	if err != nil {
		log.WarnContext(ctx, "could not read the run's heartbeats; will retry next pass", slog.String("error", err.Error()))
		return errored(run, err)
	}
	if len(events) == 0 {
		return RunCheck{}, false // never sent one: judged by its infrastructure only
	}
	last := events[0].Occurred
	silent := r.d.cfg.Now().Sub(last)
	if silent < r.cfg.HeartbeatWindow {
		return RunCheck{}, false
	}
	c, acted := r.crash(ctx, run, rl, fmt.Sprintf("Flow run sent no heartbeat since %s (%s ago; the window is %s): its process is frozen or its infrastructure was lost. Its infrastructure %s was stopped.",
		last.UTC().Format(time.RFC3339), silent.Round(time.Second), r.cfg.HeartbeatWindow, *run.InfrastructurePID))
	if c.Action == ActionCrashed {
		if err := r.d.backend.Stop(context.WithoutCancel(ctx), *run.InfrastructurePID); err != nil {
			rl.add(prefect.LogWarning, fmt.Sprintf("Could not stop infrastructure %s of the crashed run: %v", *run.InfrastructurePID, err))
		}
	}
	return c, acted
}

// crash proposes CRASHED through orchestration, after re-reading the run so
// that a state written meanwhile (the flow finishing) is never overwritten.
func (r *Reconciler) crash(ctx context.Context, seen prefect.FlowRun, rl *runLog, msg string) (RunCheck, bool) {
	if c, acted, ok := r.unchanged(ctx, seen); !ok {
		return c, acted
	}
	res, err := r.d.api.SetFlowRunState(ctx, seen.ID, prefect.StateCreate{Type: prefect.StateCrashed, Name: "Crashed", Message: msg}, false)
	if err != nil {
		return errored(seen, fmt.Errorf("set flow run %s Crashed: %w", seen.ID, err))
	}
	if res.Status != prefect.Accept {
		return RunCheck{}, false // orchestration knew better (the run moved on)
	}
	rl.add(prefect.LogError, msg)
	return RunCheck{FlowRunID: seen.ID, Action: ActionCrashed, Message: msg}, true
}

// unchanged re-reads the run before a write: ok is true only when its state
// is still the one seen. Otherwise the check ends: with nothing done when the
// run moved on (it finished meanwhile), or errored when it cannot be read.
func (r *Reconciler) unchanged(ctx context.Context, seen prefect.FlowRun) (c RunCheck, acted, ok bool) {
	now, err := r.d.api.ReadFlowRun(ctx, seen.ID)
	if err != nil {
		c, acted = errored(seen, fmt.Errorf("re-read flow run %s: %w", seen.ID, err))
		return c, acted, false
	}
	return RunCheck{}, false, now.State != nil && seen.State != nil && now.State.ID == seen.State.ID
}

// errored ends a check that failed; the next pass tries again.
func errored(run prefect.FlowRun, err error) (RunCheck, bool) {
	return RunCheck{FlowRunID: run.ID, Action: ActionErrored, Message: err.Error()}, true
}

// cancel settles a CANCELLING run: its infrastructure is stopped (after
// CancelGrace for a run that started, which cancels itself) and the run is
// set CANCELLED. Prefect's server leaves this to workers, and push pools
// have none.
func (r *Reconciler) cancel(ctx context.Context, run prefect.FlowRun, rl *runLog, log *slog.Logger) (RunCheck, bool) {
	var msg string
	if run.InfrastructurePID == nil || *run.InfrastructurePID == "" {
		msg = "Flow run was cancelled before any infrastructure was started for it."
	} else {
		pid := *run.InfrastructurePID
		st, err := r.d.backend.Status(ctx, pid)
		switch {
		case errors.Is(err, ErrForeign):
			return RunCheck{}, false
		case err != nil:
			return errored(run, err)
		case st.State == StateExited || st.State == StateNotFound:
			msg = fmt.Sprintf("Flow run infrastructure %s had already stopped; the cancellation is complete.", pid)
		default:
			if run.StartTime != nil && r.d.cfg.Now().Sub(stateTime(*run.State)) < r.cfg.CancelGrace {
				return RunCheck{}, false // prefect flow-run execute cancels itself first
			}
			if err := r.d.backend.Stop(ctx, pid); err != nil {
				log.WarnContext(ctx, "could not stop the infrastructure of a cancelling run; will retry next pass", slog.String("error", err.Error()))
				return errored(run, fmt.Errorf("stop infrastructure %s: %w", pid, err))
			}
			msg = fmt.Sprintf("Flow run infrastructure %s was stopped by pushpool worker %q.", pid, r.d.cfg.WorkerName)
		}
	}
	if c, acted, ok := r.unchanged(ctx, run); !ok {
		return c, acted
	}
	// As Prefect's worker: the Cancelling state becomes Cancelled, keeping its
	// message (who cancelled and why).
	state := prefect.StateCreate{Type: prefect.StateCancelled, Name: "Cancelled", Data: run.State.Data}
	if run.State.Message != nil {
		state.Message = *run.State.Message
	}
	if _, err := r.d.api.SetFlowRunState(ctx, run.ID, state, true); err != nil {
		return errored(run, fmt.Errorf("set flow run %s Cancelled: %w", run.ID, err))
	}
	rl.add(prefect.LogInfo, msg)
	return RunCheck{FlowRunID: run.ID, Action: ActionCancelled, Message: msg}, true
}

// abandonedClaim handles a PENDING run with no infrastructure recorded after
// ClaimTimeout: its dispatcher died between claim and submit. The first time
// it is put back to SCHEDULED, so the next dispatch pass claims it through
// orchestration (the lock) and submits it idempotently; the second time it
// is crashed, so nothing stays PENDING forever.
func (r *Reconciler) abandonedClaim(ctx context.Context, run prefect.FlowRun, rl *runLog) (RunCheck, bool) {
	claimed := stateTime(*run.State)
	if r.d.cfg.Now().Sub(claimed) < r.cfg.ClaimTimeout {
		return RunCheck{}, false
	}
	n, _ := strconv.Atoi(fmt.Sprint(run.Labels[rescheduleLabel]))
	if n >= 1 {
		return r.crash(ctx, run, rl, fmt.Sprintf("Flow run was claimed at %s but no infrastructure was recorded for it within %s, even after it was rescheduled once: the dispatchers claiming it fail between claim and submit. Look at the dispatcher's logs.",
			claimed.UTC().Format(time.RFC3339), r.cfg.ClaimTimeout))
	}
	if c, acted, ok := r.unchanged(ctx, run); !ok {
		return c, acted
	}
	if err := r.d.api.UpdateFlowRunLabels(ctx, run.ID, map[string]string{rescheduleLabel: strconv.Itoa(n + 1)}); err != nil {
		return errored(run, fmt.Errorf("label flow run %s: %w", run.ID, err))
	}
	msg := fmt.Sprintf("Flow run was claimed at %s but no infrastructure was recorded for it within %s (its dispatcher stopped between claim and submit); it is rescheduled for the next dispatch pass.",
		claimed.UTC().Format(time.RFC3339), r.cfg.ClaimTimeout)
	now := r.d.cfg.Now().UTC()
	if _, err := r.d.api.SetFlowRunState(ctx, run.ID, prefect.StateCreate{Type: prefect.StateScheduled, Name: "Scheduled", Message: msg,
		StateDetails: prefect.StateDetails{ScheduledTime: &now}}, true); err != nil {
		return errored(run, fmt.Errorf("reschedule flow run %s: %w", run.ID, err))
	}
	rl.add(prefect.LogWarning, msg)
	return RunCheck{FlowRunID: run.ID, Action: ActionRescheduled, Message: msg}, true
}
