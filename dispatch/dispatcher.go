package dispatch

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"path"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/pushpool/pushpool/dispatch/prefect"
	"github.com/pushpool/pushpool/dispatch/template"
)

// API is the part of the Prefect API the dispatcher uses; *prefect.Client
// implements it.
type API interface {
	ReadWorkPool(ctx context.Context, name string) (prefect.WorkPool, error)
	WorkerHeartbeat(ctx context.Context, pool, name string, interval time.Duration) error
	GetScheduledFlowRuns(ctx context.Context, pool string, in prefect.ScheduledRunsRequest) ([]prefect.ScheduledRun, error)
	ReadDeployment(ctx context.Context, id string) (prefect.Deployment, error)
	ReadFlow(ctx context.Context, id string) (prefect.Flow, error)
	ReadFlowRun(ctx context.Context, id string) (prefect.FlowRun, error)
	SetFlowRunState(ctx context.Context, id string, state prefect.StateCreate, force bool) (prefect.OrchestrationResult, error)
	ReadFlowRunStates(ctx context.Context, flowRunID string) ([]prefect.State, error)
	UpdateFlowRun(ctx context.Context, id string, in prefect.FlowRunUpdate) error
	UpdateFlowRunLabels(ctx context.Context, id string, labels map[string]string) error
	CreateLogs(ctx context.Context, logs []prefect.Log) error
	Lookups
	// For the Reconciler.
	FilterFlowRuns(ctx context.Context, f prefect.FlowRunFilter) ([]prefect.FlowRun, error)
	ReadEvents(ctx context.Context, f prefect.EventFilter, max int) ([]prefect.Event, error)
	FilterFlowRunsPage(ctx context.Context, f prefect.FlowRunFilter, offset, limit int) ([]prefect.FlowRun, error)
	CountEventsByResource(ctx context.Context, f prefect.EventFilter) ([]prefect.EventCount, error)
	// For the reconcile lease (Reconciler.RunLeased).
	ReadGlobalConcurrencyLimit(ctx context.Context, idOrName string) (prefect.GlobalConcurrencyLimit, error)
	CreateGlobalConcurrencyLimit(ctx context.Context, l prefect.GlobalConcurrencyLimit) (prefect.GlobalConcurrencyLimit, error)
	UpdateGlobalConcurrencyLimit(ctx context.Context, idOrName string, in prefect.GlobalConcurrencyLimitUpdate) error
	IncrementConcurrencySlots(ctx context.Context, names []string, slots int) (bool, []prefect.GlobalConcurrencyLimit, error)
	// ServerTime is the server's clock, which timestamps states.
	ServerTime() time.Time
}

// Lookups is the part of the API that block and variable placeholders of
// job templates need; *prefect.Client implements it.
type Lookups interface {
	ReadVariable(ctx context.Context, name string) (prefect.Variable, error)
	ReadBlockDocument(ctx context.Context, id string) (prefect.BlockDocument, error)
	ReadBlockDocumentByName(ctx context.Context, typeSlug, name string) (prefect.BlockDocument, error)
}

// DefaultLookahead is Prefect's worker prefetch (PREFECT_WORKER_PREFETCH_SECONDS)
// default, which the pushpool command and the functions use when it is unset.
const DefaultLookahead = 10 * time.Second

// DefaultReadCacheTTL is the Config.ReadCacheTTL the pushpool command and
// the functions use when PUSHPOOL_READ_CACHE_SECONDS is unset.
const DefaultReadCacheTTL = 5 * time.Second

// EnvRunLabels is the environment variable the pushpool command and the
// functions read Config.NoRunLabels from: false (or 0, off, no) sets it.
const EnvRunLabels = "PUSHPOOL_RUN_LABELS"

