package dispatch

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"strconv"
	"sync"
	"time"

	"github.com/pushpool/pushpool/dispatch/prefect"
	"github.com/pushpool/pushpool/dispatch/template"
)

// pass holds what one RunOnce reads once and shares between its runs.
type pass struct {
	d    *Dispatcher
	pool prefect.WorkPool
	// deadline is the invocation's hard deadline; zero when there is none.
	deadline time.Time
	// reads answers the pass's reads of deployments, flows, variables and
	// blocks, each read at most once per pass.
	reads *cachedReads
	// logs writes the dispatch lines of the pass's runs in batches.
	logs *logBatch

	mu       sync.Mutex
	triggers map[string]*Trigger
}

// setTrigger attributes the dispatch of a run to an event.
func (p *pass) setTrigger(flowRunID string, t *Trigger) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.triggers[flowRunID] = t
}

func (p *pass) trigger(flowRunID string) *Trigger {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.triggers[flowRunID]
}

func newPass(d *Dispatcher, pool prefect.WorkPool) *pass {
	return &pass{d: d, pool: pool,
		reads:    newCachedReads(d.reads, forever, d.cfg.Now),
		logs:     &logBatch{api: d.api, log: d.log},
		triggers: map[string]*Trigger{}}
}

// end writes what the pass's runs still have to say to their logs.
func (p *pass) end(ctx context.Context) {
	rctx, cancel := p.recordContext(ctx)
	defer cancel()
	p.logs.flush(rctx)
}

// runLog returns the log of one of the pass's runs.
func (p *pass) runLog(flowRunID string, log *slog.Logger) *runLog {
	rl := newRunLog(p.d.api, flowRunID, log)
	rl.batch = p.logs
	return rl
}

// errDeploymentDeleted marks a run whose deployment no longer exists.
var errDeploymentDeleted = errors.New("the deployment no longer exists")

// sources reads what a run's job is rendered from: its deployment (nil for
// a run without one) and its flow, each at most once per pass. A deleted
// deployment is an error wrapping errDeploymentDeleted.
func (p *pass) sources(ctx context.Context, run prefect.FlowRun) (*prefect.Deployment, prefect.Flow, error) {
	var dep *prefect.Deployment
	if run.DeploymentID != nil {
		d, err := p.reads.ReadDeployment(ctx, *run.DeploymentID)
		switch {
		case prefect.IsNotFound(err):
			return nil, prefect.Flow{}, fmt.Errorf("deployment %s of flow run %s: %w", *run.DeploymentID, run.ID, errDeploymentDeleted)
		case err != nil:
			return nil, prefect.Flow{}, fmt.Errorf("read deployment %s of flow run %s: %w", *run.DeploymentID, run.ID, err)
		}
		dep = &d
	}
	flow, err := p.reads.ReadFlow(ctx, run.FlowID)
	if err != nil {
		return nil, prefect.Flow{}, fmt.Errorf("read flow %s of flow run %s: %w", run.FlowID, run.ID, err)
	}
	return dep, flow, nil
}

