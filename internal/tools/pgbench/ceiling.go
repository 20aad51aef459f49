package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"sync"
	"sync/atomic"
	"time"
)

// ceilingClient is the least a dispatcher must ask of Prefect per run:
// claim it by proposing PENDING through orchestration (not forced), then
// record its infrastructure_pid. Nothing is read, rendered or started.
// With labels it also labels the run as Prefect's workers do (and
// pushpool), one PATCH /flow_runs/{id}/labels: the least a dispatcher that
// keeps the workers' labels must ask, as Prefect 3.9's API has no request
// that writes labels and infrastructure_pid together.
type ceilingClient struct {
	http    *http.Client
	baseURL string // ends in /api
	labels  map[string]string
	// failed counts runs whose claim was not accepted or whose pid could
	// not be written.
	failed atomic.Int64
}

// dispatch claims and records every run, conc at a time.
func (c *ceilingClient) dispatch(ctx context.Context, ids []string, conc int) {
	work := make(chan string)
	var wg sync.WaitGroup
	for range conc {
		wg.Go(func() {
			for id := range work {
				if err := c.one(ctx, id); err != nil {
					c.failed.Add(1)
				}
			}
		})
	}
	for _, id := range ids {
		select {
		case work <- id:
		case <-ctx.Done():
		}
	}
	close(work)
	wg.Wait()
}

// one claims and records one run.
func (c *ceilingClient) one(ctx context.Context, id string) error {
	var claim struct {
		Status string `json:"status"`
	}
	if err := c.send(ctx, http.MethodPost, "/flow_runs/"+id+"/set_state",
		map[string]any{"state": map[string]any{"type": "PENDING", "name": "Pending"}, "force": false}, &claim); err != nil {
		return err
	}
	if claim.Status != "ACCEPT" {
		return fmt.Errorf("claim of %s: %s", id, claim.Status)
	}
	if c.labels != nil {
		if err := c.send(ctx, http.MethodPatch, "/flow_runs/"+id+"/labels", c.labels, nil); err != nil {
			return err
		}
	}
	return c.send(ctx, http.MethodPatch, "/flow_runs/"+id, map[string]any{"infrastructure_pid": "ceiling::" + id}, nil)
}

// send sends one JSON request and decodes the answer into out (when not nil).
func (c *ceilingClient) send(ctx context.Context, method, path string, body, out any) error {
	data, err := json.Marshal(body)
	if err != nil {
		return fmt.Errorf("encode %s %s: %w", method, path, err)
	}
	req, err := http.NewRequestWithContext(ctx, method, c.baseURL+path, bytes.NewReader(data))
	if err != nil {
		return fmt.Errorf("%s %s: %w", method, path, err)
	}
	req.Header.Set("Content-Type", "application/json")
	resp, err := c.http.Do(req)
	if err != nil {
		return fmt.Errorf("%s %s: %w", method, path, err)
	}
	defer resp.Body.Close()
	answer, _ := io.ReadAll(resp.Body)
	if resp.StatusCode/100 != 2 {
		return fmt.Errorf("%s %s: HTTP %d: %s", method, path, resp.StatusCode, bytes.TrimSpace(answer))
	}
	if out != nil {
		if err := json.Unmarshal(answer, out); err != nil {
			return fmt.Errorf("%s %s: decode %q: %w", method, path, answer, err)
		}
	}
	return nil
}

// scheduled reads the pool's due runs as a dispatcher must before it can
// claim them: one get_scheduled_flow_runs for all of them.
func (c *ceilingClient) scheduled(ctx context.Context, pool string, limit int) ([]string, error) {
	var answer []struct {
		FlowRun struct {
			ID string `json:"id"`
		} `json:"flow_run"`
	}
	body := map[string]any{"scheduled_before": time.Now().UTC().Add(time.Second).Format(time.RFC3339Nano), "limit": limit}
	if err := c.send(ctx, http.MethodPost, "/work_pools/"+pool+"/get_scheduled_flow_runs", body, &answer); err != nil {
		return nil, err
	}
	ids := make([]string, len(answer))
	for i, a := range answer {
		ids[i] = a.FlowRun.ID
	}
	return ids, nil
}

