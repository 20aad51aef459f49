package dispatch

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"slices"
	"strconv"
	"time"

	"github.com/pushpool/pushpool/dispatch/prefect"
)

// check decides about one run; acted is false when nothing needed doing.
func (rp *reconcilePass) check(ctx context.Context, run prefect.FlowRun) (RunCheck, bool) {
	r := rp.r
	log := r.d.log.With(slog.String("flow_run_id", run.ID), slog.String("work_pool", rp.pool))
	rl := newRunLog(r.d.api, run.ID, log)
	defer rl.flush(context.WithoutCancel(ctx))
	if run.State == nil {
		return RunCheck{}, false
	}
	if run.State.Type == prefect.StateCancelling {
		return rp.cancel(ctx, run, rl, log)
	}
	pid := deref(run.InfrastructurePID)
	if pid == "" {
		return rp.unrecorded(ctx, run, Attempt{}, "", rl, log)
	}
	st, err := rp.status(ctx, pid)
	switch {
	case errors.Is(err, ErrForeign):
		log.DebugContext(ctx, "infrastructure not observable from here", slog.String("error", err.Error()))
		return RunCheck{}, false
	case err != nil:
		return failed(ctx, run, err, log.With(slog.String("infrastructure_id", pid)), "could not read the infrastructure status; will retry next pass")
	}
	alive := st.State == StateRunning || st.State == StatePending
	if fast, ok := attemptOfClaimState(run); ok && st.Attempt == fast.Key() {
		return rp.judge(ctx, run, pid, st, rl, log)
	}
	if alive && (run.State.Type == prefect.StateRunning || st.Attempt == "") {
		// Live infrastructure of a running run, or of unknown origin (not
		// started by pushpool): judged as it is.
		return rp.judge(ctx, run, pid, st, rl, log)
	}
	// The infrastructure is gone or belongs to another attempt than the
	// claim: which attempt is the run on?
	cur, ok, err := rp.currentAttempt(ctx, run)
	if err != nil {
		return errored(run, err)
	}
	switch {
	case !ok, st.Attempt == cur.Key(), st.Attempt == "" && st.State == StateExited:
		// Not claimed since it was scheduled (started by something else), the
		// current attempt's own infrastructure, or an exit of unknown origin.
		return rp.judge(ctx, run, pid, st, rl, log)
	}
	// pid is an earlier attempt's (the run was run again), or vanished
	// without saying whose it was: look for the current attempt's.
	return rp.unrecorded(ctx, run, cur, pid, rl, log)
}

// currentAttempt returns the attempt the run is on: its current state when
// that is the claim, else the one its history shows (one request). ok is
// false when the run was not claimed since it was last scheduled.
func (rp *reconcilePass) currentAttempt(ctx context.Context, run prefect.FlowRun) (Attempt, bool, error) {
	if a, ok := attemptOfClaimState(run); ok {
		return a, true, nil
	}
	states, err := rp.r.d.api.ReadFlowRunStates(ctx, run.ID)
	if err != nil {
		return Attempt{}, false, fmt.Errorf("read the state history of flow run %s: %w", run.ID, err)
	}
	a, _, ok := currentAttempt(run.ID, states)
	return a, ok, nil
}

