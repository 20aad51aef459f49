package dispatch_test

import (
	"context"
	"fmt"
	"log/slog"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/pushpool/pushpool/dispatch"
	"github.com/pushpool/pushpool/dispatch/prefect"
)

// noopBackend starts nothing: the benchmarks measure the dispatcher and
// Prefect, not a platform.
type noopBackend struct{}

func (noopBackend) Start(_ context.Context, job dispatch.Job) (string, error) {
	return "noop:" + job.Attempt.Token(), nil
}
func (noopBackend) Find(context.Context, dispatch.Job) (string, bool, error) { return "", false, nil }
func (noopBackend) Status(context.Context, string) (dispatch.Status, error) {
	return dispatch.Status{State: dispatch.StateRunning}, nil
}
func (noopBackend) Stop(context.Context, string) error { return nil }

// countingAPI counts the requests a dispatcher makes.
type countingAPI struct {
	dispatch.API
	n atomic.Int64
	// logs counts the CreateLogs requests among n.
	logs atomic.Int64
}

func (c *countingAPI) count() { c.n.Add(1) }

func (c *countingAPI) ReadWorkPool(ctx context.Context, name string) (prefect.WorkPool, error) {
	c.count()
	return c.API.ReadWorkPool(ctx, name)
}
func (c *countingAPI) WorkerHeartbeat(ctx context.Context, pool, name string, d time.Duration) error {
	c.count()
	return c.API.WorkerHeartbeat(ctx, pool, name, d)
}
func (c *countingAPI) GetScheduledFlowRuns(ctx context.Context, pool string, in prefect.ScheduledRunsRequest) ([]prefect.ScheduledRun, error) {
	c.count()
	return c.API.GetScheduledFlowRuns(ctx, pool, in)
}
func (c *countingAPI) ReadDeployment(ctx context.Context, id string) (prefect.Deployment, error) {
	c.count()
	return c.API.ReadDeployment(ctx, id)
}
func (c *countingAPI) ReadFlow(ctx context.Context, id string) (prefect.Flow, error) {
	c.count()
	return c.API.ReadFlow(ctx, id)
}
func (c *countingAPI) SetFlowRunState(ctx context.Context, id string, s prefect.StateCreate, force bool) (prefect.OrchestrationResult, error) {
	c.count()
	return c.API.SetFlowRunState(ctx, id, s, force)
}
func (c *countingAPI) ReadFlowRunStates(ctx context.Context, id string) ([]prefect.State, error) {
	c.count()
	return c.API.ReadFlowRunStates(ctx, id)
}
func (c *countingAPI) UpdateFlowRun(ctx context.Context, id string, in prefect.FlowRunUpdate) error {
	c.count()
	return c.API.UpdateFlowRun(ctx, id, in)
}
func (c *countingAPI) UpdateFlowRunLabels(ctx context.Context, id string, labels map[string]string) error {
	c.count()
	return c.API.UpdateFlowRunLabels(ctx, id, labels)
}
func (c *countingAPI) CreateLogs(ctx context.Context, logs []prefect.Log) error {
	c.count()
	c.logs.Add(1)
	return c.API.CreateLogs(ctx, logs)
}
func (c *countingAPI) ReadFlowRun(ctx context.Context, id string) (prefect.FlowRun, error) {
	c.count()
	return c.API.ReadFlowRun(ctx, id)
}
func (c *countingAPI) FilterFlowRuns(ctx context.Context, f prefect.FlowRunFilter) ([]prefect.FlowRun, error) {
	c.count()
	return c.API.FilterFlowRuns(ctx, f)
}
func (c *countingAPI) ReadEvents(ctx context.Context, f prefect.EventFilter, max int) ([]prefect.Event, error) {
	c.count()
	return c.API.ReadEvents(ctx, f, max)
}
func (c *countingAPI) FilterFlowRunsPage(ctx context.Context, f prefect.FlowRunFilter, offset, limit int) ([]prefect.FlowRun, error) {
	c.count()
	return c.API.FilterFlowRunsPage(ctx, f, offset, limit)
}
func (c *countingAPI) CountEventsByResource(ctx context.Context, f prefect.EventFilter) ([]prefect.EventCount, error) {
	c.count()
	return c.API.CountEventsByResource(ctx, f)
}
func (c *countingAPI) ReadGlobalConcurrencyLimit(ctx context.Context, name string) (prefect.GlobalConcurrencyLimit, error) {
	c.count()
	return c.API.ReadGlobalConcurrencyLimit(ctx, name)
}
func (c *countingAPI) CreateGlobalConcurrencyLimit(ctx context.Context, l prefect.GlobalConcurrencyLimit) (prefect.GlobalConcurrencyLimit, error) {
	c.count()
	return c.API.CreateGlobalConcurrencyLimit(ctx, l)
}
func (c *countingAPI) UpdateGlobalConcurrencyLimit(ctx context.Context, name string, in prefect.GlobalConcurrencyLimitUpdate) error {
	c.count()
	return c.API.UpdateGlobalConcurrencyLimit(ctx, name, in)
}
func (c *countingAPI) IncrementConcurrencySlots(ctx context.Context, names []string, slots int) (bool, []prefect.GlobalConcurrencyLimit, error) {
	c.count()
	return c.API.IncrementConcurrencySlots(ctx, names, slots)
}

