package dispatch

import (
	"context"
	"fmt"
	"log/slog"
	"time"

	"github.com/pushpool/pushpool/dispatch/prefect"
)

// leaseMargin is how long after its lease ran out the holder takes it
// again: the server counts the lease from when it committed the slot, a
// little after the holder sent the request, and a request that comes
// before the slot decayed is refused (and restarts the decay).
const leaseMargin = 500 * time.Millisecond

// leaseGrace is how long after another's lease ran out (by the server's
// clock) a reconciler asks for it: the holder comes first, so the lease
// changes hands only when its holder stopped taking it.
const leaseGrace = 2 * time.Second

// leaseState is what a reconciler knows of a pool's lease: when it took it
// itself (local clock; zero when it does not hold it), and when another's
// lease runs out (server clock), as last read.
type leaseState struct {
	taken       time.Time
	othersUntil time.Time
}

// LeaseName is the name of the global concurrency limit that is the pool's
// reconcile lease (see Reconciler.RunLeased).
func LeaseName(pool string) string { return "pushpool-reconcile:" + pool }

// RunLeased makes a reconcile pass over the pool (RunOnce) if this
// reconciler holds the pool's reconcile lease, taking it when it is free;
// ran is false when another reconciler holds it. So any number of
// dispatchers can serve a pool and reconcile it once per LeasePeriod, not
// once each.
//
// The lease is a global concurrency limit of the Prefect server, named
// LeaseName(pool), with limit 1 and a slot that decays in LeasePeriod: it
// needs no infrastructure of its own, and it frees itself when its holder
// dies, since nothing has to release it. The first reconciler creates it.
// Taking it costs a read (is the slot free?) and, when it is, an increment
// (Prefect's orchestration of slots lets one of racing reconcilers win); a
// holder takes it again without the read at the end of its period, so it
// usually keeps it, and makes passes within its period with no request at
// all. A pass that outlasts the period may overlap with the next holder's:
// that costs requests but is safe, as every write re-reads its run and goes
// through orchestration. An administrator may raise the limit to let more
// reconcilers run at once, or deactivate it to let every reconciler run.
func (r *Reconciler) RunLeased(ctx context.Context, pool string) (res ReconcileResult, ran bool, err error) {
	held, err := r.takeLease(ctx, pool)
	if err != nil || !held {
		return ReconcileResult{Pool: pool}, false, err
	}
	res, err = r.RunOnce(ctx, pool)
	return res, true, err
}

// takeLease reports whether this reconciler holds the pool's lease,
// taking it when it is free.
func (r *Reconciler) takeLease(ctx context.Context, pool string) (bool, error) {
	period := r.cfg.LeasePeriod
	name := LeaseName(pool)
	if st := r.leaseState(pool); !st.taken.IsZero() {
		switch age := time.Since(st.taken); {
		case age < period:
			return true, nil // still ours: the server's clock for it started later
		case age < period+leaseMargin:
			return false, nil // not free yet on the server's clock
		default:
			return r.increment(ctx, pool, name) // the holder is first in line
		}
	}
	l, err := r.d.api.ReadGlobalConcurrencyLimit(ctx, name)
	switch {
	case prefect.IsNotFound(err):
		if l, err = r.createLease(ctx, name); err != nil {
			return false, err
		}
	case err != nil:
		return false, fmt.Errorf("read reconcile lease %q: %w", name, err)
	}
	if !l.Active {
		return true, nil // switched off: every reconciler reconciles
	}
	if l.SlotDecayPerSecond <= 0 {
		// Without decay a dead holder's slot would never free up.
		if err := r.restoreDecay(ctx, name); err != nil {
			return false, err
		}
	}
	if l.ActiveSlots >= l.Limit {
		r.othersLease(pool, l)
		return false, nil
	}
	return r.increment(ctx, pool, name)
}

