package dispatch

import (
	"context"
	"fmt"
	"log/slog"
	"strings"
	"sync"

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
// run asked for by id alone is read first: a run that is no longer a
// Scheduled run of pool is NotScheduled, one scheduled later than the
// lookahead is NotDue (DueAt says when to wake again); both are left
// untouched. A run that is due must also be one the pool's
// get_scheduled_flow_runs would hand out now — its work queue not paused,
// the pool's and queue's concurrency limits not reached, not an in-process
// flow retry — or it is Deferred and left Scheduled for a later tick, as a
// worker would leave it. Runs given with Wake.Run come from that query
// already. Runs whose deployment is paused are Deferred, as in RunOnce.
func (d *Dispatcher) DispatchRuns(ctx context.Context, pool string, wakes []Wake) (PassResult, error) {
	res := PassResult{Pool: pool}
	ctx, p, cancel, err := d.startPass(ctx, pool)
	defer cancel()
	if err != nil || p == nil {
		return res, err
	}
	var unique []Wake
	seen := map[string]bool{}
	for _, w := range wakes {
		if !seen[w.FlowRunID] {
			seen[w.FlowRunID] = true
			unique = append(unique, w)
		}
	}
	res.Polled = len(unique)

	// Read the runs asked for by id alone, and keep those that are due.
	l := newLauncher(ctx, d.cfg.MaxConcurrentSubmissions)
	var (
		mu        sync.Mutex
		candidate []Wake
		early     []RunResult
	)
	for _, w := range unique {
		if w.Run != nil {
			continue
		}
		if !l.launch(func(ctx context.Context) RunResult {
			run, r, ok := p.readWoken(ctx, w.FlowRunID)
			if ok {
				mu.Lock()
				candidate = append(candidate, Wake{FlowRunID: w.FlowRunID, Trigger: w.Trigger, Run: &run})
				mu.Unlock()
			}
			return r
		}) {
			early = append(early, RunResult{FlowRunID: w.FlowRunID, Outcome: Skipped, Err: context.Cause(ctx)})
		}
	}
	var results []RunResult
	for _, r := range l.wait() {
		if r.Outcome != "" {
			results = append(results, r)
		}
	}
	admitted, deferred, err := p.admit(ctx, candidate)
	if err != nil {
		for _, w := range candidate {
			results = append(results, RunResult{FlowRunID: w.FlowRunID, FlowRunName: w.Run.Name, DueAt: w.Run.DueTime(), Outcome: failedBeforeClaim(ctx), Err: err})
		}
		admitted = nil
	}
	results = append(results, deferred...)
	for _, w := range unique {
		if w.Run != nil {
			admitted = append(admitted, w)
		}
	}

	l = newLauncher(ctx, d.cfg.MaxConcurrentSubmissions)
	for _, w := range admitted {
		if !l.launch(func(ctx context.Context) RunResult { return p.wakeScheduled(ctx, *w.Run, w.Trigger) }) {
			early = append(early, RunResult{FlowRunID: w.FlowRunID, Outcome: Skipped, Err: context.Cause(ctx)})
		}
	}
	res.Runs = append(append(results, l.wait()...), early...)
	p.end(ctx)
	return res, nil
}

// readWoken reads one run asked for by id. ok is true when it is a due
// Scheduled run of the pool (in a queue this dispatcher serves); otherwise
// the result says why it is left alone.
func (p *pass) readWoken(ctx context.Context, id string) (run prefect.FlowRun, res RunResult, ok bool) {
	d := p.d
	res = RunResult{FlowRunID: id}
	run, err := d.api.ReadFlowRun(ctx, id)
	switch {
	case prefect.IsNotFound(err):
		res.Outcome, res.Err = NotScheduled, fmt.Errorf("flow run %s does not exist (deleted since it was announced)", id)
		return run, res, false
	case err != nil:
		res.Outcome, res.Err = failedBeforeClaim(ctx), fmt.Errorf("read flow run %s: %w", id, err)
		return run, res, false
	}
	res.FlowRunName, res.DueAt = run.Name, run.DueTime()
	if run.WorkPoolName == nil || *run.WorkPoolName != p.pool.Name {
		res.Outcome, res.Err = NotScheduled, fmt.Errorf("flow run %s is not in work pool %q (it is in %q); it is left to that pool's dispatcher", run.ID, p.pool.Name, deref(run.WorkPoolName))
		return run, res, false
	}
	if run.StateType == nil || *run.StateType != prefect.StateScheduled {
		res.Outcome = NotScheduled
		return run, res, false
	}
	if q := d.cfg.WorkQueues; len(q) > 0 && (run.WorkQueueName == nil || !contains(q, *run.WorkQueueName)) {
		res.Outcome, res.Err = NotScheduled, fmt.Errorf("flow run %s is in work queue %q, which this dispatcher does not serve (%s)", run.ID, deref(run.WorkQueueName), strings.Join(q, ", "))
		return run, res, false
	}
	if due := run.DueTime(); due.After(d.cfg.Now().Add(d.cfg.Lookahead)) {
		res.Outcome = NotDue
		return run, res, false
	}
	return run, RunResult{}, true
}

// admit asks the server which of the woken runs its get_scheduled_flow_runs
// would hand out now, with one query over their work queues: the query
// skips paused queues, runs beyond the pool's and queues' concurrency limits
// and in-process flow retries. The others are Deferred.
func (p *pass) admit(ctx context.Context, woken []Wake) (admitted []Wake, deferred []RunResult, err error) {
	if len(woken) == 0 {
		return nil, nil, nil
	}
	var queues []string
	for _, w := range woken {
		if q := deref(w.Run.WorkQueueName); q != "" && !contains(queues, q) {
			queues = append(queues, q)
		}
	}
	before := p.d.cfg.Now().Add(p.d.cfg.Lookahead)
	page, err := p.d.api.GetScheduledFlowRuns(ctx, p.pool.Name, prefect.ScheduledRunsRequest{
		WorkQueueNames: queues, ScheduledBefore: &before, Limit: 200,
	})
	if err != nil {
		return nil, nil, fmt.Errorf("ask pool %q which woken runs may start: %w", p.pool.Name, err)
	}
	may := map[string]bool{}
	for _, sr := range page {
		may[sr.FlowRun.ID] = true
	}
	for _, w := range woken {
		if may[w.FlowRunID] {
			admitted = append(admitted, w)
			continue
		}
		deferred = append(deferred, RunResult{FlowRunID: w.FlowRunID, FlowRunName: w.Run.Name, DueAt: w.Run.DueTime(), Outcome: Deferred,
			Err: fmt.Errorf("flow run %s may not start now: its work queue %q is paused, a concurrency limit of pool %q or of the queue is reached, or it waits for an in-process retry; it stays Scheduled and a later pass takes it when it may start",
				w.FlowRunID, deref(w.Run.WorkQueueName), p.pool.Name)})
	}
	return admitted, deferred, nil
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