// handle takes one due run from claim to recorded submission.
func (p *pass) handle(ctx context.Context, run prefect.FlowRun) RunResult {
	d := p.d
	res := RunResult{FlowRunID: run.ID, FlowRunName: run.Name, DueAt: run.DueTime()}
	log := d.log.With(slog.String("flow_run_id", run.ID), slog.String("work_pool", p.pool.Name))
	rl := p.runLog(run.ID, log)
	// Whatever happens below, the lines written for the run reach Prefect.
	defer func() {
		fctx, cancel := p.recordContext(ctx)
		defer cancel()
		rl.flush(fctx)
	}()

	dep, flow, err := p.sources(ctx, run)
	switch {
	case errors.Is(err, errDeploymentDeleted):
		return p.cancelOrphan(ctx, run, res, rl)
	case err != nil:
		res.Outcome, res.Err = failedBeforeClaim(ctx), err
		log.WarnContext(ctx, "cannot read the run's deployment or flow; will retry next pass", slog.String("error", err.Error()))
		return res
	case dep != nil && dep.Paused:
		res.Outcome = Deferred
		log.DebugContext(ctx, "deployment is paused; run left scheduled", slog.String("deployment_id", dep.ID))
		return res
	}

	// Once a claim is proposed, the work continues even if ctx ends: a claim
	// request cut off mid-flight may still have been accepted, and a claimed
	// run must never be left without a record. Each phase has its own budget:
	// the claim RecordTimeout, the start SubmitTimeout, and recording what
	// happened a fresh RecordTimeout, however long the start took.
	if err := ctx.Err(); err != nil {
		res.Outcome, res.Err = Skipped, context.Cause(ctx)
		return res
	}
	cctx, ccancel := p.recordContext(ctx)
	claimed, outcome, attempt, err := p.claim(ctx, cctx, run, log)
	ccancel()
	if !claimed {
		res.Outcome, res.Err = outcome, err
		return res
	}
	log = log.With(slog.String("attempt", attempt.Key()))
	if d.dieAfterClaim != nil && d.dieAfterClaim(run.ID) {
		res.Outcome = Skipped
		return res
	}

	sctx, scancel := p.submitContext(ctx)
	refused := &envRefusals{}
	job, renderErr := p.render(sctx, run, flow, dep, nil, refused)
	for _, line := range refused.lines(p.pool.Name) {
		rl.add(prefect.LogWarning, line)
	}
	job.Attempt = attempt
	var infraID string
	if renderErr == nil {
		mergeStrings(job.Configuration, "env", map[string]string{EnvAttempt: attempt.Token()})
		// The labels are written while the job starts: neither waits for
		// the other, and both are done before the run is recorded.
		labelled := make(chan struct{})
		go func() {
			defer close(labelled)
			p.label(sctx, run, job, log)
		}()
		infraID, err = d.backend.Start(sctx, job)
		<-labelled
	}
	cut := sctx.Err() != nil
	scancel()

	rctx, rcancel := p.recordContext(ctx)
	defer rcancel()
	switch {
	case renderErr != nil && cut:
		return p.requeue(rctx, run, attempt, res, rl, fmt.Errorf("the dispatcher ran out of time while rendering the job: %w", renderErr))
	case renderErr != nil:
		return p.crash(rctx, run, attempt, res, rl, fmt.Errorf("render the job from work pool %q's base job template: %w", p.pool.Name, renderErr))
	case err != nil:
		// A start that failed in a way a retry may cure, or was cut off, may
		// still have started the job (a reset after the request was applied):
		// the attempt is only given up after Find says it started nothing.
		if errors.Is(err, ErrRetryable) || cut {
			return p.giveUp(rctx, run, job, res, rl, err)
		}
		return p.crash(rctx, run, attempt, res, rl, err)
	}
	if d.dieAfterStart != nil && d.dieAfterStart(run.ID) {
		res.Outcome = Skipped
		return res
	}
	return p.record(rctx, run, infraID, res, rl, "")
}

// record writes the infrastructure id on the run and says so in its logs.
// A failed write leaves the run Pending without an id; the reconciler finds
// the attempt's infrastructure and records it after ClaimTimeout.
func (p *pass) record(ctx context.Context, run prefect.FlowRun, infraID string, res RunResult, rl *runLog, note string) RunResult {
	d := p.d
	res.Outcome, res.InfrastructureID, res.SubmittedAt = Submitted, infraID, d.cfg.Now()
	if err := d.api.UpdateFlowRun(ctx, run.ID, prefect.FlowRunUpdate{InfrastructurePID: &infraID}); err != nil {
		rl.add(prefect.LogError, fmt.Sprintf("Could not record infrastructure id %s on the flow run (pushpool records it later, when it finds the run without one): %v", infraID, err))
	}
	rl.add(prefect.LogInfo, fmt.Sprintf("Flow run '%s' submitted to infrastructure %s by pushpool worker %q (due %s, submitted %s).%s",
		run.Name, infraID, d.cfg.WorkerName, res.DueAt.UTC().Format(time.RFC3339), res.SubmittedAt.UTC().Format(time.RFC3339), note))
	return res
}

