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

// DefaultReconcileInterval is how often Serve makes a reconcile pass, and
// how long a reconcile lease lasts, unless configured otherwise.
const DefaultReconcileInterval = 15 * time.Second

// DefaultRunningPerPass is how many RUNNING runs a reconcile pass checks
// unless ReconcileConfig.RunningPerPass says otherwise: two pages of the
// server's flow run filter.
const DefaultRunningPerPass = 2 * prefect.MaxPageSize

// ReconcileConfig configures a Reconciler. Defaults are filled in by
// NewReconciler.
type ReconcileConfig struct {
	// FlowHeartbeatFrequency is how often flow runs send heartbeats
	// (PREFECT_FLOWS_HEARTBEAT_FREQUENCY). Zero means 180s, Prefect's default.
	FlowHeartbeatFrequency time.Duration
	// HeartbeatWindow is how long a RUNNING run that has sent heartbeats may
	// go without one before it is crashed as a zombie. Zero means three
	// times FlowHeartbeatFrequency.
	HeartbeatWindow time.Duration
	// ClaimTimeout is how long a run may stay PENDING with no infrastructure
	// of its current attempt recorded before its claim counts as abandoned
	// (its dispatcher died between claim and record). It must exceed what a
	// dispatcher may take from claim to record: two RecordTimeouts and a
	// SubmitTimeout. Zero means 5 minutes, or that sum and a minute when
	// it is larger.
	ClaimTimeout time.Duration
	// ExitGrace is how long a run may stay non-terminal after its
	// infrastructure exited with code 0, or vanished, before it is crashed:
	// the flow's final state may still be on its way. Zero means 60s.
	ExitGrace time.Duration
	// MaxReschedules is how many times in a row a run whose claims are
	// abandoned (its dispatchers die between claim and start) is put back to
	// the schedule; the next abandoned claim crashes it, so a run that kills
	// its dispatcher cannot loop forever. Zero means 3.
	MaxReschedules int
	// CancelGrace is how long a CANCELLING run that started is left to
	// `prefect flow-run execute`, which cancels itself (and runs the flow's
	// on_cancellation hooks), before its infrastructure is stopped. Zero
	// means 30s; runs that never started are stopped at once.
	CancelGrace time.Duration
	// RunningPerPass bounds the RUNNING runs one pass checks; PENDING and
	// CANCELLING runs are all checked in every pass. A pool with more
	// RUNNING runs has them checked in turn, in order of their start times,
	// over several passes (see Reconciler.RunOnce). Zero means
	// DefaultRunningPerPass (400: two pages of the server's filter, which
	// keeps a pass within five Prefect requests); negative means every
	// RUNNING run in every pass.
	RunningPerPass int
	// ThrottleBackoff is how long a reconciler reads no infrastructure
	// status after the platform throttled its reads (ErrRetryable); every
	// further throttled pass in a row doubles it, up to MaxThrottleBackoff.
	// Zero means 30s.
	ThrottleBackoff time.Duration
	// MaxThrottleBackoff caps ThrottleBackoff's doubling. Zero means 5m.
	MaxThrottleBackoff time.Duration
	// LeasePeriod is how long the pool's reconcile lease taken by RunLeased
	// lasts: of the reconcilers of a pool, only the one that holds it makes
	// passes, and it expires on its own when its holder dies. Zero means
	// DefaultReconcileInterval.
	LeasePeriod time.Duration
}

func (c *ReconcileConfig) fillDefaults(d Config) {
	if c.FlowHeartbeatFrequency == 0 {
		c.FlowHeartbeatFrequency = 180 * time.Second
	}
	if c.HeartbeatWindow == 0 {
		c.HeartbeatWindow = 3 * c.FlowHeartbeatFrequency
	}
	if c.ClaimTimeout == 0 {
		c.ClaimTimeout = max(5*time.Minute, claimLifetime(d)+time.Minute)
	}
	if c.ExitGrace == 0 {
		c.ExitGrace = 60 * time.Second
	}
	if c.CancelGrace == 0 {
		c.CancelGrace = 30 * time.Second
	}
	if c.MaxReschedules == 0 {
		c.MaxReschedules = 3
	}
	if c.RunningPerPass == 0 {
		c.RunningPerPass = DefaultRunningPerPass
	}
	if c.ThrottleBackoff == 0 {
		c.ThrottleBackoff = 30 * time.Second
	}
	if c.MaxThrottleBackoff == 0 {
		c.MaxThrottleBackoff = 5 * time.Minute
	}
	c.MaxThrottleBackoff = max(c.MaxThrottleBackoff, c.ThrottleBackoff)
	if c.LeasePeriod == 0 {
		c.LeasePeriod = DefaultReconcileInterval
	}
}

