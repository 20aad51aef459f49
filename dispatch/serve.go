package dispatch

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/pushpool/pushpool/dispatch/prefect"
)

// ServeConfig configures Serve.
type ServeConfig struct {
	// PollInterval is the longest wait between passes: how late a run created
	// for "now" (a manual or automation-triggered run) can be picked up.
	// Runs scheduled ahead are woken for by a timer at their due time, not
	// at the next poll. Zero means 10s, Prefect's PREFECT_WORKER_QUERY_SECONDS.
	PollInterval time.Duration
	// OnPass, when set, is called with the result of every pass.
	OnPass func(PassResult)
	// Reconciler, when set, makes reconcile passes too, so the runs started
	// are watched. They run in a loop of their own, beside the dispatch
	// passes, so a slow reconcile pass never delays claiming due runs; each
	// starts once the dispatch pass in progress ended (or ReconcileInterval
	// later), so it does not take the Prefect server from claiming a burst
	// of due runs either; and they go through Reconciler.RunLeased, so that of all the dispatchers serving
	// the pool one reconciles it per lease period.
	Reconciler *Reconciler
	// ReconcileInterval is the longest wait between two attempts of the
	// reconcile loop: a reconcile pass when this dispatcher holds (or
	// takes) the pool's reconcile lease, one read of the lease otherwise.
	// The loop waits longer while the platform throttles status reads.
	// Zero means DefaultReconcileInterval (15s).
	ReconcileInterval time.Duration
	// OnReconcile, when set, is called with the result of every reconcile
	// pass this dispatcher made. It is called from the reconcile loop's
	// goroutine, so possibly at the same time as OnPass.
	OnReconcile func(ReconcileResult)
}

// minWait keeps a loop whose next due time is already past from spinning.
const minWait = 50 * time.Millisecond

// Serve makes passes over the pool until ctx ends. After each pass it sleeps
// until the next run falls inside the lookahead window (each pass's poll
// looks PollInterval beyond the window for it; see NextPass), or
// PollInterval, whichever is sooner, so scheduled runs start on time without a tight poll.
// A failing pass (Prefect unreachable, pool missing) is logged and retried
// after PollInterval. With a Reconciler, reconcile passes run meanwhile in a
// loop of their own (see ServeConfig.Reconciler). Serve returns nil when ctx
// ends, after the last pass has recorded every run it claimed and the
// reconcile loop has stopped. A shutdown logs one line per loop: the
// reconciler logs warnings about reads it cut off at debug level.
func (d *Dispatcher) Serve(ctx context.Context, pool string, cfg ServeConfig) error {
	if cfg.PollInterval < 0 || cfg.ReconcileInterval < 0 {
		return errors.New("serve config: PollInterval and ReconcileInterval must not be negative")
	}
	if cfg.PollInterval == 0 {
		cfg.PollInterval = 10 * time.Second
	}
	if cfg.ReconcileInterval == 0 {
		cfg.ReconcileInterval = DefaultReconcileInterval
	}
	var wg sync.WaitGroup
	gate := newPassGate()
	if r := cfg.Reconciler; r != nil {
		wg.Go(func() { r.serve(ctx, pool, cfg.ReconcileInterval, gate, cfg.OnReconcile) })
	}
	d.dispatchLoop(ctx, pool, cfg, gate)
	wg.Wait()
	return nil
}

// passGate tells the reconcile loop when no dispatch pass is running, so
// its passes, which read many runs, do not take the Prefect server from
// claiming due runs: a burst of due runs is claimed first and reconciled
// after. It starts closed, so the first reconcile pass follows the first
// dispatch pass.
type passGate struct {
	mu   sync.Mutex
	idle chan struct{} // closed while no dispatch pass runs
}

func newPassGate() *passGate { return &passGate{idle: make(chan struct{})} }

// begin marks a dispatch pass as running.
func (g *passGate) begin() {
	g.mu.Lock()
	defer g.mu.Unlock()
	select {
	case <-g.idle:
		g.idle = make(chan struct{})
	default: // already running
	}
}

// end marks the dispatch pass as done.
func (g *passGate) end() {
	g.mu.Lock()
	defer g.mu.Unlock()
	select {
	case <-g.idle:
	default:
		close(g.idle)
	}
}

// wait waits until no dispatch pass runs, for at most limit: a pass
// longer than that (a very large burst) is reconciled beside.
func (g *passGate) wait(ctx context.Context, limit time.Duration) {
	g.mu.Lock()
	idle := g.idle
	g.mu.Unlock()
	t := time.NewTimer(limit)
	defer t.Stop()
	select {
	case <-idle:
	case <-t.C:
	case <-ctx.Done():
	}
}

