package dispatch

import (
	"context"

	"github.com/pushpool/pushpool/dispatch/prefect"
)

// CrashIfUnchanged exposes the reconciler's guarded crash to tests: it
// crashes run unless its state moved on since the snapshot was read.
func (r *Reconciler) CrashIfUnchanged(ctx context.Context, snapshot prefect.FlowRun, msg string) (RunCheck, bool) {
	rl := newRunLog(r.d.api, snapshot.ID, r.d.log)
	defer rl.flush(ctx)
	return r.newPass(deref(snapshot.WorkPoolName)).crash(ctx, snapshot, rl, msg)
}

// DieAfterClaim makes d behave, for the runs die selects, like a dispatcher
// killed between claim and submit: the run is claimed (PENDING) and nothing
// else happens.
func (d *Dispatcher) DieAfterClaim(die func(flowRunID string) bool) { d.dieAfterClaim = die }

// DieAfterStart makes d behave, for the runs die selects, like a dispatcher
// killed after starting the job but before recording it.
func (d *Dispatcher) DieAfterStart(die func(flowRunID string) bool) { d.dieAfterStart = die }
