package ecs

import (
	"bytes"
	"fmt"
	"io"
	"maps"
	"net"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ecs"
)

// countingClient is the AWS SDK's HTTP client in tests: it counts the API
// calls made through it by action (ECS's X-Amz-Target, EC2's Action) and
// keeps the bodies of the RunTask requests.
type countingClient struct {
	mu       sync.Mutex
	actions  map[string]int
	runTasks [][]byte
	// lose is how many RunTask responses to drop after AWS answered, as a
	// connection reset does: the task is started, the caller never hears.
	lose int
}

func (c *countingClient) Do(r *http.Request) (*http.Response, error) {
	var body []byte
	if r.Body != nil {
		data, err := io.ReadAll(r.Body)
		r.Body.Close()
		if err != nil {
			return nil, err
		}
		body = data
		r.Body = io.NopCloser(bytes.NewReader(data))
	}
	action := r.Header.Get("X-Amz-Target")
	if i := strings.LastIndexByte(action, '.'); i >= 0 {
		action = action[i+1:]
	} else if form, err := url.ParseQuery(string(body)); err == nil {
		action = form.Get("Action")
	}
	c.mu.Lock()
	if c.actions == nil {
		c.actions = map[string]int{}
	}
	c.actions[action]++
	lose := false
	if action == "RunTask" {
		c.runTasks = append(c.runTasks, body)
		lose, c.lose = c.lose > 0, max(c.lose-1, 0)
	}
	c.mu.Unlock()
	resp, err := http.DefaultClient.Do(r)
	if err != nil || !lose {
		return resp, err
	}
	resp.Body.Close()
	return nil, &net.OpError{Op: "read", Net: "tcp", Err: syscall.ECONNRESET}
}

// counts returns the calls by action since the last reset.
func (c *countingClient) counts() map[string]int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return maps.Clone(c.actions)
}

func (c *countingClient) total() int {
	n := 0
	for _, v := range c.counts() {
		n += v
	}
	return n
}

func (c *countingClient) reset() {
	c.mu.Lock()
	c.actions, c.runTasks = nil, nil
	c.mu.Unlock()
}

// newCountingBackend returns a Backend on moto whose AWS calls go through c.
func newCountingBackend(tb testing.TB, c *countingClient) *Backend {
	tb.Helper()
	cfg := motoAWS()
	cfg.HTTPClient = c
	bk, err := New(tb.Context(), Config{AWS: cfg, Endpoint: moto.URL, DefaultImage: "prefecthq/prefect:3.9.1-python3.11",
		MaxAttempts: 3, MaxBackoff: 20 * time.Millisecond})
	if err != nil {
		tb.Fatal(err)
	}
	return bk
}

// BenchmarkSubmit measures the submission (Start) of a fresh attempt on
// moto, for runs of one deployment (one task definition content):
//   - cold: every submission by a new Backend, as every Lambda invocation
//     or separate dispatcher: the revision is found by its content-hash tag
//     on the family's latest revision and the default VPC's subnets are
//     looked up;
//   - warm: one Backend for all, which remembers the revision and the
//     subnets: RunTask is the only call.
//
// It reports AWS API calls per submission, in all and by action
// (<Action>/submit), task definition registrations per submission
// (Prefect's worker registers a revision in every new process unless
// match_latest_revision_in_family is set, so a fresh process per run means
// one registration per run) and ListTasks calls per submission (none:
// RunTask's clientToken makes the first start of an attempt idempotent
// without a lookup).
func BenchmarkSubmit(b *testing.B) {
	for _, mode := range []string{"cold", "warm"} {
		b.Run(mode, func(b *testing.B) {
			cluster := fmt.Sprintf("bench-%s-%d", mode, time.Now().UnixNano())
			if _, err := motoECS().CreateCluster(b.Context(), &ecs.CreateClusterInput{ClusterName: aws.String(cluster)}); err != nil {
				b.Fatal(err)
			}
			counter := &countingClient{}
			vars := map[string]any{"cluster": cluster, "family": cluster}
			// One submission outside the timer registers the revision, and
			// warms the warm Backend.
			warm := newCountingBackend(b, counter)
			if _, err := warm.Start(b.Context(), newJob(b, vars)); err != nil {
				b.Fatal(err)
			}
			counter.reset()
			start := time.Now()
			b.ResetTimer()
			for b.Loop() {
				bk := warm
				if mode == "cold" {
					bk = newCountingBackend(b, counter)
				}
				if _, err := bk.Start(b.Context(), newJob(b, vars)); err != nil {
					b.Fatal(err)
				}
			}
			b.StopTimer()
			n := float64(b.N)
			counts := counter.counts()
			b.ReportMetric(float64(counter.total())/n, "aws-calls/submit")
			b.ReportMetric(float64(counts["RegisterTaskDefinition"])/n, "registrations/submit")
			b.ReportMetric(float64(counts["ListTasks"])/n, "listtasks/submit")
			for _, action := range slices.Sorted(maps.Keys(counts)) {
				if action != "RegisterTaskDefinition" && action != "ListTasks" {
					b.ReportMetric(float64(counts[action])/n, action+"/submit")
				}
			}
			b.ReportMetric(n/time.Since(start).Seconds(), "submits/s")
		})
	}
}