// Config configures a Dispatcher. Defaults are filled in by New.
type Config struct {
	// WorkerName names this dispatcher in Prefect: its worker heartbeats and
	// the prefect.io/worker-name label of every job. Keep it stable per
	// deployment of the dispatcher. Empty means "pushpool".
	WorkerName string
	// WorkQueues limits the dispatcher to these queues of the pool; empty
	// means every queue, in priority order.
	WorkQueues []string
	// Lookahead claims runs due up to this long from now, so infrastructure
	// can start before the due time (Prefect's worker prefetch,
	// PREFECT_WORKER_PREFETCH_SECONDS). Zero is zero: runs are claimed once
	// due, never early. DefaultLookahead is Prefect's default.
	Lookahead time.Duration
	// MaxConcurrentSubmissions bounds the runs one pass handles at once. Zero means 16.
	MaxConcurrentSubmissions int
	// MaxRunsPerPass bounds the runs one pass claims. Zero means no bound.
	MaxRunsPerPass int
	// HeartbeatInterval is the interval announced with worker heartbeats;
	// Prefect marks the worker offline after three missed. Zero means 30s.
	HeartbeatInterval time.Duration
	// RecordTimeout bounds claiming a run, and then, afresh, recording what
	// happened to it (the infrastructure id, or the Crashed state), even after
	// the pass's context ended, so a claimed run is never left unrecorded.
	// Zero means 60s.
	RecordTimeout time.Duration
	// SubmitTimeout bounds rendering and starting a claimed run's job (a
	// Cloud Run job's readiness wait, an ACI group's provisioning). A start
	// cut off by it is given up as after a retryable error. Zero means 2m.
	SubmitTimeout time.Duration
	// StartTimeout is how long a run's infrastructure may stay pending
	// (provisioning, pulling its image) before the reconciler crashes the
	// run, when the job has no task_start_timeout_seconds. Zero means 5m.
	StartTimeout time.Duration
	// MaxRequeues bounds how often in a row a claimed run whose job could
	// not start yet (persistent throttling, an exhausted quota) is put back
	// to the schedule; the next time it is crashed with the reason. Zero
	// means 5; a negative value crashes it at once.
	MaxRequeues int
	// RequeueBackoff is how long the first requeue waits before the run is
	// due again; each further one doubles it, up to 5m. Zero means 10s.
	RequeueBackoff time.Duration
	// SubmitReserve and RecordReserve matter when a pass's context has a
	// deadline (a cloud function's invocation deadline): no run is claimed
	// later than SubmitReserve+RecordReserve before it, and a submission
	// still running RecordReserve before it is abandoned and the run put
	// back to the schedule, so every claimed run is recorded before the
	// platform ends the invocation. Zero means 20s and 3s.
	SubmitReserve, RecordReserve time.Duration
	// ReadCacheTTL is how long the pool, deployments, flows, variables and
	// blocks a pass read are reused by later passes: a change to one of them
	// reaches runs claimed this much later at most. Within a pass each is
	// read once, whatever this is. Zero reads them afresh every pass.
	ReadCacheTTL time.Duration
	// SettingsEnv is the dispatcher's own Prefect settings given to every job,
	// under the job template's env, as a worker passes its explicitly set
	// settings: every setting in its environment (prefectenv.ForJobs) with
	// the API URL, key and auth string it connects with.
	SettingsEnv map[string]string
	// LookupEnv reads the dispatcher's environment for {{ $NAME }}
	// placeholders, through TemplateEnv. Nil means no variables are set.
	LookupEnv func(string) (string, bool)
	// TemplateEnv are the names and globs (path.Match) of the variables
	// {{ $NAME }} may read; nil means DefaultTemplateEnv, empty none. The
	// dispatcher's credentials (cloud keys and tokens, the Prefect API key,
	// auth string and custom headers, the webhook secret, any name holding
	// SECRET, TOKEN, PASSWORD, ...) and any value equal to its API key or
	// auth string are refused whatever it says. A refused placeholder
	// renders empty and the run's log says why.
	TemplateEnv []string
	// NoRunLabels skips labelling each claimed run as Prefect's workers do
	// (prefect.worker.name, prefect.worker.type, prefect.work-pool.name and
	// .id) and with pushpool's attempt and start timeout: one request per
	// run less, about a quarter of the Prefect server's work per dispatched
	// run (make bench measures both). The reconciler then reads the start
	// timeout from the rendered job. A run an event triggered still gets its
	// trigger labels; the job's own labels and tags are unchanged.
	NoRunLabels bool
	// Now returns the current time. Nil means time.Now.
	Now func() time.Time
}