// submitContext is the context rendering and starting a claimed run's job
// use: SubmitTimeout from now, independent of the pass's context (a pass
// ending must not cut a start off half-way), but ending RecordReserve before
// the invocation's deadline, leaving the rest to record what happened.
func (p *pass) submitContext(ctx context.Context) (context.Context, context.CancelFunc) {
	sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), p.d.cfg.SubmitTimeout)
	if p.deadline.IsZero() {
		return sctx, cancel
	}
	bctx, bcancel := context.WithDeadline(sctx, p.deadline.Add(-p.d.cfg.RecordReserve))
	return bctx, func() { bcancel(); cancel() }
}

// recordContext is the context recording a claimed run uses: it outlives
// the pass's context by RecordTimeout, but never the invocation's deadline
// (less a moment to send the last request).
func (p *pass) recordContext(ctx context.Context) (context.Context, context.CancelFunc) {
	rctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), p.d.cfg.RecordTimeout)
	if p.deadline.IsZero() {
		return rctx, cancel
	}
	bctx, bcancel := context.WithDeadline(rctx, p.deadline.Add(-250*time.Millisecond))
	return bctx, func() { bcancel(); cancel() }
}

// claim proposes PENDING. Only ACCEPT makes the run ours, and only if the
// state it replaced was the Scheduled state we polled: Prefect also accepts
// PENDING from COMPLETED, FAILED and CRASHED (that is how a run is re-run by
// hand), so a dispatcher holding a stale poll could otherwise start a run
// another dispatcher already finished. Such a claim is undone at once.
//
// Requests use rctx, which outlives the pass, so a claim is never cut off
// half-way; waiting after a WAIT answer ends with ctx. A won claim returns
// the attempt it started: the flow run and the accepted PENDING state.
//
// A claim whose answer was lost (an error after the server may have applied
// it) leaves the run Pending without infrastructure, as a dispatcher that
// died there would; the reconciler recovers it after ClaimTimeout.
func (p *pass) claim(ctx, rctx context.Context, run prefect.FlowRun, log *slog.Logger) (bool, Outcome, Attempt, error) {
	for try := 0; ; try++ {
		proposal := prefect.StateCreate{Type: prefect.StatePending, Name: stateClaim,
			StateDetails: prefect.StateDetails{TransitionID: prefect.NewTransitionID()}}
		r, err := p.d.api.SetFlowRunState(rctx, run.ID, proposal, false)
		if err != nil {
			log.WarnContext(ctx, "claim failed; will retry next pass", slog.String("error", err.Error()))
			return false, Errored, Attempt{}, fmt.Errorf("propose PENDING for flow run %s: %w", run.ID, err)
		}
		switch r.Status {
		case prefect.Accept:
			if r.State == nil || r.State.ID == "" {
				return false, Errored, Attempt{}, fmt.Errorf("propose PENDING for flow run %s: the server accepted the claim but returned no state", run.ID)
			}
			attempt := Attempt{FlowRunID: run.ID, ClaimID: r.State.ID}
			if fromScheduled(*r.State) {
				return true, "", attempt, nil
			}
			ok, outcome, err := p.confirmClaim(rctx, run, proposal.StateDetails.TransitionID, log)
			return ok, outcome, attempt, err
		case prefect.Abort:
			log.DebugContext(ctx, "claim aborted: another dispatcher has the run", slog.String("reason", r.Details.Reason))
			return false, LostClaim, Attempt{}, nil
		case prefect.Reject:
			state := "unknown"
			if r.State != nil {
				state = fmt.Sprintf("%s (%s)", r.State.Type, r.State.Name)
			}
			log.InfoContext(ctx, "claim rejected", slog.String("new_state", state), slog.String("reason", r.Details.Reason))
			return false, Rejected, Attempt{}, nil
		case prefect.Wait:
			delay := time.Duration(r.Details.DelaySeconds * float64(time.Second))
			if try >= 2 || delay > 30*time.Second {
				return false, Rejected, Attempt{}, nil
			}
			t := time.NewTimer(delay)
			select {
			case <-ctx.Done():
				t.Stop()
				return false, Skipped, Attempt{}, context.Cause(ctx)
			case <-t.C:
			}
		default:
			return false, Errored, Attempt{}, fmt.Errorf("propose PENDING for flow run %s: unexpected orchestration status %q", run.ID, r.Status)
		}
	}
}