// unrecorded handles a PENDING or RUNNING run that has no infrastructure of
// its current attempt recorded: stale is the recorded id of an earlier
// attempt (or of vanished infrastructure), empty when none is recorded. The
// current attempt's infrastructure is looked for and recorded when found;
// a PENDING run whose attempt started nothing within ClaimTimeout is
// recovered (rescheduled up to MaxReschedules times in a row, then
// crashed); a RUNNING one whose
// infrastructure cannot be found and that sends no heartbeats is crashed.
func (rp *reconcilePass) unrecorded(ctx context.Context, run prefect.FlowRun, cur Attempt, stale string, rl *runLog, log *slog.Logger) (RunCheck, bool) {
	r := rp.r
	age := stateAge(rp.now, *run.State)
	switch run.State.Type {
	case prefect.StatePending:
		if age < r.cfg.ClaimTimeout {
			return RunCheck{}, false // its dispatcher may still be starting it
		}
		return rp.recoverClaim(ctx, run, rl, log)
	case prefect.StateRunning:
		if age < r.cfg.ExitGrace {
			return RunCheck{}, false // its dispatcher may still be recording it
		}
	default:
		return RunCheck{}, false
	}
	if cur.IsZero() {
		var ok bool
		var err error
		if cur, ok, err = rp.currentAttempt(ctx, run); err != nil {
			return errored(run, err)
		} else if !ok {
			return RunCheck{}, false // running, but never claimed since it was scheduled: not pushpool's
		}
	}
	if c, acted, done := rp.findAndRecord(ctx, run, cur, rl, log); done {
		return c, acted
	}
	// Running without infrastructure pushpool can find: heartbeats decide.
	if c, acted, alive := rp.heartbeat(ctx, run, "", rl, log); acted || alive {
		return c, acted
	}
	msg := fmt.Sprintf("Flow run is RUNNING, but no infrastructure of its current attempt %s was recorded or can be found", cur.Key())
	if stale != "" {
		msg += fmt.Sprintf(" (the recorded infrastructure %s is an earlier attempt's, or gone)", stale)
	}
	msg += ", and it sends no heartbeats: its process is not running anywhere pushpool can see."
	return rp.crash(ctx, run, rl, msg)
}

// find renders the run's job for attempt a and asks the backend for its
// infrastructure.
func (rp *reconcilePass) find(ctx context.Context, run prefect.FlowRun, a Attempt, log *slog.Logger) (string, bool, error) {
	job, err := rp.job(ctx, run, a)
	if err != nil && ctx.Err() != nil {
		return "", false, err // the pass is ending: nothing can be concluded
	}
	if err != nil {
		// A job that cannot be rendered now could not be started then either
		// (unless the template changed since): there is nothing to find.
		log.WarnContext(ctx, "cannot render the run's job to look for its infrastructure; taking it that none started", slog.String("error", err.Error()))
		return "", false, nil
	}
	id, found, err := rp.r.d.backend.Find(ctx, job)
	if err != nil {
		return "", false, fmt.Errorf("look for the infrastructure of attempt %s of flow run %s: %w", a.Key(), run.ID, err)
	}
	return id, found, nil
}

// job renders the run's job for attempt a as the dispatcher rendered it.
func (rp *reconcilePass) job(ctx context.Context, run prefect.FlowRun, a Attempt) (Job, error) {
	d := rp.r.d
	rp.once.Do(func() {
		wp, err := d.api.ReadWorkPool(ctx, rp.pool)
		if err != nil {
			rp.err = fmt.Errorf("read work pool %q: %w", rp.pool, err)
			return
		}
		rp.p = newPass(d, wp)
	})
	if rp.err != nil {
		return Job{}, rp.err
	}
	p := rp.p
	dep, flow, err := p.sources(ctx, run)
	if err != nil {
		return Job{}, err
	}
	job, err := p.render(ctx, run, flow, dep, nil, nil)
	if err != nil {
		return Job{}, err
	}
	job.Attempt = a
	return job, nil
}

// findAndRecord looks for attempt a's infrastructure and records it when
// found. done is false when there is none, and the caller decides.
func (rp *reconcilePass) findAndRecord(ctx context.Context, run prefect.FlowRun, a Attempt, rl *runLog, log *slog.Logger) (c RunCheck, acted, done bool) {
	id, found, err := rp.find(ctx, run, a, log)
	switch {
	case err != nil:
		c, acted = errored(run, err)
		return c, acted, true
	case found:
		c, acted = rp.recordFound(ctx, run, id, rl, log)
		return c, acted, true
	}
	return RunCheck{}, false, false
}