// maxScheduledLimit is the most runs one get_scheduled_flow_runs returns.
const maxScheduledLimit = 200

// readAndDispatch reads the pool's due runs, a page at a time, and claims
// and records each page, conc at a time, until n runs were read or the
// pool has none left.
func (c *ceilingClient) readAndDispatch(ctx context.Context, pool string, n, conc int) error {
	for n > 0 {
		ids, err := c.scheduled(ctx, pool, min(n, maxScheduledLimit))
		if err != nil || len(ids) == 0 {
			return err
		}
		c.dispatch(ctx, ids, conc)
		n -= len(ids)
	}
	return nil
}

// ceilingVariant is one row of the ceiling: a concurrency, whether the
// client labels the runs and whether it reads the due runs from the pool
// first (else the harness hands it their ids).
type ceilingVariant struct {
	conc         int
	labels, read bool
}

// name is the variant's row name.
func (v ceilingVariant) name() string {
	switch {
	case v.read && v.labels:
		return fmt.Sprintf("ceiling + read + labels, %d concurrent", v.conc)
	case v.read:
		return fmt.Sprintf("ceiling + read, %d concurrent", v.conc)
	case v.labels:
		return fmt.Sprintf("ceiling + labels, %d concurrent", v.conc)
	}
	return fmt.Sprintf("ceiling, %d concurrent", v.conc)
}

// ceilingLabels are the labels the labelling ceiling writes: those
// pushpool writes on every run it dispatches, with values of the same
// length.
func ceilingLabels(pool string) map[string]string {
	return map[string]string{
		"prefect.worker.name":               "pushpool-ceiling-0000000000000000",
		"prefect.worker.type":               "ecs",
		"prefect.work-pool.name":            pool,
		"prefect.work-pool.id":              "00000000-0000-0000-0000-000000000000",
		"pushpool.io/attempt":               "00000000",
		"pushpool.io/start-timeout-seconds": "300",
	}
}

// runCeiling measures the server's ceiling for variant v: a fresh pool's
// cfg.runs runs, due at once, claimed and recorded by the trivial client
// through a counting proxy (as every contender is). The window of the
// servers' CPU time ends, as a contender's does, once the proxy has been
// quiet for cfg.quietFor.
func runCeiling(ctx context.Context, s *stack, v ceilingVariant, cfg burstConfig) (burstResult, error) {
	res := burstResult{name: v.name(), variant: v}
	pctx, cancel := context.WithCancel(ctx)
	defer cancel()
	fx, ids, pp, err := s.newBurst(pctx, fmt.Sprintf("ceiling-%d-%t-%t", v.conc, v.labels, v.read), cfg)
	if err != nil {
		return res, err
	}
	client := &ceilingClient{baseURL: pp.url + "/api", http: &http.Client{Timeout: time.Minute,
		Transport: &http.Transport{MaxIdleConnsPerHost: v.conc, IdleConnTimeout: 60 * time.Second}}}
	if v.labels {
		client.labels = ceilingLabels(fx.pool)
	}
	first := s.markCPU(0)
	began := time.Now()
	if v.read {
		err = client.readAndDispatch(ctx, fx.pool, len(ids), v.conc)
	} else {
		client.dispatch(ctx, ids, v.conc)
	}
	if err != nil {
		return res, err
	}
	waitQuiet(ctx, []*countingProxy{pp}, cfg.quietFor, cfg.maxQuietFor)
	res.setServers(first, s.markCPU(0))
	res.prefect = pp.counts.snapshot()
	if n := client.failed.Load(); n > 0 {
		res.notes = append(res.notes, fmt.Sprintf("%d runs not claimed or recorded", n))
	}
	runs, err := s.db.timelines(ctx, fx.dep.ID)
	if err != nil {
		return res, err
	}
	res.span = span(runs)
	if !res.span.firstClaim.IsZero() {
		res.firstClaimAfter = res.span.firstClaim.Sub(began)
	}
	return res, nil
}