// fromScheduled tells whether an accepted claim replaced a SCHEDULED state,
// from the answer alone: the server copies the scheduled time of the state
// it replaces onto a proposed PENDING that has none (Prefect's
// CopyScheduledTime rule, which applies to SCHEDULED → PENDING only), and the
// claim proposes none. Two claims cannot both replace the same Scheduled
// state: set_state locks the run's row while it orchestrates (SELECT ... FOR
// UPDATE on PostgreSQL, BEGIN IMMEDIATE on SQLite), so the second one finds
// PENDING and is aborted by PreventPendingTransitions. A claim that replaced
// anything else needs the history: see confirmClaim.
func fromScheduled(accepted prefect.State) bool {
	return accepted.StateDetails.ScheduledTime != nil
}

// confirmClaim decides whether an accepted PENDING that did not replace a
// Scheduled state (see fromScheduled) made the run ours: the run had left
// Scheduled since the poll, and Prefect also accepts PENDING from COMPLETED,
// FAILED and CRASHED (that is how runs are re-run by hand).
//
// The claim stands only if no other PENDING appears since the last Scheduled
// state. Whichever of two claims committed last sees both, so at most one
// dispatcher goes on; if both see each other, neither does and the run
// waits for the reconciler's stuck-claim check. A stale claim over a terminal
// state puts that state back.
func (p *pass) confirmClaim(ctx context.Context, run prefect.FlowRun, transitionID string, log *slog.Logger) (bool, Outcome, error) {
	states, err := p.d.api.ReadFlowRunStates(ctx, run.ID)
	if err != nil {
		// Starting a run that may already have started is worse than a delay:
		// the run stays Pending without infrastructure, which the reconciler
		// recovers after ClaimTimeout.
		log.WarnContext(ctx, "could not read the state history to confirm the claim; run left Pending", slog.String("error", err.Error()))
		return false, Errored, fmt.Errorf("confirm the claim of flow run %s: %w", run.ID, err)
	}
	states = sortedStates(states)
	ours := -1
	for i, st := range states {
		if st.StateDetails.TransitionID == transitionID {
			ours = i
		}
	}
	if ours < 0 {
		return false, Errored, fmt.Errorf("confirm the claim of flow run %s: the accepted state is missing from its history", run.ID)
	}
	lastScheduled := -1
	for i := ours - 1; i >= 0; i-- {
		if states[i].Type == prefect.StateScheduled {
			lastScheduled = i
			break
		}
	}
	if ours > 0 && states[ours-1].Type.Terminal() {
		prev := states[ours-1]
		if err := p.restore(ctx, run.ID, prev); err != nil {
			return false, Errored, fmt.Errorf("restore state %s of flow run %s after a stale claim: %w", prev.Type, run.ID, err)
		}
		log.InfoContext(ctx, "claim was stale: the run had already finished; its state was restored", slog.String("state", string(prev.Type)))
		return false, LostClaim, nil
	}
	for i := lastScheduled + 1; i < len(states); i++ {
		if i != ours && states[i].Type == prefect.StatePending && states[i].Name == stateClaim {
			log.InfoContext(ctx, "claim lost: another dispatcher's claim was accepted too")
			p.undoLostClaim(ctx, run.ID, states, ours, log)
			return false, LostClaim, nil
		}
	}
	return true, "", nil
}

// undoLostClaim handles a lost race whose state committed last: timestamps
// are not commit order, so our PENDING may be the run's current state, on top
// of the winner's progress. Then the newest other state is put back.
func (p *pass) undoLostClaim(ctx context.Context, runID string, states []prefect.State, ours int, log *slog.Logger) {
	current, err := p.d.api.ReadFlowRun(ctx, runID)
	if err != nil || current.State == nil || current.State.ID != states[ours].ID {
		return
	}
	var newest *prefect.State
	for i := range states {
		if i != ours && (newest == nil || !stateTime(states[i]).Before(stateTime(*newest))) {
			newest = &states[i]
		}
	}
	if newest == nil {
		return
	}
	if err := p.restore(ctx, runID, *newest); err != nil {
		log.WarnContext(ctx, "could not put back the state a lost claim covered", slog.String("error", err.Error()))
	}
}

