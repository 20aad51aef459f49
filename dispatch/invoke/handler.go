package invoke

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/pushpool/pushpool/dispatch"
	"github.com/pushpool/pushpool/dispatch/prefect"
)

// API is the part of the Prefect API a Handler reads itself; the engines do
// the rest.
type API interface {
	GetScheduledFlowRuns(ctx context.Context, pool string, in prefect.ScheduledRunsRequest) ([]prefect.ScheduledRun, error)
	ReadFlowRun(ctx context.Context, id string) (prefect.FlowRun, error)
}

// Queue is the platform's queue, for fan-out shards and delayed wake-ups.
type Queue interface {
	// Send delivers m at time at, or at once when at is not after now.
	Send(ctx context.Context, m Message, at time.Time) error
	// MaxDelay is the furthest ahead Send can deliver (SQS: 15 minutes).
	MaxDelay() time.Duration
}

// Engine is one pool's dispatcher and reconciler.
type Engine struct {
	Dispatcher *dispatch.Dispatcher
	Reconciler *dispatch.Reconciler
}

// Connect builds the engine of a pool. Its backend depends on the pool's
// type, so the Handler calls it once per pool, on first use.
type Connect func(ctx context.Context, pool string) (Engine, error)

// Config configures a Handler.
type Config struct {
	// Pools are the work pools this function serves.
	Pools []string
	// ShardSize is how many due runs one invocation dispatches itself; a
	// tick sends the rest to the queue in shards of this size. Zero means 20.
	ShardSize int
	// Lookahead is how far ahead of their due time runs may be claimed (the
	// dispatchers' Lookahead). Zero is zero: runs are claimed once due.
	Lookahead time.Duration
	// WakeHorizon is how far ahead a tick looks for runs to wake on time:
	// the tick interval (plus a margin). Zero means 90s.
	WakeHorizon time.Duration
	// Queue carries shards and wake-ups; nil means every due run is
	// dispatched by the tick itself and none is woken early.
	Queue Queue
	// WebhookSecret verifies webhooks; MaxAge bounds their signature time
	// (zero means DefaultMaxAge).
	WebhookSecret []byte
	MaxAge        time.Duration
	// Now is the clock; nil means time.Now.
	Now func() time.Time
}

// Handler serves one function's triggers. It is safe for concurrent use and
// meant to live as long as the function's execution environment.
type Handler struct {
	cfg     Config
	api     API
	connect Connect
	log     *slog.Logger

	mu      sync.Mutex
	engines map[string]Engine
}