// Reconciler watches the runs a Dispatcher started: it compares what their
// infrastructure says with what Prefect says and settles the difference, as
// the Python worker would if one were running.
//
// What it keeps between passes only spreads the work and the load: where
// each pool's rotation over RUNNING runs stands, how long to back off from
// a throttling platform, and the reconcile leases it holds. Every decision
// is made on what the pass reads, so any number of reconcilers can run at
// once, and a new one starts afresh.
type Reconciler struct {
	d   *Dispatcher
	cfg ReconcileConfig

	mu       sync.Mutex
	cursors  map[string]time.Time  // pool -> where the rotation over RUNNING runs goes on
	leases   map[string]leaseState // pool -> what this reconciler knows of its reconcile lease
	throttle throttleState
}

// NewReconciler returns a Reconciler using the dispatcher's API, backend,
// worker name, logger and clock.
func NewReconciler(d *Dispatcher, cfg ReconcileConfig) (*Reconciler, error) {
	for name, v := range map[string]time.Duration{"FlowHeartbeatFrequency": cfg.FlowHeartbeatFrequency, "HeartbeatWindow": cfg.HeartbeatWindow,
		"ClaimTimeout": cfg.ClaimTimeout, "ExitGrace": cfg.ExitGrace, "CancelGrace": cfg.CancelGrace,
		"ThrottleBackoff": cfg.ThrottleBackoff, "MaxThrottleBackoff": cfg.MaxThrottleBackoff, "LeasePeriod": cfg.LeasePeriod} {
		if v < 0 {
			return nil, fmt.Errorf("reconcile config: %s must not be negative", name)
		}
	}
	if cfg.MaxReschedules < 0 {
		return nil, errors.New("reconcile config: MaxReschedules must not be negative")
	}
	cfg.fillDefaults(d.cfg)
	if life := claimLifetime(d.cfg); cfg.ClaimTimeout <= life {
		return nil, fmt.Errorf("reconcile config: ClaimTimeout (%s) must exceed the longest a dispatcher takes from claim to record (%s: RecordTimeout to claim, SubmitTimeout to start, RecordTimeout to record), or live claims would be taken for abandoned ones", cfg.ClaimTimeout, life)
	}
	return &Reconciler{d: d, cfg: cfg,
		cursors: map[string]time.Time{}, leases: map[string]leaseState{}}, nil
}

// Action is what a reconcile pass did about one flow run.
type Action string

// The actions of a reconcile pass.
const (
	// ActionCrashed: the run was set CRASHED (its infrastructure failed or
	// vanished, or its heartbeats stopped).
	ActionCrashed Action = "crashed"
	// ActionCancelled: the CANCELLING run's infrastructure was stopped (or was
	// already gone) and the run set CANCELLED.
	ActionCancelled Action = "cancelled"
	// ActionRescheduled: an abandoned claim was put back to SCHEDULED for the
	// next dispatch pass to claim and submit.
	ActionRescheduled Action = "rescheduled"
	// ActionRecorded: infrastructure of the run's current attempt that no
	// dispatcher had recorded (it died between start and record) was found
	// and recorded.
	ActionRecorded Action = "recorded"
	// ActionErrored: the run could not be checked or settled; the next pass
	// tries again.
	ActionErrored Action = "errored"

	// actionDeferred ends the check of a run whose infrastructure status or
	// heartbeats this pass does not read (the platform throttled the reads,
	// or the heartbeat query failed): the next pass checks it. Such runs
	// are counted in ReconcileResult.Deferred, not listed.
	actionDeferred Action = "deferred"
)

// RunCheck reports one flow run a reconcile pass acted on.
type RunCheck struct {
	FlowRunID string
	Action    Action
	// Message is the state message written, or the error.
	Message string
}

// ReconcileResult reports one reconcile pass. Runs that needed nothing are
// counted in Checked but not listed.
type ReconcileResult struct {
	Pool string
	// Checked counts the runs the pass listed: every PENDING and CANCELLING
	// run of the pool and the RUNNING runs whose turn it was.
	Checked int
	Runs    []RunCheck
	// Deferred counts the runs of Checked left for a later pass because
	// their infrastructure status or heartbeats could not be read in this
	// one: the platform throttled status reads (see Backoff), or the
	// heartbeat query failed. Each such failure is logged once per pass,
	// not once per run.
	Deferred int
	// Skipped counts the runs of Checked that were not (fully) checked
	// because the pass's context ended (a shutdown): nothing is reported
	// about them, and the next pass checks them.
	Skipped int
	// Backoff is how long, after this pass, the reconciler reads no
	// infrastructure status because the platform throttled it; zero when
	// it was not throttled.
	Backoff time.Duration
	// Swept counts the finished jobs' resources removed by a Sweeper backend.
	Swept int
}

// Count returns how many runs had the action.
func (r ReconcileResult) Count(a Action) int {
	return countWhere(r.Runs, func(c RunCheck) bool { return c.Action == a })
}

// recoveryJitter bounds the random wait before a recovery's lock.
const recoveryJitter = 2 * time.Second

