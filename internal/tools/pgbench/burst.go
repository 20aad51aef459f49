package main

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"time"
)

// pollRoute is the request that opens a contender's burst window: its
// first query for due runs. What came before it is startup.
const pollRoute = "POST /work_pools/{name}/get_scheduled_flow_runs"

// burstResult is one contender's figures for one burst.
type burstResult struct {
	name string
	// variant is a ceiling's: what the trivial client did besides claiming
	// and recording.
	variant ceilingVariant
	// rounds is the runs/s of every round, in the order they ran, when the
	// result is the median of several (see runRounds).
	rounds []float64
	span   burstSpan
	// firstClaimAfter is from the contender's start (its process, or the
	// ceiling client's first request) to the first claim.
	firstClaimAfter time.Duration
	// prefect and aws are the requests of the burst window: from the first
	// poll to the moment, after the last infrastructure_pid was recorded,
	// when the contender had been quiet for quietFor (its log flushes and
	// the reconcile pass that follows a dispatch pass included).
	prefect, aws tally
	// startupPrefect and startupAWS are the requests before the window.
	startupPrefect, startupAWS tally
	// cpuWindow is the CPU time of the contender's process tree in the
	// window; cpuTotal and peakRSS are its whole life's (wait4 rusage).
	cpuWindow, cpuTotal time.Duration
	peakRSS             int64
	measuredCPU         bool
	// servers is what the shared servers (Prefect, PostgreSQL, moto) used
	// in the window; measuredServers is false when it could not be read.
	servers         serverCPU
	measuredServers bool
	notes           []string
}

// runsPerSecond is the burst's throughput.
func (r burstResult) runsPerSecond() float64 { return r.span.throughput() }

// perRun divides n by the burst's runs.
func (r burstResult) perRun(n int64) float64 {
	if r.span.runs == 0 {
		return 0
	}
	return float64(n) / float64(r.span.runs)
}

// burstConfig sizes a burst.
type burstConfig struct {
	runs        int
	createConc  int
	timeout     time.Duration // for the contender to record every run
	quietFor    time.Duration
	maxQuietFor time.Duration
}

// windowMark is the state of the counters and the CPU clock at one edge
// of the burst window.
type windowMark struct {
	prefect, aws tally
	cpu          time.Duration
	cpuErr       error
	servers      serverCPU
	serversErr   error
}