func (c *Config) fillDefaults() {
	if c.WorkerName == "" {
		c.WorkerName = "pushpool"
	}
	if c.MaxConcurrentSubmissions == 0 {
		c.MaxConcurrentSubmissions = 16
	}
	if c.HeartbeatInterval == 0 {
		c.HeartbeatInterval = 30 * time.Second
	}
	if c.RecordTimeout == 0 {
		c.RecordTimeout = 60 * time.Second
	}
	if c.SubmitTimeout == 0 {
		c.SubmitTimeout = 2 * time.Minute
	}
	if c.StartTimeout == 0 {
		c.StartTimeout = 5 * time.Minute
	}
	switch {
	case c.MaxRequeues == 0:
		c.MaxRequeues = 5
	case c.MaxRequeues < 0:
		c.MaxRequeues = 0
	}
	if c.RequeueBackoff == 0 {
		c.RequeueBackoff = 10 * time.Second
	}
	if c.SubmitReserve == 0 {
		c.SubmitReserve = 20 * time.Second
	}
	if c.RecordReserve == 0 {
		c.RecordReserve = 3 * time.Second
	}
	if c.LookupEnv == nil {
		c.LookupEnv = func(string) (string, bool) { return "", false }
	}
	if c.TemplateEnv == nil {
		c.TemplateEnv = DefaultTemplateEnv
	}
	if c.Now == nil {
		c.Now = time.Now
	}
}

// Validate names the first field that cannot work and its limit.
func (c Config) Validate() error {
	switch {
	case c.Lookahead < 0:
		return errors.New("dispatch config: Lookahead must not be negative")
	case c.MaxConcurrentSubmissions < 0 || c.MaxConcurrentSubmissions > 1024:
		return fmt.Errorf("dispatch config: MaxConcurrentSubmissions is %d; it must be between 1 and 1024", c.MaxConcurrentSubmissions)
	case c.MaxRunsPerPass < 0:
		return errors.New("dispatch config: MaxRunsPerPass must not be negative")
	case c.ReadCacheTTL < 0:
		return errors.New("dispatch config: ReadCacheTTL must not be negative")
	case c.HeartbeatInterval < 0 || c.RecordTimeout < 0 || c.SubmitReserve < 0 || c.RecordReserve < 0 ||
		c.SubmitTimeout < 0 || c.StartTimeout < 0 || c.RequeueBackoff < 0:
		return errors.New("dispatch config: HeartbeatInterval, RecordTimeout, SubmitTimeout, StartTimeout, RequeueBackoff, SubmitReserve and RecordReserve must not be negative")
	}
	for _, p := range c.TemplateEnv {
		if _, err := path.Match(p, ""); err != nil || p == "" {
			return fmt.Errorf("dispatch config: TemplateEnv holds %q, which is not a name or glob such as IMAGE_TAG or TEAM_*", p)
		}
	}
	return nil
}

// Dispatcher claims due flow runs of a pool and starts them on a Backend.
// It keeps no state between passes: every pass reads what it needs from
// Prefect, so any number of dispatchers can run at once.
type Dispatcher struct {
	cfg     Config
	api     API
	backend Backend
	log     *slog.Logger
	// reads reuses what passes read for Config.ReadCacheTTL.
	reads *cachedReads
	// env answers the templates' {{ $NAME }} placeholders.
	env templateEnv
	// schemas remembers the compiled variables schemas runs are validated
	// against.
	schemas template.Schemas
	// beats remembers, per pool, when this dispatcher last sent a worker
	// heartbeat, so that passes closer together than half the heartbeat
	// interval do not each send one.
	beatsMu sync.Mutex
	beats   map[string]time.Time
	// dieAfterClaim, set only by tests, makes a pass stop dead after a run's
	// claim is confirmed, as a dispatcher killed between claim and submit.
	dieAfterClaim func(flowRunID string) bool
	// dieAfterStart, likewise, as a dispatcher killed after starting a run's
	// job but before recording it.
	dieAfterStart func(flowRunID string) bool
}