// restore forces a copy of an earlier state (type, name, message, result)
// back onto a run.
func (p *pass) restore(ctx context.Context, runID string, st prefect.State) error {
	copy := prefect.StateCreate{Type: st.Type, Name: st.Name, Data: st.Data}
	if st.Message != nil {
		copy.Message = *st.Message
	}
	_, err := p.d.api.SetFlowRunState(ctx, runID, copy, true)
	return err
}

func stateTime(s prefect.State) time.Time {
	if s.Timestamp == nil {
		return time.Time{}
	}
	return *s.Timestamp
}

// render builds the job a Prefect worker of this pool would build. A non-nil
// secrets collects the secret values of the blocks the job uses.
// refused, when not nil, collects the {{ $NAME }} placeholders the
// template may not read (see Config.TemplateEnv).
func (p *pass) render(ctx context.Context, run prefect.FlowRun, flow prefect.Flow, dep *prefect.Deployment, secrets *secretSet, refused *envRefusals) (Job, error) {
	if refused == nil {
		refused = &envRefusals{}
	}
	env := p.d.env.reader(refused)
	in := template.Input{
		BaseJobTemplate:     p.pool.BaseJobTemplate,
		FlowRunJobVariables: run.JobVariables,
		Env:                 env,
	}
	info := template.RunInfo{
		FlowRunID: run.ID, FlowRunName: run.Name,
		FlowID: flow.ID, FlowName: flow.Name,
		WorkPoolID: p.pool.ID, WorkPoolName: p.pool.Name,
		WorkerName:  p.d.cfg.WorkerName,
		SettingsEnv: p.d.cfg.SettingsEnv,
		FlowRun:     asObject(run), Flow: asObject(flow),
		Env: env,
	}
	depName := ""
	if dep != nil {
		in.DeploymentJobVariables = dep.JobVariables
		info.DeploymentID, info.DeploymentName, info.DeploymentUpdated = dep.ID, dep.Name, dep.Updated
		depName = dep.Name
	}
	if schema, _ := p.pool.BaseJobTemplate["variables"].(map[string]any); schema != nil {
		if err := p.d.schemas.ValidateFlowRun(schema, in.DeploymentJobVariables, run.JobVariables, p.pool.Name, depName); err != nil {
			return Job{}, err
		}
	}
	cfg, err := template.Render(ctx, in, resolver{api: p.reads, secrets: secrets})
	if err != nil {
		return Job{}, err
	}
	prepared := template.Prepare(cfg, info)
	if t := p.trigger(run.ID); t != nil {
		mergeStrings(prepared, "env", t.env())
		mergeStrings(prepared, "labels", t.labels())
	}
	return Job{
		FlowRunID: run.ID, FlowRunName: run.Name, FlowName: flow.Name, FlowID: flow.ID,
		DeploymentID: info.DeploymentID,
		WorkPool:     p.pool.Name, WorkPoolID: p.pool.ID, WorkPoolType: p.pool.Type,
		Configuration: prepared,
	}, nil
}

// label labels the run as a Prefect worker does, plus the attempt and the
// start timeout the reconciler judges it by, and the event that triggered
// it. With Config.NoRunLabels only a triggered run is labelled, with its
// trigger. Labels are informative: a failure is only logged.
func (p *pass) label(ctx context.Context, run prefect.FlowRun, job Job, log *slog.Logger) {
	labels := p.trigger(run.ID).labels()
	if !p.d.cfg.NoRunLabels {
		maps.Copy(labels, map[string]string{
			"prefect.worker.name":    p.d.cfg.WorkerName,
			"prefect.worker.type":    p.pool.Type,
			"prefect.work-pool.name": p.pool.Name,
			"prefect.work-pool.id":   p.pool.ID,
			LabelAttempt:             job.Attempt.Key(),
			labelStartTimeout:        strconv.Itoa(int(startTimeout(job.Configuration, p.d.cfg.StartTimeout).Seconds())),
		})
	}
	if len(labels) == 0 {
		return
	}
	if err := p.d.api.UpdateFlowRunLabels(ctx, run.ID, labels); err != nil {
		log.WarnContext(ctx, "could not label the flow run", slog.String("error", err.Error()))
	}
}