// runBurst creates cfg.runs runs due at once in a fresh pool, starts the
// contender behind fresh counting proxies, waits until every run's
// infrastructure is recorded (or cfg.timeout), stops it and reads the
// figures.
func runBurst(ctx context.Context, s *stack, c contender, label string, cfg burstConfig) (burstResult, error) {
	res := burstResult{name: c.name, measuredCPU: true}
	pctx, cancelProxies := context.WithCancel(ctx)
	defer cancelProxies()
	fx, _, pp, err := s.newBurst(pctx, label, cfg)
	if err != nil {
		return res, err
	}
	ap, err := newCountingProxy(pctx, "aws", s.moto.URL, classifyAWS, s.log)
	if err != nil {
		return res, err
	}

	var (
		mu    sync.Mutex
		sess  *session
		start windowMark
	)
	mark := func() windowMark {
		prefect, aws := pp.counts.snapshot(), ap.counts.snapshot()
		mu.Lock()
		cur := sess
		mu.Unlock()
		pid := 0
		if cur != nil {
			pid = cur.proc.pid()
		}
		m := s.markCPU(pid)
		m.prefect, m.aws = prefect, aws
		return m
	}
	opened := make(chan struct{})
	pp.onFirst(func(key string) bool { return key == pollRoute }, func() {
		m := mark()
		mu.Lock()
		start = m
		mu.Unlock()
		close(opened)
	})

	s.log.Info("burst", "contender", c.name, "pool", fx.pool, "runs", cfg.runs)
	started, err := c.start(ctx, s, launch{fx: fx, prefectURL: pp.url + "/api", awsURL: ap.url, label: label})
	if err != nil {
		return res, err
	}
	// The hook reads sess from a proxy goroutine. A poll before this
	// (within microseconds of the exec) finds none and counts the
	// process's CPU from zero.
	mu.Lock()
	sess = started
	mu.Unlock()
	if sess.close != nil {
		defer sess.close()
	}
	stopped := false
	defer func() {
		if !stopped {
			sess.proc.stop(10 * time.Second)
		}
	}()

	if sess.drive == nil {
		// A contender that cannot reach Prefect or the pool fails here, not
		// after the burst timeout.
		if err := waitOpened(ctx, sess, opened, 2*time.Minute); err != nil {
			return res, fmt.Errorf("%s: %w", c.name, err)
		}
	}
	done := func(ctx context.Context) (bool, error) {
		n, err := s.db.recorded(ctx, fx.dep.ID)
		return n >= cfg.runs, err
	}
	wctx, cancel := context.WithTimeout(ctx, cfg.timeout)
	defer cancel()
	if err := waitBurst(wctx, sess, done); err != nil {
		if ctx.Err() != nil || !errors.Is(err, context.DeadlineExceeded) {
			return res, fmt.Errorf("%s: %w", c.name, err)
		}
		res.notes = append(res.notes, fmt.Sprintf("not every run was recorded within %s", cfg.timeout))
	}
	waitQuiet(ctx, []*countingProxy{pp, ap}, cfg.quietFor, cfg.maxQuietFor)
	end := mark()
	select {
	case <-opened:
	default:
		return res, fmt.Errorf("%s never asked for the pool's scheduled runs\n--- last lines of its log ---\n%s", c.name, sess.proc.logTail(30))
	}
	mu.Lock()
	first := start
	mu.Unlock()
	u := sess.proc.stop(30 * time.Second)
	stopped = true

	res.prefect, res.aws = end.prefect.minus(first.prefect), end.aws.minus(first.aws)
	res.startupPrefect, res.startupAWS = first.prefect, first.aws
	res.cpuTotal, res.peakRSS = u.cpu, u.peakRSS
	if first.cpuErr != nil || end.cpuErr != nil {
		res.notes = append(res.notes, fmt.Sprintf("window CPU not measured: %v", errors.Join(first.cpuErr, end.cpuErr)))
	} else {
		res.cpuWindow = end.cpu - first.cpu
	}
	res.setServers(first, end)
	if sess.notes != nil {
		res.notes = append(res.notes, sess.notes())
	}
	runs, err := s.db.timelines(ctx, fx.dep.ID)
	if err != nil {
		return res, err
	}
	res.span = span(runs)
	if !res.span.firstClaim.IsZero() {
		res.firstClaimAfter = res.span.firstClaim.Sub(sess.proc.started)
	}
	return res, nil
}

// newBurst makes a fresh pool named after label holding cfg.runs runs due
// at once, and a counting proxy to the Prefect server that lives as long as
// ctx.
func (s *stack) newBurst(ctx context.Context, label string, cfg burstConfig) (fixture, []string, *countingProxy, error) {
	fx, err := s.newFixture(ctx, label)
	if err != nil {
		return fx, nil, nil, err
	}
	ids, err := s.createRuns(ctx, fx, dueNow(cfg.runs), cfg.createConc)
	if err != nil {
		return fx, nil, nil, err
	}
	pp, err := newCountingProxy(ctx, "prefect", strings.TrimSuffix(s.srv.URL, "/api"), classifyPrefect, s.log)
	return fx, ids, pp, err
}

// setServers sets the servers' CPU time between the marks a and b, or a
// note saying why it was not measured.
func (r *burstResult) setServers(a, b windowMark) {
	if err := errors.Join(a.serversErr, b.serversErr); err != nil {
		r.notes = append(r.notes, fmt.Sprintf("servers' CPU not measured: %v", err))
		return
	}
	r.servers, r.measuredServers = b.servers.minus(a.servers), true
}

// waitBurst waits until done reports true: driving the session when it
// is driven (the Lambda's ticks), else polling twice a second. A process
// that exits first is an error.
func waitBurst(ctx context.Context, sess *session, done func(context.Context) (bool, error)) error {
	if sess.drive != nil {
		return sess.drive(ctx, done)
	}
	tick := time.NewTicker(500 * time.Millisecond)
	defer tick.Stop()
	for {
		ok, err := done(ctx)
		if err != nil {
			return err
		}
		if ok {
			return nil
		}
		if sess.proc.exited() {
			return sess.proc.exitError()
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-tick.C:
		}
	}
}

// waitQuiet waits until no proxy has seen a request for quiet, or for at
// most limit.
func waitQuiet(ctx context.Context, proxies []*countingProxy, quiet, limit time.Duration) {
	deadline := time.Now().Add(limit)
	for time.Now().Before(deadline) && ctx.Err() == nil {
		var last time.Time
		for _, p := range proxies {
			if t := p.lastRequest(); t.After(last) {
				last = t
			}
		}
		if time.Since(last) >= quiet {
			return
		}
		time.Sleep(100 * time.Millisecond)
	}
}