// New returns a Dispatcher. logger receives one structured line per decision.
func New(cfg Config, api API, backend Backend, logger *slog.Logger) (*Dispatcher, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	cfg.fillDefaults()
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	// A shutdown cuts reads off mid-flight, one per run: those warnings go
	// to debug, and the loop that ends says so once (see Serve).
	logger = quietOnShutdown(logger)
	env := templateEnv{lookup: cfg.LookupEnv, allow: cfg.TemplateEnv}
	for _, k := range []string{prefect.EnvAPIKey, prefect.EnvAuthString} {
		if v := strings.TrimSpace(cfg.SettingsEnv[k]); v != "" {
			env.secrets = append(env.secrets, v)
		}
	}
	return &Dispatcher{cfg: cfg, api: api, backend: backend, log: logger, env: env,
		reads: newCachedReads(api, cfg.ReadCacheTTL, cfg.Now), beats: map[string]time.Time{}}, nil
}

// Outcome is what a pass did with one flow run.
type Outcome string

// The outcomes of a run in a pass.
const (
	// Submitted: claimed, started and recorded.
	Submitted Outcome = "submitted"
	// LostClaim: another dispatcher claimed the run first (ABORT).
	LostClaim Outcome = "lost-claim"
	// Rejected: orchestration moved the run elsewhere, e.g. to
	// AwaitingConcurrencySlot under a deployment concurrency limit.
	Rejected Outcome = "rejected"
	// Deferred: the run is not to start now (paused deployment); it stays Scheduled.
	Deferred Outcome = "deferred"
	// Cancelled: the run's deployment no longer exists; the run was cancelled.
	Cancelled Outcome = "cancelled"
	// Crashed: the run was claimed but could not be started; it is now
	// Crashed with the reason.
	Crashed Outcome = "crashed"
	// Errored: something failed before the claim; the run is untouched and a
	// later pass will try again.
	Errored Outcome = "errored"
	// Skipped: the pass's context ended before the run was claimed; the run
	// is untouched and a later pass will take it.
	Skipped Outcome = "skipped"
	// NotDue: a run asked for by id (DispatchRuns) is scheduled later than
	// the lookahead; it stays Scheduled and RunResult.DueAt says when to
	// wake again.
	NotDue Outcome = "not-due"
	// NotScheduled: a run asked for by id is no longer a Scheduled run of the
	// pool (already claimed, cancelled, deleted or moved); nothing was done.
	NotScheduled Outcome = "not-scheduled"
)

// Outcomes returns every Outcome, in the order above, for reports.
func Outcomes() []Outcome {
	return []Outcome{Submitted, LostClaim, Rejected, Deferred, Cancelled, Crashed, Errored, Skipped, NotDue, NotScheduled}
}

// RunResult reports one flow run of a pass.
type RunResult struct {
	FlowRunID   string
	FlowRunName string
	Outcome     Outcome
	// InfrastructureID is the backend's id for a submitted run.
	InfrastructureID string
	// DueAt is when the run was scheduled to start; SubmittedAt when its
	// infrastructure was started.
	DueAt, SubmittedAt time.Time
	// Err is why a run was crashed or errored.
	Err error
}

// PassResult reports one pass over a pool.
type PassResult struct {
	Pool string
	// Polled counts the distinct due runs seen.
	Polled int
	Runs   []RunResult
	// upcoming, set by a pass that looked ahead (see passOptions), is the
	// due time of the earliest Scheduled run it saw that was not yet due;
	// upcomingKnown says whether the look-ahead saw every such run.
	upcoming      time.Time
	upcomingKnown bool
}