// recordFound records infrastructure of the run's current attempt that its
// dispatcher did not record, then judges the run by it.
func (rp *reconcilePass) recordFound(ctx context.Context, run prefect.FlowRun, id string, rl *runLog, log *slog.Logger) (RunCheck, bool) {
	if err := rp.r.d.api.UpdateFlowRun(ctx, run.ID, prefect.FlowRunUpdate{InfrastructurePID: &id}); err != nil {
		return errored(run, fmt.Errorf("record infrastructure %s on flow run %s: %w", id, run.ID, err))
	}
	msg := fmt.Sprintf("Infrastructure %s of the run's current attempt had not been recorded (its dispatcher stopped between start and record); pushpool found and recorded it.", id)
	rl.add(prefect.LogInfo, msg)
	return RunCheck{FlowRunID: run.ID, Action: ActionRecorded, Message: msg}, true
}

// recoverClaim recovers a PENDING run whose current attempt recorded no
// infrastructure within ClaimTimeout: its dispatcher died between claim and
// record. One dispatcher wins the recovery: it proposes a PENDING state
// named after the judged one (Prefect aborts the same proposal from every
// other dispatcher) and checks that its state replaced exactly the judged
// one (a late proposal that replaced a newer state only renamed it, and
// backs off). The winner looks for the attempt's infrastructure and records
// it; when there is none, the run goes back to the schedule the first time
// and is crashed the second, so nothing stays PENDING forever.
func (rp *reconcilePass) recoverClaim(ctx context.Context, run prefect.FlowRun, rl *runLog, log *slog.Logger) (RunCheck, bool) {
	r := rp.r
	judged := *run.State
	// Dispatchers that judge the same claim at once are spread out by a
	// random wait, so the first one's lock is usually in place before the
	// others propose theirs (and they are aborted); the run is re-read after it.
	if err := Sleep(ctx, rand.N(recoveryJitter)); err != nil {
		return RunCheck{}, false
	}
	if c, acted, ok := rp.unchanged(ctx, run); !ok {
		return c, acted
	}
	// The transition id is this proposal's own (the client's default): one
	// shared by all dispatchers would make Prefect answer the losers with the
	// winner's state, which reads as their own success.
	lock, err := r.d.api.SetFlowRunState(ctx, run.ID, prefect.StateCreate{Type: prefect.StatePending, Name: recoveryLockName(judged.Name),
		Message: "pushpool is recovering this run's claim: no infrastructure was recorded for it within " + r.cfg.ClaimTimeout.String()}, false)
	if err != nil {
		return errored(run, fmt.Errorf("lock the recovery of flow run %s: %w", run.ID, err))
	}
	if lock.Status != prefect.Accept || lock.State == nil {
		log.DebugContext(ctx, "another dispatcher recovers the run, or it moved on", slog.String("status", string(lock.Status)))
		return RunCheck{}, false
	}
	states, err := r.d.api.ReadFlowRunStates(ctx, run.ID)
	if err != nil {
		// The lock is ours but cannot be checked; its age restarts the clock
		// and the next recovery after ClaimTimeout decides.
		return errored(run, fmt.Errorf("read the state history of flow run %s: %w", run.ID, err))
	}
	if !onlyStateAfter(states, judged.ID, lock.State.ID) {
		log.InfoContext(ctx, "recovery lost: another dispatcher's lock or a newer state followed the judged one; nothing done")
		rp.undoLateLock(ctx, run, states, *lock.State, log)
		return RunCheck{}, false
	}
	cur, claim, ok := currentAttempt(run.ID, states)
	claimedAt := stateTime(judged)
	if ok {
		claimedAt = stateTime(claim)
		if c, acted, done := rp.findAndRecord(ctx, run, cur, rl, log); done {
			return c, acted
		}
	}
	lockState := *lock.State
	if n := reschedulesReclaimed(states); n >= r.cfg.MaxReschedules {
		msg := fmt.Sprintf("Flow run was claimed at %s but no infrastructure was started or recorded for it within %s, even after it was rescheduled %d times in a row: the dispatchers claiming it stop between claim and start (look at their logs: a run that makes its dispatcher crash, or dispatchers killed over and over).",
			claimedAt.UTC().Format(time.RFC3339), r.cfg.ClaimTimeout, n)
		return rp.crashFrom(ctx, run, transitionID(lockState.ID, "crash"), rl, msg)
	}
	msg := fmt.Sprintf("Flow run was claimed at %s but no infrastructure was started or recorded for it within %s (its dispatcher stopped between claim and start); it is rescheduled for the next dispatch pass.",
		claimedAt.UTC().Format(time.RFC3339), r.cfg.ClaimTimeout)
	at := r.d.api.ServerTime().UTC()
	return rp.propose(ctx, run, prefect.StateCreate{Type: prefect.StateScheduled, Name: stateRescheduled, Message: msg,
		StateDetails: prefect.StateDetails{ScheduledTime: &at, TransitionID: transitionID(lockState.ID, "reschedule")}},
		ActionRescheduled, prefect.LogWarning, msg, rl)
}