// increment takes the lease's slot; false when another reconciler has it.
func (r *Reconciler) increment(ctx context.Context, pool, name string) (bool, error) {
	at := time.Now()
	ok, _, err := r.d.api.IncrementConcurrencySlots(ctx, []string{name}, 1)
	if err != nil {
		return false, fmt.Errorf("take reconcile lease %q: %w", name, err)
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	if !ok {
		// Taken by another just now: its period starts about now.
		r.leases[pool] = leaseState{othersUntil: r.d.api.ServerTime().Add(r.cfg.LeasePeriod)}
		return false, nil
	}
	r.leases[pool] = leaseState{taken: at}
	r.d.log.DebugContext(ctx, "took the reconcile lease", slog.String("work_pool", pool), slog.Duration("period", r.cfg.LeasePeriod))
	return true, nil
}

// othersLease notes until when another reconciler holds the pool's lease:
// until its slot decays, one slot's decay time after the server last
// updated it.
func (r *Reconciler) othersLease(pool string, l prefect.GlobalConcurrencyLimit) {
	until := r.d.api.ServerTime().Add(r.cfg.LeasePeriod)
	if l.Updated != nil && l.SlotDecayPerSecond > 0 {
		until = l.Updated.Add(time.Duration(float64(time.Second) / l.SlotDecayPerSecond))
	}
	r.mu.Lock()
	r.leases[pool] = leaseState{othersUntil: until}
	r.mu.Unlock()
}

// decay is the slot decay that frees the lease LeasePeriod after it was
// taken.
func (r *Reconciler) decay() float64 { return 1 / r.cfg.LeasePeriod.Seconds() }

// createLease creates the lease; one created meanwhile by another
// reconciler is read instead.
func (r *Reconciler) createLease(ctx context.Context, name string) (prefect.GlobalConcurrencyLimit, error) {
	l, err := r.d.api.CreateGlobalConcurrencyLimit(ctx, prefect.GlobalConcurrencyLimit{Name: name, Limit: 1, Active: true, SlotDecayPerSecond: r.decay()})
	if prefect.IsConflict(err) {
		l, err = r.d.api.ReadGlobalConcurrencyLimit(ctx, name)
	}
	if err != nil {
		return l, fmt.Errorf("create reconcile lease %q: %w", name, err)
	}
	return l, nil
}

// restoreDecay gives the lease its slot decay back.
func (r *Reconciler) restoreDecay(ctx context.Context, name string) error {
	decay := r.decay()
	if err := r.d.api.UpdateGlobalConcurrencyLimit(ctx, name, prefect.GlobalConcurrencyLimitUpdate{SlotDecayPerSecond: &decay}); err != nil {
		return fmt.Errorf("restore the slot decay of reconcile lease %q: %w", name, err)
	}
	r.d.log.WarnContext(ctx, "the reconcile lease had no slot decay, so a dead holder would have kept it forever; its decay was restored", slog.String("lease", name))
	return nil
}

// leaseState returns what the reconciler knows of the pool's lease.
func (r *Reconciler) leaseState(pool string) leaseState {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.leases[pool]
}

// nextLeased is how long the reconcile loop of Serve waits before its next
// RunLeased: interval; for the holder no later than its lease's end (so it
// takes the lease again before others ask), for the others no sooner than
// the holder's lease ends plus leaseGrace (so they ask once the holder had
// its turn, and read nothing meanwhile); and never before the throttling
// backoff ends.
func (r *Reconciler) nextLeased(pool string, interval time.Duration) time.Duration {
	wait := interval
	switch st := r.leaseState(pool); {
	case !st.taken.IsZero():
		wait = min(wait, time.Until(st.taken.Add(r.cfg.LeasePeriod+leaseMargin)))
	case !st.othersUntil.IsZero():
		left := st.othersUntil.Add(leaseGrace).Sub(r.d.api.ServerTime())
		wait = min(max(wait, left), r.cfg.LeasePeriod+leaseGrace+interval)
	}
	return max(wait, r.throttleWait(), minWait)
}
