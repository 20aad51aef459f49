package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// ceilingClient is the least a dispatcher must ask of Prefect per run:
// claim it by proposing PENDING through orchestration (not forced), then
// record its infrastructure_pid. Nothing is read, rendered or started.
type ceilingClient struct {
	http    *http.Client
	baseURL string // ends in /api
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

// runCeiling measures the server's ceiling at each concurrency: a fresh
// pool's cfg.runs runs, due at once, claimed and recorded by the trivial
// client through a counting proxy (as every contender is).
func runCeiling(ctx context.Context, s *stack, concurrencies []int, cfg burstConfig) ([]burstResult, error) {
	var out []burstResult
	for _, conc := range concurrencies {
		res := burstResult{name: fmt.Sprintf("ceiling, %d concurrent", conc)}
		fx, err := s.newFixture(ctx, fmt.Sprintf("ceiling-%d", conc))
		if err != nil {
			return out, err
		}
		ids, err := s.createRuns(ctx, fx, dueNow(cfg.runs), cfg.createConc)
		if err != nil {
			return out, err
		}
		pctx, cancel := context.WithCancel(ctx)
		pp, err := newCountingProxy(pctx, "prefect", strings.TrimSuffix(s.srv.URL, "/api"), classifyPrefect, s.log)
		if err != nil {
			cancel()
			return out, err
		}
		client := &ceilingClient{baseURL: pp.url + "/api", http: &http.Client{Timeout: time.Minute,
			Transport: &http.Transport{MaxIdleConnsPerHost: conc, IdleConnTimeout: 60 * time.Second}}}
		s.log.Info("ceiling", "concurrency", conc, "runs", len(ids))
		began := time.Now()
		client.dispatch(ctx, ids, conc)
		res.prefect = pp.counts.snapshot()
		cancel()
		if n := client.failed.Load(); n > 0 {
			res.notes = append(res.notes, fmt.Sprintf("%d runs not claimed or recorded", n))
		}
		runs, err := s.db.timelines(ctx, fx.dep.ID)
		if err != nil {
			return out, err
		}
		res.span = span(runs)
		if !res.span.firstClaim.IsZero() {
			res.firstClaimAfter = res.span.firstClaim.Sub(began)
		}
		out = append(out, res)
	}
	return out, nil
}
