package ecs

import (
	"fmt"
	"net/http"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ecs"

	"github.com/pushpool/pushpool/dispatch/dispatchtest"
)

// countingClient counts the AWS API calls made through it, and the
// task definition registrations among them.
type countingClient struct {
	calls, registrations atomic.Int64
}

func (c *countingClient) Do(r *http.Request) (*http.Response, error) {
	c.calls.Add(1)
	if strings.HasSuffix(r.Header.Get("X-Amz-Target"), ".RegisterTaskDefinition") {
		c.registrations.Add(1)
	}
	return http.DefaultClient.Do(r)
}

// BenchmarkSubmit measures one ECS submission on moto, for runs of one
// deployment (one task definition content):
//   - cold: every submission by a new Backend, as every Lambda invocation
//     or separate dispatcher: the revision is found by its content-hash tag;
//   - warm: one Backend for all, which remembers the revision it used.
//
// It reports AWS API calls per submission and task definition
// registrations per submission (Prefect's worker registers a revision in
// every new process unless match_latest_revision_in_family is set, so a
// fresh process per run means one registration per run).
func BenchmarkSubmit(b *testing.B) {
	for _, mode := range []string{"cold", "warm"} {
		b.Run(mode, func(b *testing.B) {
			cluster := fmt.Sprintf("bench-%s-%d", mode, time.Now().UnixNano())
			if _, err := motoECS().CreateCluster(b.Context(), &ecs.CreateClusterInput{ClusterName: aws.String(cluster)}); err != nil {
				b.Fatal(err)
			}
			counter := &countingClient{}
			newBackend := func() *Backend {
				cfg := motoAWS()
				cfg.HTTPClient = counter
				bk, err := New(b.Context(), Config{AWS: cfg, Endpoint: moto.URL, DefaultImage: "prefecthq/prefect:3.9.1-python3.11"})
				if err != nil {
					b.Fatal(err)
				}
				return bk
			}
			vars := map[string]any{"cluster": cluster, "family": cluster}
			// One submission outside the timer registers the revision.
			if _, err := newBackend().Submit(b.Context(), dispatchtest.RenderJob(b, PoolType, DefaultBaseJobTemplate(), vars, dispatchtest.NewFlowRunID())); err != nil {
				b.Fatal(err)
			}
			warm := newBackend()
			counter.calls.Store(0)
			counter.registrations.Store(0)
			start := time.Now()
			b.ResetTimer()
			for b.Loop() {
				bk := warm
				if mode == "cold" {
					bk = newBackend()
				}
				job := dispatchtest.RenderJob(b, PoolType, DefaultBaseJobTemplate(), vars, dispatchtest.NewFlowRunID())
				if _, err := bk.Submit(b.Context(), job); err != nil {
					b.Fatal(err)
				}
			}
			b.StopTimer()
			n := float64(b.N)
			b.ReportMetric(float64(counter.calls.Load())/n, "aws-calls/submit")
			b.ReportMetric(float64(counter.registrations.Load())/n, "registrations/submit")
			b.ReportMetric(n/time.Since(start).Seconds(), "submits/s")
		})
	}
}