// undoLateLock puts back the state a recovery lock that came late covered,
// when that was not a PENDING one: a PENDING lock proposal is accepted over
// a Scheduled run (as a claim would be) and over a finished one (as a
// re-run would be). Over a PENDING state the lock only renamed it, which
// changes nothing: the attempt is the claim, not the current state.
func (rp *reconcilePass) undoLateLock(ctx context.Context, run prefect.FlowRun, states []prefect.State, lock prefect.State, log *slog.Logger) {
	states = sortedStates(states)
	i := slices.IndexFunc(states, func(s prefect.State) bool { return s.ID == lock.ID })
	if i <= 0 || states[i-1].Type == prefect.StatePending {
		return
	}
	prev := states[i-1]
	current, err := rp.r.d.api.ReadFlowRun(ctx, run.ID)
	if err != nil || current.State == nil || current.State.ID != lock.ID {
		return
	}
	restore := prefect.StateCreate{Type: prev.Type, Name: prev.Name, Data: prev.Data,
		StateDetails: prefect.StateDetails{ScheduledTime: prev.StateDetails.ScheduledTime, TransitionID: transitionID(lock.ID, "undo")}}
	restore.Message = "pushpool put this state back: a recovery that came late had covered it."
	if prev.Message != nil {
		restore.Message += " " + *prev.Message
	}
	if _, err := rp.r.d.api.SetFlowRunState(ctx, run.ID, restore, true); err != nil {
		log.WarnContext(ctx, "could not put back the state a late recovery lock covered; the next recovery will", slog.String("state", string(prev.Type)), slog.String("error", err.Error()))
		return
	}
	log.InfoContext(ctx, "a late recovery lock covered a newer state; it was put back", slog.String("state", string(prev.Type)))
}

// onlyStateAfter reports whether the state with id ours is the only one in
// the history after the state with id judged. Orchestration alone is not a
// lock on every database (on SQLite the server reads the current state
// without a row lock, so two identical proposals can both be accepted), and
// state timestamps are not commit order; so a lock stands only when no other
// state followed the judged one. Of two racing locks, the one whose check
// ran before the other committed wins; if both see each other, neither does
// and the next recovery decides.
func onlyStateAfter(states []prefect.State, judged, ours string) bool {
	states = sortedStates(states)
	j := slices.IndexFunc(states, func(s prefect.State) bool { return s.ID == judged })
	if j < 0 {
		return false
	}
	after := states[j+1:]
	return len(after) == 1 && after[0].ID == ours
}

// judge decides about a PENDING or RUNNING run given what the infrastructure
// of its current attempt reports.
func (rp *reconcilePass) judge(ctx context.Context, run prefect.FlowRun, pid string, st Status, rl *runLog, log *slog.Logger) (RunCheck, bool) {
	r := rp.r
	now := rp.now
	switch st.State {
	case StateExited:
		if st.ExitCode != 0 {
			return rp.crash(ctx, run, rl, crashMessage(st.ExitCode, st.Reason))
		}
		since := st.ExitedAt
		if since.IsZero() {
			since = stateTime(*run.State)
		}
		if now.Sub(since) >= r.cfg.ExitGrace {
			return rp.crash(ctx, run, rl, fmt.Sprintf("Flow run infrastructure %s exited with status code 0 at %s without reporting a final state for the run; the flow process probably died before it could (look at the infrastructure's own logs).",
				pid, since.UTC().Format(time.RFC3339)))
		}
	case StateNotFound:
		if now.Sub(stateTime(*run.State)) >= r.cfg.ExitGrace {
			msg := fmt.Sprintf("Flow run infrastructure %s no longer exists and the run did not report a final state.", pid)
			if st.Reason != "" {
				msg += " " + st.Reason + "."
			}
			return rp.crash(ctx, run, rl, msg)
		}
	case StatePending:
		if run.State.Type == prefect.StatePending {
			return rp.startTimeout(ctx, run, pid, st, rl)
		}
	case StateRunning:
		if run.State.Type == prefect.StateRunning {
			c, acted, _ := rp.heartbeat(ctx, run, pid, rl, log)
			return c, acted
		}
	}
	return RunCheck{}, false
}

