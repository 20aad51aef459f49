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
	return r.crash(ctx, snapshot, rl, msg)
}

// DieAfterClaim makes d behave, for the runs die selects, like a dispatcher
// killed between claim and submit: the run is claimed (PENDING) and nothing
// else happens.
func (d *Dispatcher) DieAfterClaim(die func(flowRunID string) bool) { d.dieAfterClaim = die }
