package main

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"slices"
	"strings"
	"sync"
	"time"
)

// latenessVariant is one contender with one prefetch setting.
type latenessVariant struct {
	name      string
	contender contender
	prefetch  *time.Duration // nil: the contender's default
	label     string
}

// latenessResult is how early or late one variant claimed runs due at
// scattered times, and when it recorded their infrastructure.
type latenessResult struct {
	name string
	// claim is claim − due; start is infrastructure recorded − due.
	// Negative is early (prefetch).
	claim, start      spread
	runs              int
	claimed, recorded int
	notes             []string
}

// latenessConfig sizes the lateness scenario.
type latenessConfig struct {
	runs int
	// lead is from the moment every contender polled to the earliest due
	// time; spread is how long the due times scatter over after it.
	lead, spread time.Duration
	// tail is how long after the last due time a run may still be claimed.
	tail time.Duration
	seed uint64
}

// runLateness starts every variant on a pool of its own, all at once (the
// load is light: a few runs per second in all), then creates the same
// runs.runs due times, scattered at random over cfg.spread, in each pool,
// and measures claim − due and recorded − due from the server's states.
func runLateness(ctx context.Context, s *stack, variants []latenessVariant, cfg latenessConfig) ([]latenessResult, error) {
	type live struct {
		v      latenessVariant
		fx     fixture
		sess   *session
		opened chan struct{}
	}
	lives := make([]*live, len(variants))
	pctx, cancel := context.WithCancel(ctx)
	defer cancel()
	defer func() {
		for _, l := range lives {
			if l != nil && l.sess != nil {
				l.sess.proc.stop(20 * time.Second)
				if l.sess.close != nil {
					l.sess.close()
				}
			}
		}
	}()
	for i, v := range variants {
		fx, err := s.newFixture(ctx, v.label)
		if err != nil {
			return nil, err
		}
		pp, err := newCountingProxy(pctx, "prefect", strings.TrimSuffix(s.srv.URL, "/api"), classifyPrefect, s.log)
		if err != nil {
			return nil, err
		}
		ap, err := newCountingProxy(pctx, "aws", s.moto.URL, classifyAWS, s.log)
		if err != nil {
			return nil, err
		}
		l := &live{v: v, fx: fx, opened: make(chan struct{})}
		pp.onFirst(func(key string) bool { return key == pollRoute }, func() { close(l.opened) })
		if l.sess, err = v.contender.start(ctx, s, launch{fx: fx, prefectURL: pp.url + "/api", awsURL: ap.url, prefetch: v.prefetch, label: v.label}); err != nil {
			return nil, err
		}
		lives[i] = l
	}
	for _, l := range lives {
		if err := waitOpened(ctx, l.sess, l.opened, 2*time.Minute); err != nil {
			return nil, fmt.Errorf("%s: %w", l.v.name, err)
		}
	}

	offsets := dueOffsets(cfg.runs, cfg.spread, cfg.seed)
	base := time.Now().Add(cfg.lead)
	dues := make([]*time.Time, len(offsets))
	for i, o := range offsets {
		at := base.Add(o)
		dues[i] = &at
	}
	s.log.Info("lateness: runs due", "variants", len(variants), "runs_each", cfg.runs, "from", base.Format(time.TimeOnly), "over", cfg.spread)
	errs := make([]error, len(lives))
	var wg sync.WaitGroup
	for i, l := range lives {
		wg.Go(func() { _, errs[i] = s.createRuns(ctx, l.fx, dues, 4) })
	}
	wg.Wait()
	if err := errors.Join(errs...); err != nil {
		return nil, err
	}

	deadline := base.Add(cfg.spread + cfg.tail)
	for time.Now().Before(deadline) {
		all := true
		for _, l := range lives {
			if l.sess.proc.exited() {
				return nil, fmt.Errorf("%s: %w", l.v.name, l.sess.proc.exitError())
			}
			n, err := s.db.recorded(ctx, l.fx.dep.ID)
			if err != nil {
				return nil, err
			}
			all = all && n >= cfg.runs
		}
		if all {
			break
		}
		select {
		case <-ctx.Done():
			return nil, ctx.Err()
		case <-time.After(time.Second):
		}
	}

	out := make([]latenessResult, len(lives))
	for i, l := range lives {
		runs, err := s.db.timelines(ctx, l.fx.dep.ID)
		if err != nil {
			return nil, err
		}
		out[i] = lateness(l.v.name, runs)
	}
	return out, nil
}

// waitOpened waits for a contender's first poll, failing when its process
// exits first or timeout passes.
func waitOpened(ctx context.Context, sess *session, opened <-chan struct{}, timeout time.Duration) error {
	t := time.NewTimer(timeout)
	defer t.Stop()
	select {
	case <-opened:
		return nil
	case <-sess.proc.done:
		return sess.proc.exitError()
	case <-t.C:
		return fmt.Errorf("no poll for due runs within %s\n--- last lines of its log ---\n%s", timeout, sess.proc.logTail(30))
	case <-ctx.Done():
		return ctx.Err()
	}
}

// dueOffsets returns n offsets drawn uniformly from [0, over) with the
// seed, sorted: the same for every variant.
func dueOffsets(n int, over time.Duration, seed uint64) []time.Duration {
	rng := rand.New(rand.NewPCG(seed, seed^0x9e3779b97f4a7c15))
	out := make([]time.Duration, n)
	for i := range out {
		out[i] = time.Duration(rng.Int64N(int64(over)))
	}
	slices.Sort(out)
	return out
}

// lateness summarises claim − due and recorded − due over runs.
func lateness(name string, runs []runTimes) latenessResult {
	res := latenessResult{name: name, runs: len(runs)}
	var claims, starts []time.Duration
	for _, r := range runs {
		if !r.claimed.IsZero() {
			claims = append(claims, r.claimed.Sub(r.due))
		}
		if !r.recorded.IsZero() {
			starts = append(starts, r.recorded.Sub(r.due))
		}
	}
	res.claimed, res.recorded = len(claims), len(starts)
	res.claim, res.start = summarize(claims), summarize(starts)
	if res.recorded < res.runs {
		res.notes = append(res.notes, fmt.Sprintf("%d of %d runs recorded by the end", res.recorded, res.runs))
	}
	return res
}