// startLimit is how long the run's infrastructure may take to start: the
// run's start-timeout label, else its rendered job's, else (when the job
// cannot be rendered now) Config.StartTimeout.
func (rp *reconcilePass) startLimit(ctx context.Context, run prefect.FlowRun) time.Duration {
	if secs, err := strconv.Atoi(fmt.Sprint(run.Labels[labelStartTimeout])); err == nil && secs > 0 {
		return time.Duration(secs) * time.Second
	}
	def := rp.r.d.cfg.StartTimeout
	job, err := rp.job(ctx, run, Attempt{})
	if err != nil {
		return def
	}
	return startTimeout(job.Configuration, def)
}

// startTimeout crashes a PENDING run whose infrastructure has not started
// within the job's start timeout (task_start_timeout_seconds, as Prefect's
// ECS and ACI workers; else Config.StartTimeout), with the platform's
// reason, and stops that infrastructure.
func (rp *reconcilePass) startTimeout(ctx context.Context, run prefect.FlowRun, pid string, st Status, rl *runLog) (RunCheck, bool) {
	r := rp.r
	limit := rp.startLimit(ctx, run)
	waited := stateAge(rp.now, *run.State)
	if waited < limit {
		return RunCheck{}, false
	}
	reason := st.Reason
	if reason == "" {
		reason = "the platform gives no reason"
	}
	msg := fmt.Sprintf("Flow run infrastructure %s did not start within %s (the job's start timeout; set the task_start_timeout_seconds job variable to wait longer): %s. It was stopped.", pid, limit, reason)
	c, acted := rp.crash(ctx, run, rl, msg)
	if c.Action == ActionCrashed {
		if err := r.d.backend.Stop(context.WithoutCancel(ctx), pid); err != nil {
			rl.add(prefect.LogWarning, fmt.Sprintf("Could not stop infrastructure %s of the crashed run: %v", pid, err))
		}
	}
	return c, acted
}

// crash proposes CRASHED through orchestration, after re-reading the run so
// that a state written meanwhile (the flow finishing) is never overwritten.
func (rp *reconcilePass) crash(ctx context.Context, seen prefect.FlowRun, rl *runLog, msg string) (RunCheck, bool) {
	if c, acted, ok := rp.unchanged(ctx, seen); !ok {
		return c, acted
	}
	return rp.crashFrom(ctx, seen, "", rl, msg)
}

// crashFrom proposes CRASHED through orchestration: of dispatchers that
// judged the same state, one is accepted and the others are aborted (a
// final state cannot become Crashed). tid is the transition id when the
// caller holds the run alone (a recovery's winner, a claim's owner), so that
// its own retry is recognised; empty means a fresh one.
func (rp *reconcilePass) crashFrom(ctx context.Context, run prefect.FlowRun, tid string, rl *runLog, msg string) (RunCheck, bool) {
	state := prefect.StateCreate{Type: prefect.StateCrashed, Name: "Crashed", Message: msg, StateDetails: prefect.StateDetails{TransitionID: tid}}
	return rp.propose(ctx, run, state, ActionCrashed, prefect.LogError, msg, rl)
}