// BenchmarkDispatch measures a pass over a batch of due runs with a no-op
// backend: runs claimed, rendered, "submitted" and recorded per second, and
// the Prefect API requests each run costs, with one submission at a time and
// with the default bound of 16. Run creation is outside the timer.
func BenchmarkDispatch(b *testing.B) {
	const batch = 50
	for _, conc := range []int{1, 4, 16} {
		b.Run(fmt.Sprintf("submissions=%d", conc), func(b *testing.B) {
			e := newEnv(b, nil)
			retries := &retryCounter{}
			client, err := prefect.New(prefect.Config{URL: srv.URL, Logger: slog.New(retries)})
			if err != nil {
				b.Fatal(err)
			}
			api := &countingAPI{API: client}
			d, err := dispatch.New(dispatch.Config{WorkerName: "pushpool-bench", MaxConcurrentSubmissions: conc,
				SettingsEnv: map[string]string{"PREFECT_API_URL": srv.URL}}, api, noopBackend{}, nil)
			if err != nil {
				b.Fatal(err)
			}
			var elapsed time.Duration
			submitted := 0
			api.n.Store(0)
			b.ResetTimer()
			for b.Loop() {
				b.StopTimer()
				e.createRuns(batch)
				b.StartTimer()
				start := time.Now()
				res, err := d.RunOnce(b.Context(), e.pool.Name)
				elapsed += time.Since(start)
				if err != nil {
					b.Fatal(err)
				}
				if n := res.Count(dispatch.Submitted); n != batch {
					b.Fatalf("pass submitted %d of %d runs: %+v", n, batch, res.Runs)
				}
				submitted += batch
			}
			b.ReportMetric(float64(submitted)/elapsed.Seconds(), "runs/s")
			b.ReportMetric(float64(api.n.Load())/float64(submitted), "requests/run")
			b.ReportMetric(float64(retries.n.Load())/float64(submitted), "retries/run")
		})
	}
}

// retryCounter counts the client's "retrying" debug lines: requests the
// server answered with 503 (a busy SQLite database) or failed to answer.
type retryCounter struct{ n atomic.Int64 }

func (r *retryCounter) Enabled(context.Context, slog.Level) bool { return true }
func (r *retryCounter) Handle(_ context.Context, rec slog.Record) error {
	if strings.Contains(rec.Message, "retrying") {
		r.n.Add(1)
	}
	return nil
}
func (r *retryCounter) WithAttrs([]slog.Attr) slog.Handler { return r }
func (r *retryCounter) WithGroup(string) slog.Handler      { return r }

