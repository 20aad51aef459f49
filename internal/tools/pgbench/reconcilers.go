package main

import (
	"context"
	"fmt"
	"log/slog"
	"net/http"
	"sync"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"

	"github.com/pushpool/pushpool/dispatch"
	ecsbackend "github.com/pushpool/pushpool/dispatch/backend/ecs"
	"github.com/pushpool/pushpool/dispatch/prefect"
)

// reconcilers are dispatchers' reconcilers whose Prefect requests and
// AWS calls are counted together.
type reconcilers struct {
	list         []*dispatch.Reconciler
	prefect, aws *counter
}

// newReconcilers builds n dispatchers, each with its own Prefect client
// and ECS backend (counting HTTP clients), and their reconcilers.
func newReconcilers(ctx context.Context, s *stack, n int, what string) (*reconcilers, error) {
	rs := &reconcilers{prefect: &counter{}, aws: &counter{}}
	for i := range n {
		api, err := prefect.New(prefect.Config{URL: s.srv.URL, HTTPClient: &http.Client{Timeout: 30 * time.Second,
			Transport: countingTransport{base: http.DefaultTransport, classify: classifyPrefect, counts: rs.prefect}}})
		if err != nil {
			return nil, err
		}
		backend, err := ecsbackend.New(ctx, ecsbackend.Config{Endpoint: s.moto.URL, Logger: s.log,
			AWS: aws.Config{Region: awsRegion, Credentials: credentials.NewStaticCredentialsProvider("test", "test", ""),
				HTTPClient: &http.Client{Transport: countingTransport{base: http.DefaultTransport, classify: classifyAWS, counts: rs.aws}}}})
		if err != nil {
			return nil, err
		}
		name := fmt.Sprintf("pgbench-%s-%d", what, i)
		d, err := dispatch.New(dispatch.Config{WorkerName: name, SettingsEnv: map[string]string{prefect.EnvAPIURL: s.srv.URL}},
			api, backend, s.log.With(slog.String("dispatcher", name)))
		if err != nil {
			return nil, err
		}
		r, err := dispatch.NewReconciler(d, dispatch.ReconcileConfig{})
		if err != nil {
			return nil, err
		}
		rs.list = append(rs.list, r)
	}
	return rs, nil
}

// passFunc makes one pass of a reconciler; ran is false when it made none
// (another held the lease).
type passFunc func(ctx context.Context, r *dispatch.Reconciler, pool string) (res dispatch.ReconcileResult, ran bool, err error)

func runOnce(ctx context.Context, r *dispatch.Reconciler, pool string) (dispatch.ReconcileResult, bool, error) {
	res, err := r.RunOnce(ctx, pool)
	return res, true, err
}

func runLeased(ctx context.Context, r *dispatch.Reconciler, pool string) (dispatch.ReconcileResult, bool, error) {
	return r.RunLeased(ctx, pool)
}

// passes makes one pass of every reconciler at once and returns what
// they cost together.
func (rs *reconcilers) passes(ctx context.Context, pool string, pass passFunc) passCost {
	cost := passCost{actions: map[string]int{}}
	p0, a0 := rs.prefect.snapshot(), rs.aws.snapshot()
	var mu sync.Mutex
	var wg sync.WaitGroup
	began := time.Now()
	for _, r := range rs.list {
		wg.Go(func() {
			res, ran, err := pass(ctx, r, pool)
			mu.Lock()
			defer mu.Unlock()
			if err != nil {
				cost.errs = append(cost.errs, err)
			}
			if ran {
				cost.passes++
			}
			cost.checked += res.Checked
			for _, c := range res.Runs {
				cost.actions[string(c.Action)]++
			}
		})
	}
	wg.Wait()
	cost.took = time.Since(began)
	cost.prefect, cost.aws = rs.prefect.snapshot().minus(p0), rs.aws.snapshot().minus(a0)
	return cost
}

// add adds another pass's cost to c.
func (c *passCost) add(o passCost) {
	c.passes += o.passes
	c.took += o.took
	c.prefect, c.aws = c.prefect.plus(o.prefect), c.aws.plus(o.aws)
	c.checked += o.checked
	actions := map[string]int{}
	for k, v := range c.actions {
		actions[k] += v
	}
	for k, v := range o.actions {
		actions[k] += v
	}
	c.actions = actions
	c.errs = append(append([]error(nil), c.errs...), o.errs...)
}