// dispatchLoop makes dispatch passes until ctx ends.
func (d *Dispatcher) dispatchLoop(ctx context.Context, pool string, cfg ServeConfig, gate *passGate) {
	log := d.log.With(slog.String("work_pool", pool))
	defer gate.end()
	for ctx.Err() == nil {
		gate.begin()
		res, err := d.runOnce(ctx, pool, cfg.PollInterval)
		gate.end()
		if err != nil && ctx.Err() == nil {
			log.ErrorContext(ctx, "dispatch pass failed; retrying after the poll interval", slog.String("error", err.Error()), slog.Duration("poll_interval", cfg.PollInterval))
		}
		if cfg.OnPass != nil && err == nil {
			cfg.OnPass(res)
		}
		if ctx.Err() != nil {
			if n := res.Count(Skipped); n > 0 {
				log.Info("dispatch pass ended by the shutdown; the runs it did not claim stay scheduled", slog.Int("skipped", n))
			}
			return
		}
		wait := cfg.PollInterval
		switch {
		case err != nil:
		case d.cfg.MaxRunsPerPass > 0 && res.Polled >= d.cfg.MaxRunsPerPass:
			wait = 0 // the pass was cut short; more runs are due now
		case res.upcomingKnown:
			// The pass looked ahead itself: no second poll.
			if !res.upcoming.IsZero() {
				wait = min(wait, max(res.upcoming.Add(-d.cfg.Lookahead).Sub(d.cfg.Now()), minWait))
			}
		default:
			if at, ok, err := d.NextPass(ctx, pool, cfg.PollInterval, res); err != nil {
				log.WarnContext(ctx, "could not look up the next due run; waiting the poll interval", slog.String("error", err.Error()))
			} else if ok {
				wait = min(wait, max(at.Sub(d.cfg.Now()), minWait))
			}
		}
		if wait > 0 {
			log.DebugContext(ctx, "waiting for the next pass", slog.Duration("wait", wait))
			Sleep(ctx, wait) //nolint:errcheck // an ended ctx ends the loop
		}
	}
}

// serve makes reconcile passes over the pool until ctx ends: once no
// dispatch pass runs (gate), RunLeased, then a wait of interval, shorter for the lease's holder and longer for the
// others and while the platform throttles (nextLeased).
func (r *Reconciler) serve(ctx context.Context, pool string, interval time.Duration, gate *passGate, onResult func(ReconcileResult)) {
	log := r.d.log.With(slog.String("work_pool", pool))
	for ctx.Err() == nil {
		gate.wait(ctx, interval)
		if ctx.Err() != nil {
			return
		}
		res, ran, err := r.RunLeased(ctx, pool)
		switch {
		case ctx.Err() != nil:
			if ran {
				log.Info("reconcile pass ended by the shutdown; the runs it did not check are checked by the next", slog.Int("skipped", res.Skipped))
			}
		case err != nil:
			log.ErrorContext(ctx, "reconcile pass failed; retrying after the reconcile interval", slog.String("error", err.Error()), slog.Duration("interval", interval))
		}
		if ran && err == nil && onResult != nil {
			onResult(res)
		}
		if ctx.Err() != nil {
			return
		}
		wait := r.nextLeased(pool, interval)
		log.DebugContext(ctx, "waiting for the next reconcile pass", slog.Duration("wait", wait), slog.Bool("ran", ran))
		Sleep(ctx, wait) //nolint:errcheck // an ended ctx ends the loop
	}
}

// quietOnShutdown returns a logger that logs warnings and errors made with
// a context that has ended at debug level: they are what a shutdown cut off
// (a read cancelled mid-flight), one per run, and the loop that ends says
// so once.
func quietOnShutdown(l *slog.Logger) *slog.Logger {
	if _, ok := l.Handler().(shutdownHandler); ok {
		return l
	}
	return slog.New(shutdownHandler{l.Handler()})
}

// shutdownHandler is the handler of quietOnShutdown.
type shutdownHandler struct{ slog.Handler }

// level is the level a record of level l made with ctx is logged at.
func (shutdownHandler) level(ctx context.Context, l slog.Level) slog.Level {
	if l >= slog.LevelWarn && ctx != nil && ctx.Err() != nil {
		return slog.LevelDebug
	}
	return l
}

func (h shutdownHandler) Enabled(ctx context.Context, l slog.Level) bool {
	return h.Handler.Enabled(ctx, h.level(ctx, l))
}

func (h shutdownHandler) Handle(ctx context.Context, rec slog.Record) error {
	rec.Level = h.level(ctx, rec.Level)
	return h.Handler.Handle(ctx, rec)
}

func (h shutdownHandler) WithAttrs(attrs []slog.Attr) slog.Handler {
	return shutdownHandler{h.Handler.WithAttrs(attrs)}
}

func (h shutdownHandler) WithGroup(name string) slog.Handler {
	return shutdownHandler{h.Handler.WithGroup(name)}
}

// NextPass returns when the next pass should start so that the pool's next
// Scheduled run is claimed on time: the run's due time less the lookahead, or
// now for a run already inside the lookahead window that the last pass did
// not see (it became due while that pass ran). Only runs due within horizon
// after the window count; runs the last pass handled and left Scheduled
// (deferred, rejected, errored) are left to the poll interval. ok is false
// when no run counts.
func (d *Dispatcher) NextPass(ctx context.Context, pool string, horizon time.Duration, last PassResult) (at time.Time, ok bool, err error) {
	now := d.cfg.Now()
	window := now.Add(d.cfg.Lookahead)
	before := window.Add(horizon)
	handled := make(map[string]bool, len(last.Runs))
	for _, r := range last.Runs {
		handled[r.FlowRunID] = true
	}
	runs, err := d.api.GetScheduledFlowRuns(ctx, pool, prefect.ScheduledRunsRequest{
		WorkQueueNames: d.cfg.WorkQueues, ScheduledBefore: &before, Limit: 200,
	})
	if err != nil {
		return time.Time{}, false, fmt.Errorf("look up upcoming flow runs of pool %q: %w", pool, err)
	}
	for _, sr := range runs {
		if handled[sr.FlowRun.ID] {
			continue
		}
		start := sr.FlowRun.DueTime().Add(-d.cfg.Lookahead)
		if start.Before(now) {
			start = now
		}
		if !ok || start.Before(at) {
			at, ok = start, true
		}
	}
	return at, ok, nil
}