// labelStartTimeout records on a run how long its infrastructure may take
// to start, so the reconciler need not render the job to know (it does when
// the label is missing: Config.NoRunLabels, or a run a dispatcher older than
// the label claimed).
const labelStartTimeout = "pushpool.io/start-timeout-seconds"

// startTimeout is the job's task_start_timeout_seconds (the job variable of
// Prefect's ECS and ACI workers), else def.
func startTimeout(config map[string]any, def time.Duration) time.Duration {
	var secs float64
	switch v := config["task_start_timeout_seconds"].(type) {
	case float64:
		secs = v
	case int:
		secs = float64(v)
	case json.Number:
		secs, _ = v.Float64()
	}
	if secs <= 0 {
		return def
	}
	return time.Duration(secs * float64(time.Second))
}

// crash ends a claimed run that could not be started in Crashed, with the
// cause, as Prefect's worker does.
func (p *pass) crash(ctx context.Context, run prefect.FlowRun, attempt Attempt, res RunResult, rl *runLog, cause error) RunResult {
	msg := "Failed to submit flow run to infrastructure: " + cause.Error()
	rl.add(prefect.LogError, msg)
	res.Outcome, res.Err = Crashed, cause
	if _, err := p.d.api.SetFlowRunState(ctx, run.ID, prefect.StateCreate{Type: prefect.StateCrashed, Name: "Crashed", Message: msg,
		StateDetails: prefect.StateDetails{TransitionID: transitionID(attempt.ClaimID, "crash")}}, false); err != nil {
		rl.add(prefect.LogError, "Could not set the Crashed state: "+err.Error())
		res.Err = errors.Join(cause, err)
	}
	return res
}

// giveUp handles a start that failed in a way a later attempt may cure
// (throttling, quota, an outage, the time running out). The attempt may have
// started all the same, so Find decides: infrastructure found is recorded;
// none found puts the run back to the schedule (requeue); when Find cannot
// tell, the run stays Pending for the reconciler, which asks again.
func (p *pass) giveUp(ctx context.Context, run prefect.FlowRun, job Job, res RunResult, rl *runLog, cause error) RunResult {
	id, found, err := p.d.backend.Find(ctx, job)
	switch {
	case err != nil:
		rl.add(prefect.LogWarning, fmt.Sprintf("Submission to infrastructure did not finish (%v) and pushpool could not tell whether attempt %s started (%v); the run stays Pending and pushpool looks again after its claim timeout.",
			cause, job.Attempt.Key(), err))
		res.Outcome, res.Err = Errored, errors.Join(cause, err)
		return res
	case found:
		return p.record(ctx, run, id, res, rl, fmt.Sprintf(" The start reported an error (%v), but the infrastructure had started.", cause))
	}
	return p.requeue(ctx, run, job.Attempt, res, rl, cause)
}

// requeue gives a claimed run that started nothing back to the schedule, to
// be claimed again (a new attempt) after a backoff: retrying beats crashing
// a run that may well start a minute later. After MaxRequeues in a row the
// run is crashed with the reason instead.
func (p *pass) requeue(ctx context.Context, run prefect.FlowRun, attempt Attempt, res RunResult, rl *runLog, cause error) RunResult {
	d := p.d
	n := 0
	if states, err := d.api.ReadFlowRunStates(ctx, run.ID); err == nil {
		n = cycleCount(states, stateRequeued)
	}
	if n >= d.cfg.MaxRequeues {
		return p.crash(ctx, run, attempt, res, rl, fmt.Errorf("%w (the run was put back to the schedule %d times in a row for this; giving up)", cause, n))
	}
	delay := min(d.cfg.RequeueBackoff<<n, 5*time.Minute)
	msg := fmt.Sprintf("Submission to infrastructure did not finish and may succeed later (throttling, a quota, an outage, or the dispatcher's time running out); the run is back in the schedule and will be claimed again in %s (requeue %d of at most %d): %v",
		delay, n+1, d.cfg.MaxRequeues, cause)
	rl.add(prefect.LogWarning, msg)
	at := d.api.ServerTime().Add(delay).UTC()
	r, err := d.api.SetFlowRunState(ctx, run.ID, prefect.StateCreate{
		Type: prefect.StateScheduled, Name: stateRequeued, Message: msg,
		StateDetails: prefect.StateDetails{ScheduledTime: &at, TransitionID: transitionID(attempt.ClaimID, "requeue")},
	}, false)
	switch {
	case err != nil:
		rl.add(prefect.LogWarning, fmt.Sprintf("Could not put the run back to the schedule (%v); it stays Pending and pushpool recovers it after its claim timeout.", err))
		res.Outcome, res.Err = Errored, errors.Join(cause, err)
		return res
	case r.Status != prefect.Accept:
		rl.add(prefect.LogInfo, "The run moved on meanwhile (its state is no longer this claim); it was not put back to the schedule.")
	}
	res.Outcome, res.Err = Errored, cause
	return res
}