// Count returns how many runs of the pass had the outcome.
func (r PassResult) Count(o Outcome) int {
	return countWhere(r.Runs, func(run RunResult) bool { return run.Outcome == o })
}

// countWhere counts the items for which match is true.
func countWhere[T any](items []T, match func(T) bool) int {
	n := 0
	for _, it := range items {
		if match(it) {
			n++
		}
	}
	return n
}

// RunOnce makes one pass over the pool: heartbeat, then every due run is
// claimed, rendered, submitted and recorded, up to MaxConcurrentSubmissions
// at a time. It returns an error only when the pass could not start (the pool
// cannot be read); per-run failures are in the result and in each run's logs.
// When ctx ends, no new run is claimed, and runs already claimed are still
// recorded (or crashed with the reason) within RecordTimeout. When ctx has a
// deadline, claiming stops SubmitReserve+RecordReserve before it and every
// claimed run is recorded before it (see Config.SubmitReserve).
func (d *Dispatcher) RunOnce(ctx context.Context, pool string) (PassResult, error) {
	return d.runOnce(ctx, pool, 0)
}

// runOnce is RunOnce, polling also for runs due up to horizon after the
// lookahead window: those are not taken, but the earliest of them is
// reported (PassResult.upcoming), so Serve knows when to wake without
// polling again. When that wider page is full it may hide due runs of
// lower-priority queues (the server orders by queue priority, then due
// time), so the pass polls again without the horizon and reports nothing.
func (d *Dispatcher) runOnce(ctx context.Context, pool string, horizon time.Duration) (PassResult, error) {
	res := PassResult{Pool: pool}
	ctx, p, cancel, err := d.startPass(ctx, pool)
	defer cancel()
	if err != nil || p == nil {
		return res, err
	}
	l := newLauncher(ctx, d.cfg.MaxConcurrentSubmissions)
	seen := map[string]bool{}
	const pageSize = 200 // the most the server returns at once
	res.upcomingKnown = horizon > 0
poll:
	for ctx.Err() == nil {
		window := d.cfg.Now().Add(d.cfg.Lookahead)
		before := window.Add(horizon)
		due, err := d.api.GetScheduledFlowRuns(ctx, pool, prefect.ScheduledRunsRequest{
			WorkQueueNames: d.cfg.WorkQueues, ScheduledBefore: &before, Limit: pageSize,
		})
		if err != nil {
			if ctx.Err() == nil {
				res.Runs = l.wait()
				p.end(ctx)
				return res, fmt.Errorf("get scheduled flow runs of pool %q: %w", pool, err)
			}
			break
		}
		fresh := 0
		for _, sr := range spread(due) {
			if seen[sr.FlowRun.ID] {
				continue
			}
			if at := sr.FlowRun.DueTime(); at.After(window) {
				if res.upcoming.IsZero() || at.Before(res.upcoming) {
					res.upcoming = at
				}
				continue
			}
			if d.cfg.MaxRunsPerPass > 0 && len(seen) >= d.cfg.MaxRunsPerPass {
				break poll
			}
			seen[sr.FlowRun.ID] = true
			fresh++
			if !l.launch(func(ctx context.Context) RunResult { return p.handle(ctx, sr.FlowRun) }) {
				break poll
			}
		}
		full := len(due) == pageSize
		if full && horizon > 0 {
			horizon, res.upcomingKnown, res.upcoming = 0, false, time.Time{}
			l.settle()
			continue
		}
		// A full page may hide more due runs; runs already seen (claimed, or
		// left Scheduled by a rejection) come back, so stop when none is new.
		if !full || fresh == 0 {
			break
		}
		// Let this page's claims land before asking again, so claimed runs
		// drop out of the next page.
		l.settle()
	}
	res.Runs = l.wait()
	res.Polled = len(seen)
	p.end(ctx)
	return res, nil
}