// claimLifetime is the longest a dispatcher may take from proposing a claim
// to recording its outcome.
func claimLifetime(d Config) time.Duration { return 2*d.RecordTimeout + d.SubmitTimeout }

// heartbeatEvent is the event a running flow emits every
// PREFECT_FLOWS_HEARTBEAT_FREQUENCY seconds.
const heartbeatEvent = "prefect.flow-run.heartbeat"

// reconcilePass holds what one reconcile pass shares between its runs: the
// server's time when it began, the infrastructure statuses and heartbeats
// read for all of its runs at once, and what rendering a run's job needs
// (read only when a run's infrastructure must be looked for).
type reconcilePass struct {
	r    *Reconciler
	pool string
	now  time.Time

	statuses *statusBook
	beats    *heartbeatBook

	once sync.Once
	p    *pass
	err  error
}

// RunOnce makes one reconcile pass over the pool and returns what it did.
// It returns an error only when the runs cannot be listed.
//
// A pass costs a bounded number of requests, however many runs the pool
// has:
//   - every PENDING and CANCELLING run of the pool is listed (one request
//     per 200 runs; such runs are few and their deadlines short), and up to
//     RunningPerPass RUNNING runs, taken in turn by start time from where
//     the last pass of this reconciler over the pool stopped, so a pool with
//     more RUNNING runs has each checked every few passes (the brief
//     outage of a run's infrastructure is still noticed: an exit stays
//     reported until the run is settled);
//   - the infrastructure status of every listed run is read at once through
//     a StatusReader backend (ECS: one DescribeTasks per 100 tasks of a
//     cluster), else per run;
//   - the last heartbeat of every listed RUNNING run comes from one count of
//     heartbeat events by flow run;
//   - only runs that need a decision cost requests of their own (a re-read
//     before every write, a state history, the write, its log lines).
//
// So a pass over 1,000 RUNNING ECS runs and no others makes 4 Prefect
// requests (1 + 2 pages + 1) and 4 DescribeTasks calls, and each run is
// checked every third pass. When the platform throttles status reads, the
// pass reads no more, leaves the runs it could not read for later and
// backs off (ReconcileConfig.ThrottleBackoff). When ctx ends, the pass
// stops starting checks and reports the runs it did not finish as Skipped.
func (r *Reconciler) RunOnce(ctx context.Context, pool string) (ReconcileResult, error) {
	res := ReconcileResult{Pool: pool}
	runs, err := r.listRuns(ctx, pool)
	if err != nil {
		return res, err
	}
	res.Checked = len(runs)
	rp := r.newPass(pool)
	rp.statuses = r.readStatuses(ctx, pool, runs)
	rp.beats = r.readHeartbeats(ctx, pool, rp.now, runs)
	r.checkAll(ctx, rp, runs, &res)
	r.settleThrottle(rp.statuses)
	res.Backoff = r.throttleWait()
	if sw, ok := r.d.backend.(Sweeper); ok && ctx.Err() == nil {
		n, err := sw.Sweep(ctx)
		res.Swept = n
		if err != nil {
			r.d.log.WarnContext(ctx, "could not remove the resources of finished jobs; will retry next pass", slog.String("work_pool", pool), slog.String("error", err.Error()))
		}
	}
	return res, nil
}

// checkAll checks the runs, MaxConcurrentSubmissions at a time, and adds
// what it did to res. When ctx ends it starts no more checks; runs it did
// not start or that failed because ctx ended are counted as Skipped.
func (r *Reconciler) checkAll(ctx context.Context, rp *reconcilePass, runs []prefect.FlowRun, res *ReconcileResult) {
	var (
		mu  sync.Mutex
		wg  sync.WaitGroup
		sem = make(chan struct{}, r.d.cfg.MaxConcurrentSubmissions)
	)
	tally := func(c RunCheck, acted bool) {
		mu.Lock()
		defer mu.Unlock()
		switch {
		case !acted:
		case c.Action == actionDeferred:
			res.Deferred++
		case c.Action == ActionErrored && ctx.Err() != nil:
			res.Skipped++
		default:
			res.Runs = append(res.Runs, c)
		}
	}
	for i, run := range runs {
		select {
		case sem <- struct{}{}:
		case <-ctx.Done():
			wg.Wait()
			res.Skipped += len(runs) - i
			return
		}
		wg.Go(func() {
			defer func() { <-sem }()
			tally(rp.check(ctx, run))
		})
	}
	wg.Wait()
}

func (r *Reconciler) newPass(pool string) *reconcilePass {
	return &reconcilePass{r: r, pool: pool, now: r.d.serverNow(), statuses: &statusBook{}, beats: &heartbeatBook{}}
}

// serverNow is the server's time as the dispatcher's clock (Config.Now)
// would read it with the server's offset: state timestamps are the
// server's, so ages are measured on its clock.
func (d *Dispatcher) serverNow() time.Time {
	return d.api.ServerTime().Add(time.Until(d.cfg.Now()))
}
