package dispatch

import (
	"context"
	"fmt"
	"log/slog"

	"github.com/pushpool/pushpool/dispatch/prefect"
)

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
	// Status is what the event says the infrastructure is doing; its
	// Attempt is the attempt key the infrastructure's tags carry, when they
	// carry one.
	Status Status
}

// Observe applies a pushed infrastructure event to its flow run with the same
// rules RunOnce applies to a polled status. An event about infrastructure
// of another attempt than the run's current one, about other infrastructure
// than the recorded one when the event names no attempt, or about a run
// that is not PENDING, RUNNING or CANCELLING, changes nothing. Infrastructure
// of the current attempt that was not recorded (its dispatcher died after
// starting it) is recorded first. acted is false when nothing needed doing.
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
	rp := r.newPass(deref(run.WorkPoolName))
	log := r.d.log.With(slog.String("flow_run_id", run.ID), slog.String("infrastructure_id", ev.InfrastructureID))
	rl := newRunLog(r.d.api, run.ID, log)
	defer rl.flush(context.WithoutCancel(ctx))
	recorded := deref(run.InfrastructurePID)
	same := recorded == ev.InfrastructureID
	if m, ok := r.d.backend.(InfrastructureMatcher); ok && recorded != "" && !same {
		same = m.SameInfrastructure(recorded, ev.InfrastructureID)
	}
	switch {
	case run.State.Type == prefect.StateCancelling:
		if same || recorded == "" {
			c, acted := rp.cancel(ctx, run, rl, log)
			return c, acted, nil
		}
		return RunCheck{}, false, nil
	case run.State.Type != prefect.StatePending && run.State.Type != prefect.StateRunning:
		return RunCheck{}, false, nil
	}
	current := false
	if ev.Status.Attempt != "" {
		cur, ok, err := rp.currentAttempt(ctx, run)
		if err != nil {
			return RunCheck{}, false, err
		}
		if ok && cur.Key() != ev.Status.Attempt {
			log.DebugContext(ctx, "event about an earlier attempt's infrastructure; ignored", slog.String("attempt", ev.Status.Attempt))
			return RunCheck{}, false, nil
		}
		current = ok
	}
	switch {
	case same:
	case recorded == "" || current:
		pid := ev.InfrastructureID
		if err := r.d.api.UpdateFlowRun(ctx, run.ID, prefect.FlowRunUpdate{InfrastructurePID: &pid}); err != nil {
			return RunCheck{}, false, fmt.Errorf("record infrastructure %s on flow run %s: %w", pid, run.ID, err)
		}
		rl.add(prefect.LogInfo, fmt.Sprintf("Infrastructure %s reported by the platform was recorded on the flow run (its dispatcher had not recorded it).", pid))
	default:
		log.DebugContext(ctx, "event about other infrastructure than the run's; ignored", slog.String("recorded", recorded))
		return RunCheck{}, false, nil
	}
	c, acted = rp.judge(ctx, run, ev.InfrastructureID, ev.Status, rl, log)
	return c, acted, nil
}
