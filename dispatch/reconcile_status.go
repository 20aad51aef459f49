package dispatch

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"github.com/pushpool/pushpool/dispatch/prefect"
)

// errDeferred ends the check of a run that this pass cannot read enough
// about (see actionDeferred).
var errDeferred = errors.New("left for a later pass")

// statusBook holds the infrastructure statuses a pass read for all of its
// runs at once, and whether the pass still reads statuses.
type statusBook struct {
	read   map[string]Status
	failed map[string]error // ids a batch read failed for, not by throttling
	// halted is set once the platform throttled this pass's reads (or the
	// reconciler was backing off when the pass began): no more are made.
	halted atomic.Bool
	// throttled is set when this pass itself was throttled.
	throttled atomic.Bool
	once      sync.Once
}

// throttleState is how a reconciler backs off from a platform that
// throttles its status reads: level counts the throttled passes in a row,
// until is when reads may start again (local clock).
type throttleState struct {
	level int
	until time.Time
}

// status returns the infrastructure status of pid: read in the pass's
// batch, else by Backend.Status. It returns errDeferred when the pass reads
// no more statuses; a read the platform throttles halts the pass's reads.
func (rp *reconcilePass) status(ctx context.Context, pid string) (Status, error) {
	book := rp.statuses
	if st, ok := book.read[pid]; ok {
		return st, nil
	}
	if err, ok := book.failed[pid]; ok {
		return Status{}, err
	}
	if book.halted.Load() {
		return Status{}, errDeferred
	}
	st, err := rp.r.d.backend.Status(ctx, pid)
	if err != nil && errors.Is(err, ErrRetryable) && ctx.Err() == nil {
		rp.r.throttled(ctx, rp.pool, book, err)
		return Status{}, fmt.Errorf("%w: %w", errDeferred, err)
	}
	return st, err
}

// readStatuses reads the infrastructure status of every run that has an id
// recorded, in as few calls as the backend allows (StatusReader); a backend
// without one is asked per run, as each run is checked. While the
// reconciler backs off from throttling, nothing is read.
func (r *Reconciler) readStatuses(ctx context.Context, pool string, runs []prefect.FlowRun) *statusBook {
	book := &statusBook{}
	if wait := r.throttleWait(); wait > 0 {
		book.halted.Store(true)
		r.d.log.DebugContext(ctx, "backing off from throttling: no infrastructure status is read this pass", slog.String("work_pool", pool), slog.Duration("remaining", wait))
		return book
	}
	sr, ok := r.d.backend.(StatusReader)
	ids := recordedIDs(runs)
	if !ok || len(ids) == 0 {
		return book
	}
	read, err := sr.Statuses(ctx, ids)
	book.read = read
	switch {
	case err == nil:
	case ctx.Err() != nil:
		book.halted.Store(true) // the pass is ending; its checks are skipped
	case errors.Is(err, ErrRetryable):
		r.throttled(ctx, pool, book, err)
	default:
		book.failed = map[string]error{}
		for _, id := range ids {
			if _, ok := read[id]; !ok {
				book.failed[id] = err
			}
		}
		r.d.log.WarnContext(ctx, "could not read the infrastructure status of the pool's runs; will retry next pass",
			slog.String("work_pool", pool), slog.Int("runs", len(book.failed)), slog.String("error", err.Error()))
	}
	return book
}

// recordedIDs returns the distinct infrastructure ids recorded on runs.
func recordedIDs(runs []prefect.FlowRun) []string {
	seen := map[string]bool{}
	var ids []string
	for _, run := range runs {
		if pid := deref(run.InfrastructurePID); pid != "" && !seen[pid] {
			seen[pid] = true
			ids = append(ids, pid)
		}
	}
	return ids
}

// throttled halts the pass's status reads after the platform throttled
// one, once per pass: it backs the reconciler off (doubling the wait for
// every throttled pass in a row, up to MaxThrottleBackoff) and logs it.
func (r *Reconciler) throttled(ctx context.Context, pool string, book *statusBook, err error) {
	book.once.Do(func() {
		book.halted.Store(true)
		book.throttled.Store(true)
		r.mu.Lock()
		r.throttle.level++
		wait := r.cfg.ThrottleBackoff << min(r.throttle.level-1, 20)
		wait = min(wait, r.cfg.MaxThrottleBackoff)
		r.throttle.until = time.Now().Add(wait)
		r.mu.Unlock()
		r.d.log.WarnContext(ctx, "the platform throttled infrastructure status reads: this pass reads no more, its unread runs wait for a later pass",
			slog.String("work_pool", pool), slog.Duration("backoff", wait), slog.String("error", err.Error()))
	})
}

// settleThrottle ends the backoff after a pass whose reads were not
// throttled.
func (r *Reconciler) settleThrottle(book *statusBook) {
	if book.halted.Load() {
		return
	}
	r.mu.Lock()
	r.throttle = throttleState{}
	r.mu.Unlock()
}

// throttleWait is how long the reconciler still backs off from throttling.
func (r *Reconciler) throttleWait() time.Duration {
	r.mu.Lock()
	defer r.mu.Unlock()
	return max(time.Until(r.throttle.until), 0)
}