// spread gives this dispatcher its own order of a page of due runs, so that
// dispatchers polling the same pool at once mostly claim different runs
// instead of racing for the same ones (each lost race costs a request). The
// server orders a page by queue priority, then due time; the order of
// queues is kept and runs are shuffled within each queue's stretch: all of
// them are due within the lookahead.
func spread(page []prefect.ScheduledRun) []prefect.ScheduledRun {
	out := slices.Clone(page)
	for i := 0; i < len(out); {
		j := i + 1
		for j < len(out) && out[j].WorkQueueID == out[i].WorkQueueID {
			j++
		}
		seg := out[i:j]
		rand.Shuffle(len(seg), func(a, b int) { seg[a], seg[b] = seg[b], seg[a] })
		i = j
	}
	return out
}

// startPass reads the pool and heartbeats for it. It bounds ctx by the
// claim deadline when ctx has a deadline (see Config.SubmitReserve). A nil
// pass with a nil error means there is nothing to do (the pool is paused).
func (d *Dispatcher) startPass(ctx context.Context, pool string) (context.Context, *pass, context.CancelFunc, error) {
	cancel := context.CancelFunc(func() {})
	hard, bounded := ctx.Deadline()
	if bounded {
		ctx, cancel = context.WithDeadline(ctx, hard.Add(-d.cfg.SubmitReserve-d.cfg.RecordReserve))
	}
	d.reads.sweep()
	wp, err := d.reads.ReadWorkPool(ctx, pool)
	if err != nil {
		if prefect.IsNotFound(err) {
			return ctx, nil, cancel, fmt.Errorf("work pool %q does not exist in Prefect at this API URL: create it (prefect work-pool create, or the prefect_work_pool Terraform resource) or fix the pool name: %w", pool, err)
		}
		return ctx, nil, cancel, fmt.Errorf("read work pool %q: %w", pool, err)
	}
	d.heartbeat(ctx, pool)
	if wp.IsPaused {
		d.log.InfoContext(ctx, "work pool is paused; nothing dispatched", slog.String("work_pool", pool))
		return ctx, nil, cancel, nil
	}
	p := newPass(d, wp)
	if bounded {
		p.deadline = hard
	}
	return ctx, p, cancel, nil
}

// heartbeat tells Prefect this dispatcher is serving the pool (the pool
// shows READY and the worker online), at most once per half heartbeat
// interval: Prefect marks a worker offline only after three missed.
func (d *Dispatcher) heartbeat(ctx context.Context, pool string) {
	now := d.cfg.Now()
	d.beatsMu.Lock()
	last, ok := d.beats[pool]
	d.beatsMu.Unlock()
	if ok && now.Sub(last) < d.cfg.HeartbeatInterval/2 && now.After(last) {
		return
	}
	if err := d.api.WorkerHeartbeat(ctx, pool, d.cfg.WorkerName, d.cfg.HeartbeatInterval); err != nil {
		d.log.WarnContext(ctx, "worker heartbeat failed", slog.String("work_pool", pool), slog.String("error", err.Error()))
		return
	}
	d.beatsMu.Lock()
	d.beats[pool] = now
	d.beatsMu.Unlock()
}

// launcher runs the handling of runs, at most n at a time, and collects
// their results.
type launcher struct {
	ctx  context.Context
	sem  chan struct{}
	wg   sync.WaitGroup
	mu   sync.Mutex
	runs []RunResult
}

func newLauncher(ctx context.Context, n int) *launcher {
	return &launcher{ctx: ctx, sem: make(chan struct{}, n)}
}

// launch starts handle when a slot is free; false means ctx ended first
// and nothing was started.
func (l *launcher) launch(handle func(context.Context) RunResult) bool {
	select {
	case l.sem <- struct{}{}:
	case <-l.ctx.Done():
		return false
	}
	l.wg.Go(func() {
		defer func() { <-l.sem }()
		r := handle(l.ctx)
		l.mu.Lock()
		l.runs = append(l.runs, r)
		l.mu.Unlock()
	})
	return true
}

// settle waits for every launched run.
func (l *launcher) settle() { l.wg.Wait() }

// wait waits for every launched run and returns their results.
func (l *launcher) wait() []RunResult {
	l.wg.Wait()
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.runs
}