// createRuns creates n due runs of the env's deployment, four at a time.
func (e *env) createRuns(n int) {
	var wg sync.WaitGroup
	sem := make(chan struct{}, 4)
	for range n {
		wg.Go(func() {
			sem <- struct{}{}
			defer func() { <-sem }()
			if _, err := e.api.CreateFlowRunFromDeployment(context.Background(), e.dep.ID, prefect.DeploymentFlowRunCreate{}); err != nil {
				e.t.Errorf("create flow run: %v", err)
			}
		})
	}
	wg.Wait()
	if e.t.Failed() {
		e.t.FailNow()
	}
}

// BenchmarkDueToSubmit measures how late runs are submitted after their due
// time, with no lookahead (a positive lookahead submits early on purpose):
// `serve`, which sets a timer for the next due run, against a scheduler tick
// that runs one pass every 2 seconds (how a cloud function is woken by a
// scheduler; real ticks are usually a minute apart, which scales the delay).
func BenchmarkDueToSubmit(b *testing.B) {
	const (
		runs    = 12
		spacing = 350 * time.Millisecond
		tick    = 2 * time.Second
	)
	modes := []struct {
		name string
		loop func(ctx context.Context, d *dispatch.Dispatcher, pool string, report func(dispatch.PassResult))
	}{
		{"serve-timers", func(ctx context.Context, d *dispatch.Dispatcher, pool string, report func(dispatch.PassResult)) {
			_ = d.Serve(ctx, pool, dispatch.ServeConfig{PollInterval: time.Minute, OnPass: report})
		}},
		{fmt.Sprintf("tick=%s", tick), func(ctx context.Context, d *dispatch.Dispatcher, pool string, report func(dispatch.PassResult)) {
			t := time.NewTicker(tick)
			defer t.Stop()
			for {
				if res, err := d.RunOnce(ctx, pool); err == nil {
					report(res)
				}
				select {
				case <-ctx.Done():
					return
				case <-t.C:
				}
			}
		}},
	}
	for _, m := range modes {
		b.Run(m.name, func(b *testing.B) {
			e := newEnv(b, nil)
			d, err := dispatch.New(dispatch.Config{WorkerName: "pushpool-bench", Lookahead: time.Nanosecond,
				SettingsEnv: map[string]string{"PREFECT_API_URL": srv.URL}}, e.api, noopBackend{}, nil)
			if err != nil {
				b.Fatal(err)
			}
			var delays []time.Duration
			for b.Loop() {
				first := time.Now().Add(time.Second)
				for i := range runs {
					e.scheduleAt(e.dep, first.Add(time.Duration(i)*spacing))
				}
				ctx, cancel := context.WithCancel(b.Context())
				var mu sync.Mutex
				got := 0
				done := make(chan struct{})
				go func() {
					defer close(done)
					m.loop(ctx, d, e.pool.Name, func(res dispatch.PassResult) {
						mu.Lock()
						defer mu.Unlock()
						for _, r := range res.Runs {
							if r.Outcome == dispatch.Submitted {
								delays = append(delays, r.SubmittedAt.Sub(r.DueAt))
								got++
							}
						}
						if got == runs {
							cancel()
						}
					})
				}()
				select {
				case <-done:
				case <-time.After(2 * time.Minute):
					cancel()
					<-done
					b.Fatalf("only %d of %d runs submitted in 2 minutes", got, runs)
				}
				cancel()
			}
			slices.Sort(delays)
			b.ReportMetric(float64(delays[len(delays)/2].Milliseconds()), "p50-delay-ms")
			b.ReportMetric(float64(delays[len(delays)*95/100].Milliseconds()), "p95-delay-ms")
			b.ReportMetric(float64(delays[len(delays)-1].Milliseconds()), "max-delay-ms")
		})
	}
}