// propose writes a decision through orchestration (never forced). Only an
// accepted write is logged to the run and reported as act; a refused one
// means the run moved on, or another dispatcher made the same decision.
func (rp *reconcilePass) propose(ctx context.Context, run prefect.FlowRun, state prefect.StateCreate, act Action, level int, msg string, rl *runLog) (RunCheck, bool) {
	res, err := rp.r.d.api.SetFlowRunState(ctx, run.ID, state, false)
	if err != nil {
		return errored(run, fmt.Errorf("set flow run %s %s: %w", run.ID, state.Name, err))
	}
	if res.Status != prefect.Accept {
		return RunCheck{}, false
	}
	rl.add(level, msg)
	return RunCheck{FlowRunID: run.ID, Action: act, Message: msg}, true
}

// unchanged re-reads the run before a write: ok is true only when its state
// is still the one seen. Otherwise the check ends: with nothing done when the
// run moved on (it finished meanwhile), or errored when it cannot be read.
func (rp *reconcilePass) unchanged(ctx context.Context, seen prefect.FlowRun) (c RunCheck, acted, ok bool) {
	now, err := rp.r.d.api.ReadFlowRun(ctx, seen.ID)
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

// failed ends a check whose read failed: deferred when the pass reads no
// more of its kind (errDeferred: the failure was logged once for the pass),
// errored quietly when the pass is ending (RunOnce counts it as skipped),
// else errored with a warning saying what failed.
func failed(ctx context.Context, run prefect.FlowRun, err error, log *slog.Logger, what string) (RunCheck, bool) {
	switch {
	case errors.Is(err, errDeferred):
		return RunCheck{FlowRunID: run.ID, Action: actionDeferred, Message: err.Error()}, true
	case ctx.Err() == nil:
		log.WarnContext(ctx, what, slog.String("error", err.Error()))
	}
	return errored(run, err)
}

// cancel settles a CANCELLING run: its infrastructure is stopped (after
// CancelGrace for a run that started, which cancels itself) and the run is
// set CANCELLED. Prefect's server leaves this to workers, and push pools
// have none.
func (rp *reconcilePass) cancel(ctx context.Context, run prefect.FlowRun, rl *runLog, log *slog.Logger) (RunCheck, bool) {
	r := rp.r
	var msg string
	if pid := deref(run.InfrastructurePID); pid == "" {
		msg = "Flow run was cancelled before any infrastructure was started for it."
	} else {
		st, err := rp.status(ctx, pid)
		switch {
		case errors.Is(err, ErrForeign):
			return RunCheck{}, false
		case err != nil:
			return failed(ctx, run, err, log, "could not read the infrastructure status of a cancelling run; will retry next pass")
		case st.State == StateExited || st.State == StateNotFound:
			msg = fmt.Sprintf("Flow run infrastructure %s had already stopped; the cancellation is complete.", pid)
		default:
			if run.StartTime != nil && stateAge(rp.now, *run.State) < r.cfg.CancelGrace {
				return RunCheck{}, false // prefect flow-run execute cancels itself first
			}
			if err := r.d.backend.Stop(ctx, pid); err != nil {
				log.WarnContext(ctx, "could not stop the infrastructure of a cancelling run; will retry next pass", slog.String("error", err.Error()))
				return errored(run, fmt.Errorf("stop infrastructure %s: %w", pid, err))
			}
			msg = fmt.Sprintf("Flow run infrastructure %s was stopped by pushpool worker %q.", pid, r.d.cfg.WorkerName)
		}
	}
	if c, acted, ok := rp.unchanged(ctx, run); !ok {
		return c, acted
	}
	// As Prefect's worker: the Cancelling state becomes Cancelled, keeping its
	// message (who cancelled and why). Through orchestration, with a
	// transition id derived from the Cancelling state, so concurrent
	// reconcilers write it once (the worker forces it).
	state := prefect.StateCreate{Type: prefect.StateCancelled, Name: "Cancelled", Data: run.State.Data,
		StateDetails: prefect.StateDetails{TransitionID: transitionID(run.State.ID, "cancel")}}
	if run.State.Message != nil {
		state.Message = *run.State.Message
	}
	return rp.propose(ctx, run, state, ActionCancelled, prefect.LogInfo, msg, rl)
}