// New returns a Handler.
func New(cfg Config, api API, connect Connect, logger *slog.Logger) (*Handler, error) {
	if len(cfg.Pools) == 0 {
		return nil, errors.New("invoke: no work pools configured: set PUSHPOOL_POOLS to a comma-separated list of pool names")
	}
	if cfg.ShardSize < 0 {
		return nil, fmt.Errorf("invoke: shard size is %d; it must be positive", cfg.ShardSize)
	}
	if cfg.ShardSize == 0 {
		cfg.ShardSize = 20
	}
	if cfg.WakeHorizon == 0 {
		cfg.WakeHorizon = 90 * time.Second
	}
	if cfg.MaxAge == 0 {
		cfg.MaxAge = DefaultMaxAge
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	return &Handler{cfg: cfg, api: api, connect: connect, log: logger, engines: map[string]Engine{}}, nil
}

// engine returns the pool's engine, connecting it on first use. The lock is
// not held while connecting (a network call): two first uses of one pool at
// once both connect, and the first stored is kept.
func (h *Handler) engine(ctx context.Context, pool string) (Engine, error) {
	h.mu.Lock()
	e, ok := h.engines[pool]
	h.mu.Unlock()
	if ok {
		return e, nil
	}
	e, err := h.connect(ctx, pool)
	if err != nil {
		return Engine{}, err
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	if first, ok := h.engines[pool]; ok {
		return first, nil
	}
	h.engines[pool] = e
	return e, nil
}

func (h *Handler) serves(pool string) bool { return slices.Contains(h.cfg.Pools, pool) }

// PoolTick reports what a tick did for one pool.
type PoolTick struct {
	Pool string
	// Dispatch is the pass over the runs this invocation kept.
	Dispatch dispatch.PassResult
	// Shards is how many fan-out messages were sent, holding Fanned runs.
	Shards, Fanned int
	// Woken is how many runs due before the next tick got a wake-up.
	Woken     int
	Reconcile dispatch.ReconcileResult
	// Err is why the pool could not be served this tick.
	Err error
}

// TickResult reports a tick.
type TickResult struct{ Pools []PoolTick }

// Err joins the pools' errors.
func (r TickResult) Err() error {
	var errs []error
	for _, p := range r.Pools {
		if p.Err != nil {
			errs = append(errs, fmt.Errorf("pool %q: %w", p.Pool, p.Err))
		}
	}
	return errors.Join(errs...)
}

// Tick serves every configured pool once: it dispatches up to ShardSize due
// runs, sends the rest to the queue in shards, schedules a wake-up at the
// due time of each run due before the next tick, and reconciles the pool.
// Pools are served concurrently; one pool's failure does not stop the
// others. The result lists them in configuration order.
func (h *Handler) Tick(ctx context.Context) TickResult {
	res := TickResult{Pools: make([]PoolTick, len(h.cfg.Pools))}
	var wg sync.WaitGroup
	for i, pool := range h.cfg.Pools {
		wg.Go(func() { res.Pools[i] = h.tickPool(ctx, pool) })
	}
	wg.Wait()
	return res
}

// maxConcurrentSends bounds the queue messages a tick sends at once.
const maxConcurrentSends = 16

func (h *Handler) tickPool(ctx context.Context, pool string) PoolTick {
	out := PoolTick{Pool: pool}
	e, err := h.engine(ctx, pool)
	if err != nil {
		out.Err = err
		return out
	}
	log := h.log.With(slog.String("work_pool", pool))
	if h.cfg.Queue == nil {
		out.Dispatch, out.Err = e.Dispatcher.RunOnce(ctx, pool)
	} else {
		out.Err = h.fanOut(ctx, e, pool, &out, log)
	}
	// Of all the invocations and dispatchers serving the pool, the one
	// holding its reconcile lease reconciles it (Reconciler.RunLeased).
	rres, _, err := e.Reconciler.RunLeased(ctx, pool)
	out.Reconcile = rres
	if err != nil {
		out.Err = errors.Join(out.Err, err)
	}
	return out
}

// fanOut splits the pool's runs due now and soon between this invocation,
// fan-out shards and wake-ups.
func (h *Handler) fanOut(ctx context.Context, e Engine, pool string, out *PoolTick, log *slog.Logger) error {
	now := h.cfg.Now()
	claimBy := now.Add(h.cfg.Lookahead)
	before := now.Add(h.cfg.WakeHorizon)
	if before.Before(claimBy) {
		before = claimBy
	}
	scheduled, err := h.api.GetScheduledFlowRuns(ctx, pool, prefect.ScheduledRunsRequest{ScheduledBefore: &before, Limit: 200})
	if err != nil {
		return fmt.Errorf("get scheduled flow runs of pool %q: %w", pool, err)
	}
	var due, later []prefect.FlowRun
	for _, sr := range scheduled {
		if sr.FlowRun.DueTime().After(claimBy) {
			later = append(later, sr.FlowRun)
		} else {
			due = append(due, sr.FlowRun)
		}
	}
	keep := due
	if len(due) > h.cfg.ShardSize {
		keep = due[:h.cfg.ShardSize:h.cfg.ShardSize] // appends below must not write into due
		for rest := due[h.cfg.ShardSize:]; len(rest) > 0; {
			n := min(h.cfg.ShardSize, len(rest))
			shard := rest[:n]
			rest = rest[n:]
			if err := h.cfg.Queue.Send(ctx, Message{Pool: pool, FlowRunIDs: ids(shard)}, time.Time{}); err != nil {
				// The runs are still Scheduled: keep them here rather than
				// wait for the next tick.
				log.WarnContext(ctx, "could not fan out a shard; dispatching it here", slog.Int("runs", len(shard)), slog.String("error", err.Error()))
				keep = append(keep, shard...)
				continue
			}
			out.Shards++
			out.Fanned += len(shard)
		}
	}
	out.Woken = h.wakeAll(ctx, pool, later, now, log)
	// A full page may hide more due runs: a plain pass over the pool takes
	// whatever the page did not show.
	if len(scheduled) == 200 {
		res, err := e.Dispatcher.RunOnce(ctx, pool)
		out.Dispatch = res
		return err
	}
	// The runs kept here are dispatched as polled, not read again.
	wakes := make([]dispatch.Wake, len(keep))
	for i := range keep {
		wakes[i] = dispatch.Wake{FlowRunID: keep[i].ID, Run: &keep[i]}
	}
	res, err := e.Dispatcher.DispatchRuns(ctx, pool, wakes)
	out.Dispatch = res
	return err
}

// wakeAll sends a wake-up at its due time for each run the queue can delay
// that far, up to maxConcurrentSends at once, and returns how many were
// sent. Runs beyond the queue's longest delay, and runs whose wake-up could
// not be sent, are left to a later tick.
func (h *Handler) wakeAll(ctx context.Context, pool string, runs []prefect.FlowRun, now time.Time, log *slog.Logger) int {
	var (
		wg   sync.WaitGroup
		sem  = make(chan struct{}, maxConcurrentSends)
		sent atomic.Int64
	)
	for _, r := range runs {
		if r.DueTime().Sub(now) > h.cfg.Queue.MaxDelay() {
			continue // beyond what the queue can delay (or it cannot delay): a later tick takes it
		}
		sem <- struct{}{}
		wg.Go(func() {
			defer func() { <-sem }()
			if err := h.wakeAt(ctx, pool, r.ID, r.DueTime(), nil); err != nil {
				log.WarnContext(ctx, "could not schedule a wake-up; the next tick will take the run", slog.String("flow_run_id", r.ID), slog.String("error", err.Error()))
				return
			}
			sent.Add(1)
		})
	}
	wg.Wait()
	return int(sent.Load())
}

// wakeAt sends a wake-up for a run due at due, if the queue can delay that
// far; further runs are left to a later tick.
func (h *Handler) wakeAt(ctx context.Context, pool, flowRunID string, due time.Time, t *dispatch.Trigger) error {
	if h.cfg.Queue == nil {
		return errors.New("no queue configured for wake-ups")
	}
	if due.Sub(h.cfg.Now()) > h.cfg.Queue.MaxDelay() {
		return fmt.Errorf("flow run %s is due at %s, beyond the queue's longest delay (%v); a later tick will wake it", flowRunID, due.UTC().Format(time.RFC3339), h.cfg.Queue.MaxDelay())
	}
	return h.cfg.Queue.Send(ctx, Message{Pool: pool, FlowRunIDs: []string{flowRunID}, Trigger: triggerJSON(t)}, due)
}

// HandleMessage dispatches the runs a queue message names. Runs that are
// not due yet (an early delivery) get a new wake-up at their due time. The
// error is non-nil only when the message should be delivered again: the
// pool could not be served, or a run failed before its claim and is still
// Scheduled. A malformed message is an error too, so the platform moves it
// to the dead-letter queue after its retries.
func (h *Handler) HandleMessage(ctx context.Context, m Message) (dispatch.PassResult, error) {
	if !h.serves(m.Pool) {
		return dispatch.PassResult{Pool: m.Pool}, fmt.Errorf("queue message for work pool %q, which this function does not serve (PUSHPOOL_POOLS is %v): point the queue at the right function or add the pool", m.Pool, h.cfg.Pools)
	}
	e, err := h.engine(ctx, m.Pool)
	if err != nil {
		return dispatch.PassResult{Pool: m.Pool}, err
	}
	wakes := make([]dispatch.Wake, len(m.FlowRunIDs))
	for i, id := range m.FlowRunIDs {
		wakes[i] = dispatch.Wake{FlowRunID: id, Trigger: m.Trigger.trigger()}
	}
	res, err := e.Dispatcher.DispatchRuns(ctx, m.Pool, wakes)
	if err != nil {
		return res, err
	}
	var retry []error
	for _, r := range res.Runs {
		switch r.Outcome {
		case dispatch.NotDue:
			if err := h.wakeAt(ctx, m.Pool, r.FlowRunID, r.DueAt, m.Trigger.trigger()); err != nil {
				h.log.InfoContext(ctx, "woken early; leaving the run to a later tick", slog.String("flow_run_id", r.FlowRunID), slog.String("reason", err.Error()))
			}
		case dispatch.Errored, dispatch.Skipped:
			retry = append(retry, fmt.Errorf("flow run %s: %s: %w", r.FlowRunID, r.Outcome, r.Err))
		}
	}
	return res, errors.Join(retry...)
}

// WebhookResult is what a webhook did, for the reply body.
type WebhookResult struct {
	FlowRunID string `json:"flow_run_id"`
	Pool      string `json:"work_pool,omitempty"`
	Outcome   string `json:"outcome"`
	// WakeAt is when a run announced before it is due will be woken.
	WakeAt string `json:"wake_at,omitempty"`
	Detail string `json:"detail,omitempty"`
}

// Webhook verifies a signed request and dispatches the flow run it
// announces, or wakes it at its due time. An error wrapping ErrUnauthorized
// means 401 and nothing was done; other errors are bad requests (400) or
// failures to retry (the caller answers 5xx when the result's Outcome is
// "error").
func (h *Handler) Webhook(ctx context.Context, signature string, body []byte) (WebhookResult, error) {
	if err := Verify(h.cfg.WebhookSecret, body, signature, h.cfg.Now(), h.cfg.MaxAge); err != nil {
		return WebhookResult{}, err
	}
	a, err := ParseAnnouncement(body)
	if err != nil {
		return WebhookResult{}, err
	}
	out := WebhookResult{FlowRunID: a.FlowRunID}
	run, err := h.api.ReadFlowRun(ctx, a.FlowRunID)
	if err != nil {
		if prefect.IsNotFound(err) {
			out.Outcome, out.Detail = string(dispatch.NotScheduled), "no such flow run"
			return out, nil
		}
		out.Outcome = "error"
		return out, fmt.Errorf("read flow run %s: %w", a.FlowRunID, err)
	}
	pool := ""
	if run.WorkPoolName != nil {
		pool = *run.WorkPoolName
	}
	out.Pool = pool
	if !h.serves(pool) {
		out.Outcome, out.Detail = "ignored", fmt.Sprintf("flow run is in work pool %q, which this function does not serve", pool)
		return out, nil
	}
	e, err := h.engine(ctx, pool)
	if err != nil {
		out.Outcome = "error"
		return out, err
	}
	t := a.Trigger
	res, err := e.Dispatcher.DispatchRuns(ctx, pool, []dispatch.Wake{{FlowRunID: a.FlowRunID, Trigger: t.trigger()}})
	if err != nil {
		out.Outcome = "error"
		return out, err
	}
	if len(res.Runs) == 0 {
		out.Outcome = string(dispatch.Deferred)
		return out, nil
	}
	r := res.Runs[0]
	out.Outcome = string(r.Outcome)
	if r.Err != nil {
		out.Detail = r.Err.Error()
	}
	if r.Outcome == dispatch.NotDue {
		if err := h.wakeAt(ctx, pool, r.FlowRunID, r.DueAt, t.trigger()); err != nil {
			out.Detail = err.Error()
		} else {
			out.WakeAt = r.DueAt.UTC().Format(time.RFC3339Nano)
		}
	}
	return out, nil
}

// Observe applies a pushed infrastructure event (ECS task state change) to
// its flow run through the reconciler of the run's pool. Events about runs
// of pools this function does not serve are ignored.
func (h *Handler) Observe(ctx context.Context, ev dispatch.InfraEvent) (dispatch.RunCheck, bool, error) {
	run, err := h.api.ReadFlowRun(ctx, ev.FlowRunID)
	if prefect.IsNotFound(err) {
		return dispatch.RunCheck{}, false, nil
	}
	if err != nil {
		return dispatch.RunCheck{}, false, fmt.Errorf("read flow run %s for an event of infrastructure %s: %w", ev.FlowRunID, ev.InfrastructureID, err)
	}
	if run.WorkPoolName == nil || !h.serves(*run.WorkPoolName) {
		return dispatch.RunCheck{}, false, nil
	}
	e, err := h.engine(ctx, *run.WorkPoolName)
	if err != nil {
		return dispatch.RunCheck{}, false, err
	}
	return e.Reconciler.Observe(ctx, ev)
}

func ids(runs []prefect.FlowRun) []string {
	out := make([]string, len(runs))
	for i, r := range runs {
		out[i] = r.ID
	}
	return out
}

// WebhookReply is the HTTP answer every platform gives a Webhook call, and
// logs it: 401 when the signature failed, 502 when Prefect failed (the
// sender may retry), 400 for a body that announces no run, else 200 with
// the result.
func WebhookReply(ctx context.Context, log *slog.Logger, res WebhookResult, err error) (status int, body any) {
	switch {
	case errors.Is(err, ErrUnauthorized):
		log.WarnContext(ctx, "webhook refused", slog.String("reason", err.Error()))
		return http.StatusUnauthorized, map[string]string{"error": err.Error()}
	case err != nil && res.Outcome == "error":
		log.ErrorContext(ctx, "webhook failed", slog.String("flow_run_id", res.FlowRunID), slog.String("error", err.Error()))
		return http.StatusBadGateway, map[string]string{"error": err.Error()}
	case err != nil:
		return http.StatusBadRequest, map[string]string{"error": err.Error()}
	}
	log.InfoContext(ctx, "webhook", slog.String("flow_run_id", res.FlowRunID), slog.String("outcome", res.Outcome), slog.String("wake_at", res.WakeAt))
	return http.StatusOK, res
}