// cancelOrphan cancels a run whose deployment was deleted, as Prefect's
// worker does.
func (p *pass) cancelOrphan(ctx context.Context, run prefect.FlowRun, res RunResult, rl *runLog) RunResult {
	msg := fmt.Sprintf("Deployment %s no longer exists, cancelled run.", *run.DeploymentID)
	rl.add(prefect.LogWarning, msg)
	if _, err := p.d.api.SetFlowRunState(ctx, run.ID, prefect.StateCreate{Type: prefect.StateCancelled, Name: "Cancelled", Message: msg}, true); err != nil {
		res.Outcome, res.Err = Errored, fmt.Errorf("cancel flow run %s of deleted deployment %s: %w", run.ID, *run.DeploymentID, err)
		return res
	}
	res.Outcome = Cancelled
	return res
}

// failedBeforeClaim is the outcome of a read that failed before the claim:
// Skipped when the pass was ending, else Errored.
func failedBeforeClaim(ctx context.Context) Outcome {
	if ctx.Err() != nil {
		return Skipped
	}
	return Errored
}

// asObject turns an API object back into the JSON object the API sent, for
// {{ ctx.flow_run.* }} placeholders in job names.
func asObject(v any) map[string]any {
	data, err := json.Marshal(v)
	if err != nil {
		return nil
	}
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.UseNumber()
	var out map[string]any
	if dec.Decode(&out) != nil {
		return nil
	}
	return out
}

// resolver answers template placeholders through the Prefect API; a non-nil
// secrets collects the values of the secret fields of the blocks it reads.
type resolver struct {
	api     Lookups
	secrets *secretSet
}

func (r resolver) Variable(ctx context.Context, name string) (any, bool, error) {
	v, err := r.api.ReadVariable(ctx, name)
	if prefect.IsNotFound(err) {
		return nil, false, nil
	}
	if err != nil {
		return nil, false, err
	}
	return v.Value, true, nil
}

func (r resolver) BlockDocumentByID(ctx context.Context, id string) (map[string]any, error) {
	doc, err := r.api.ReadBlockDocument(ctx, id)
	return r.blockData(doc, err)
}

func (r resolver) BlockDocumentByName(ctx context.Context, typeSlug, name string) (map[string]any, error) {
	doc, err := r.api.ReadBlockDocumentByName(ctx, typeSlug, name)
	return r.blockData(doc, err)
}

func (r resolver) blockData(doc prefect.BlockDocument, err error) (map[string]any, error) {
	if prefect.IsNotFound(err) {
		return nil, fmt.Errorf("%w: %w", template.ErrNotFound, err)
	}
	if err != nil {
		return nil, err
	}
	r.secrets.addFields(doc.Data, doc.SecretFields())
	return doc.Data, nil
}

// mergeStrings adds values to the map at config[key] (a prepared
// configuration's env or labels), creating it if needed.
func mergeStrings(config map[string]any, key string, values map[string]string) {
	if len(values) == 0 {
		return
	}
	m, _ := config[key].(map[string]any)
	if m == nil {
		m = map[string]any{}
		config[key] = m
	}
	for k, v := range values {
		m[k] = v
	}
}
