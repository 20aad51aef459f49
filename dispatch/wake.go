package dispatch

import (
	"context"
	"fmt"
	"log/slog"
	"strings"

	"github.com/pushpool/pushpool/dispatch/prefect"
)

// Wake asks for one flow run by id: an entry of a fan-out shard, a delayed
// wake-up, or the run a webhook announced. The claim still decides who runs
// it, so a duplicate or early wake is harmless.
type Wake struct {
	FlowRunID string
	// Trigger, when set, is the event that caused the dispatch; it is passed
	// to the job and the run's labels (see Trigger).
	Trigger *Trigger
	// Run is the flow run as the pool's get_scheduled_flow_runs just
	// returned it (a tick's poll), so it is a Scheduled run of the pool, as
	// in RunOnce; nil means DispatchRuns reads and checks it. A stale copy
	// is harmless: the claim only succeeds from the Scheduled state it shows.
	Run *prefect.FlowRun
}

// Trigger attributes a dispatch to the Prefect event behind it, so a flow
// can read the whole event from /events/filter instead of receiving it as a
// parameter (Prefect caps parameters at 512 KB).
type Trigger struct {
	// EventID is the triggering event's id; Event its name, such as
	// prefect.flow-run.Scheduled.
	EventID, Event string
	// Actor is who caused the event (the prefect.resource.id of a related
	// resource with role "actor", or an automation), when known.
	Actor string
}

// The environment variables and labels that carry a Trigger.
const (
	EnvTriggerEventID    = "PREFECT_TRIGGER_EVENT_ID"
	EnvTriggerEvent      = "PREFECT_TRIGGER_EVENT"
	EnvTriggerActor      = "PREFECT_TRIGGER_ACTOR"
	LabelTriggerEventID  = "pushpool.io/trigger-event-id"
	LabelTriggerEvent    = "pushpool.io/trigger-event"
	LabelTriggerActor    = "pushpool.io/trigger-actor"
	labelTriggerMaxChars = 255
)

// env returns the job environment variables of t.
func (t *Trigger) env() map[string]string {
	out := map[string]string{}
	if t == nil {
		return out
	}
	for k, v := range map[string]string{EnvTriggerEventID: t.EventID, EnvTriggerEvent: t.Event, EnvTriggerActor: t.Actor} {
		if v != "" {
			out[k] = v
		}
	}
	return out
}

// labels returns the flow run and job labels of t.
func (t *Trigger) labels() map[string]string {
	out := map[string]string{}
	if t == nil {
		return out
	}
	for k, v := range map[string]string{LabelTriggerEventID: t.EventID, LabelTriggerEvent: t.Event, LabelTriggerActor: t.Actor} {
		if v != "" {
			if len(v) > labelTriggerMaxChars {
				v = v[:labelTriggerMaxChars]
			}
			out[k] = v
		}
	}
	return out
}

// DispatchRuns dispatches the given flow runs of pool, as RunOnce does the
// pool's due runs, with the same claim, deadline and recording rules. Each
// run is read first: a run that is no longer a Scheduled run of pool is
// NotScheduled, one scheduled later than the lookahead is NotDue (DueAt says
// when to wake again); both are left untouched. Runs whose deployment or
// queue is paused are Deferred, as in RunOnce.
func (d *Dispatcher) DispatchRuns(ctx context.Context, pool string, wakes []Wake) (PassResult, error) {
	res := PassResult{Pool: pool}
	ctx, p, cancel, err := d.startPass(ctx, pool)
	defer cancel()
	if err != nil || p == nil {
		return res, err
	}
	l := newLauncher(ctx, d.cfg.MaxConcurrentSubmissions)
	seen := map[string]bool{}
	var early []RunResult
	for _, w := range wakes {
		if seen[w.FlowRunID] {
			continue
		}
		seen[w.FlowRunID] = true
		w := w
		if !l.launch(func(ctx context.Context) RunResult { return p.wake(ctx, w) }) {
			early = append(early, RunResult{FlowRunID: w.FlowRunID, Outcome: Skipped, Err: context.Cause(ctx)})
		}
	}
	res.Runs = append(l.wait(), early...)
	res.Polled = len(seen)
	return res, nil
}

// wake reads one run asked for by id and handles it when it is due.
func (p *pass) wake(ctx context.Context, w Wake) RunResult {
	d := p.d
	res := RunResult{FlowRunID: w.FlowRunID}
	if w.Run != nil {
		return p.wakeScheduled(ctx, *w.Run, w.Trigger)
	}
	run, err := d.api.ReadFlowRun(ctx, w.FlowRunID)
	switch {
	case prefect.IsNotFound(err):
		res.Outcome, res.Err = NotScheduled, fmt.Errorf("flow run %s does not exist (deleted since it was announced)", w.FlowRunID)
		return res
	case err != nil:
		res.Outcome, res.Err = failedBeforeClaim(ctx), fmt.Errorf("read flow run %s: %w", w.FlowRunID, err)
		return res
	}
	res.FlowRunName, res.DueAt = run.Name, run.DueTime()
	if run.WorkPoolName == nil || *run.WorkPoolName != p.pool.Name {
		res.Outcome, res.Err = NotScheduled, fmt.Errorf("flow run %s is not in work pool %q (it is in %q); it is left to that pool's dispatcher", run.ID, p.pool.Name, deref(run.WorkPoolName))
		return res
	}
	if run.StateType == nil || *run.StateType != prefect.StateScheduled {
		res.Outcome = NotScheduled
		return res
	}
	if q := d.cfg.WorkQueues; len(q) > 0 && (run.WorkQueueName == nil || !contains(q, *run.WorkQueueName)) {
		res.Outcome, res.Err = NotScheduled, fmt.Errorf("flow run %s is in work queue %q, which this dispatcher does not serve (%s)", run.ID, deref(run.WorkQueueName), strings.Join(q, ", "))
		return res
	}
	return p.wakeScheduled(ctx, run, w.Trigger)
}

// wakeScheduled handles a Scheduled run of the pool when it is due.
func (p *pass) wakeScheduled(ctx context.Context, run prefect.FlowRun, t *Trigger) RunResult {
	d := p.d
	if due := run.DueTime(); due.After(d.cfg.Now().Add(d.cfg.Lookahead)) {
		return RunResult{FlowRunID: run.ID, FlowRunName: run.Name, DueAt: due, Outcome: NotDue}
	}
	if t != nil {
		p.setTrigger(run.ID, t)
		d.log.DebugContext(ctx, "dispatching a woken flow run", slog.String("flow_run_id", run.ID), slog.String("trigger_event_id", t.EventID))
	}
	return p.handle(ctx, run)
}

func deref(s *string) string {
	if s == nil {
		return ""
	}
	return *s
}

func contains(list []string, s string) bool {
	for _, v := range list {
		if v == s {
			return true
		}
	}
	return false
}
