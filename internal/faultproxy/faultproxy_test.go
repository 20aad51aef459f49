package faultproxy

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/ecs"
	"github.com/aws/smithy-go"
)

// upstream is an httptest server that counts the requests it applied and
// echoes what it received.
type upstream struct {
	*httptest.Server
	applied atomic.Int64
}

type echo struct {
	Method string              `json:"method"`
	Path   string              `json:"path"`
	Query  string              `json:"query"`
	Host   string              `json:"host"`
	Header map[string][]string `json:"header"`
	Body   string              `json:"body"`
}

func newUpstream(t *testing.T) *upstream {
	t.Helper()
	u := &upstream{}
	u.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		u.applied.Add(1)
		w.Header().Set("Content-Type", "application/json")
		w.Header().Set("X-Upstream", "yes")
		w.WriteHeader(http.StatusCreated)
		json.NewEncoder(w).Encode(echo{r.Method, r.URL.Path, r.URL.RawQuery, r.Host, r.Header, string(body)})
	}))
	t.Cleanup(u.Close)
	return u
}

func startProxy(t *testing.T, cfg Config) *Proxy {
	t.Helper()
	p, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	if err := p.Start(ctx); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cancel(); p.Close() })
	return p
}

// result is what a client saw of one request.
type result struct {
	status int
	header http.Header
	body   []byte
	err    error
}

func do(t *testing.T, client *http.Client, method, url string, header map[string]string) result {
	t.Helper()
	req, err := http.NewRequest(method, url, strings.NewReader(`{"name":"x"}`))
	if err != nil {
		t.Fatal(err)
	}
	for k, v := range header {
		req.Header.Set(k, v)
	}
	resp, err := client.Do(req)
	if err != nil {
		return result{err: err}
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	return result{status: resp.StatusCode, header: resp.Header, body: body, err: err}
}

func TestConfig_Validate(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name    string
		cfg     Config
		wantErr string
	}{
		{name: "minimal", cfg: Config{Upstream: "http://127.0.0.1:4200"}},
		{name: "all faults", cfg: Config{Upstream: "http://127.0.0.1:4200/api", Reject5xx: 1, ResetAfter: 0.5, Delay: 0.1, RejectStatus: 500, MaxDelay: time.Second}},
		{name: "no upstream", cfg: Config{}, wantErr: "Config.Upstream"},
		{name: "upstream without scheme", cfg: Config{Upstream: "127.0.0.1:4200"}, wantErr: "Config.Upstream"},
		{name: "probability above 1", cfg: Config{Upstream: "http://x", Reject5xx: 1.5}, wantErr: "Config.Reject5xx"},
		{name: "negative probability", cfg: Config{Upstream: "http://x", ResetAfter: -0.1}, wantErr: "Config.ResetAfter"},
		{name: "status not 5xx", cfg: Config{Upstream: "http://x", RejectStatus: 429}, wantErr: "Config.RejectStatus"},
		{name: "negative delay", cfg: Config{Upstream: "http://x", MaxDelay: -time.Second}, wantErr: "Config.MaxDelay"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			err := tt.cfg.Validate()
			if tt.wantErr == "" && err != nil {
				t.Fatalf("Validate() = %v, want nil", err)
			}
			if tt.wantErr != "" && (err == nil || !strings.Contains(err.Error(), tt.wantErr)) {
				t.Fatalf("Validate() = %v, want an error naming %s", err, tt.wantErr)
			}
			if _, nerr := New(tt.cfg); (nerr == nil) != (err == nil) {
				t.Fatalf("New() = %v, Validate() = %v", nerr, err)
			}
		})
	}
}

// TestProxy_ServeHTTP sends requests through a proxy configured for one
// fault at a time and checks what the client and the upstream saw.
func TestProxy_ServeHTTP(t *testing.T) {
	t.Parallel()
	const n = 20
	tests := []struct {
		name        string
		cfg         Config
		method      string
		header      map[string]string
		disable     bool
		wantApplied int64
		check       func(t *testing.T, r result)
		wantStats   Stats
	}{
		{
			name:        "no faults forwards everything",
			cfg:         Config{},
			method:      http.MethodPost,
			wantApplied: n,
			check:       wantForwarded,
			wantStats:   Stats{Requests: n, Forwarded: n},
		},
		{
			name:        "Reject5xx never reaches the upstream",
			cfg:         Config{Reject5xx: 1},
			method:      http.MethodPost,
			wantApplied: 0,
			check: func(t *testing.T, r result) {
				if r.err != nil || r.status != http.StatusServiceUnavailable || r.header.Get("Content-Type") != "application/json" {
					t.Fatalf("got HTTP %d (%v) %s, want an injected 503", r.status, r.err, r.header.Get("Content-Type"))
				}
				var body struct{ Detail string }
				if json.Unmarshal(r.body, &body) != nil || !strings.Contains(body.Detail, "faultproxy: injected 503") {
					t.Fatalf("body %s, want Prefect's {\"detail\":...}", r.body)
				}
			},
			wantStats: Stats{Requests: n, Rejected: n},
		},
		{
			name:        "Reject5xx answers AWS JSON errors to AWS requests",
			cfg:         Config{Reject5xx: 1, RejectStatus: http.StatusInternalServerError},
			method:      http.MethodPost,
			header:      map[string]string{"X-Amz-Target": "AmazonEC2ContainerServiceV20141113.RunTask", "Content-Type": "application/x-amz-json-1.1"},
			wantApplied: 0,
			check: func(t *testing.T, r result) {
				var body struct {
					Type    string `json:"__type"`
					Message string `json:"message"`
				}
				if r.status != http.StatusInternalServerError || json.Unmarshal(r.body, &body) != nil ||
					body.Type != "ServiceUnavailableException" || r.header.Get("X-Amzn-Errortype") != "ServiceUnavailableException" ||
					r.header.Get("Content-Type") != "application/x-amz-json-1.1" {
					t.Fatalf("got HTTP %d %v %s, want an AWS JSON 1.1 ServiceUnavailableException", r.status, r.header, r.body)
				}
			},
			wantStats: Stats{Requests: n, Rejected: n},
		},
		{
			name:        "ResetAfter applies once and the client gets an error",
			cfg:         Config{ResetAfter: 1},
			method:      http.MethodPost, // not retried by net/http, unlike GET
			wantApplied: n,
			check: func(t *testing.T, r result) {
				if r.err == nil {
					t.Fatalf("got HTTP %d %s, want a connection error", r.status, r.body)
				}
			},
			wantStats: Stats{Requests: n, Forwarded: n, Reset: n},
		},
		{
			name:        "SetEnabled(false) passes everything",
			cfg:         Config{Reject5xx: 1, ResetAfter: 1, Delay: 1, MaxDelay: time.Hour},
			method:      http.MethodPost,
			disable:     true,
			wantApplied: n,
			check:       wantForwarded,
			wantStats:   Stats{Requests: n, Forwarded: n},
		},
		{
			name: "Filter spares the requests it rejects",
			cfg: Config{Reject5xx: 1, Filter: func(r *http.Request) bool {
				return r.Method == http.MethodPost || r.Method == http.MethodPatch
			}},
			method:      http.MethodGet,
			wantApplied: n,
			check:       wantForwarded,
			wantStats:   Stats{Requests: n, Forwarded: n},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			up := newUpstream(t)
			tt.cfg.Upstream = up.URL
			p := startProxy(t, tt.cfg)
			if tt.disable {
				p.SetEnabled(false)
			}
			client := &http.Client{Timeout: 10 * time.Second}
			for i := 0; i < n; i++ {
				tt.check(t, do(t, client, tt.method, p.URL()+"/api/flows/?limit=1", tt.header))
			}
			if got := up.applied.Load(); got != tt.wantApplied {
				t.Errorf("upstream applied %d requests, want %d", got, tt.wantApplied)
			}
			if got := p.Stats(); got != tt.wantStats {
				t.Errorf("Stats() = %v\n                want %v", got, tt.wantStats)
			}
		})
	}
}

func wantForwarded(t *testing.T, r result) {
	t.Helper()
	if r.err != nil || r.status != http.StatusCreated || r.header.Get("X-Upstream") != "yes" {
		t.Fatalf("got HTTP %d (%v) %s, want the upstream's 201", r.status, r.err, r.body)
	}
}

// TestProxy_forwardsFaithfully checks that method, path (under the
// upstream's prefix), query, headers, Host and body arrive unchanged and
// the answer comes back unchanged.
func TestProxy_forwardsFaithfully(t *testing.T) {
	t.Parallel()
	up := newUpstream(t)
	p := startProxy(t, Config{Upstream: up.URL + "/prefix"})
	req, _ := http.NewRequest(http.MethodPatch, p.URL()+"/api/flow_runs/abc?x=1&y=two%20words", strings.NewReader(`{"state":"RUNNING"}`))
	req.Header.Set("Authorization", "Bearer t0ken")
	req.Header.Set("X-Amz-Target", "AmazonSQS.SendMessage")
	req.Header.Add("X-Multi", "a")
	req.Header.Add("X-Multi", "b")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var got echo
	if err := json.NewDecoder(resp.Body).Decode(&got); err != nil {
		t.Fatal(err)
	}
	proxyHost := strings.TrimPrefix(p.URL(), "http://")
	if resp.StatusCode != http.StatusCreated || resp.Header.Get("X-Upstream") != "yes" ||
		got.Method != http.MethodPatch || got.Path != "/prefix/api/flow_runs/abc" || got.Query != "x=1&y=two%20words" ||
		got.Host != proxyHost || got.Body != `{"state":"RUNNING"}` ||
		got.Header["Authorization"][0] != "Bearer t0ken" || got.Header["X-Amz-Target"][0] != "AmazonSQS.SendMessage" ||
		strings.Join(got.Header["X-Multi"], ",") != "a,b" {
		t.Fatalf("HTTP %d, upstream saw %+v", resp.StatusCode, got)
	}
}

// TestProxy_Delay checks that Delay holds requests back, before and, with
// DelayResponse, after the upstream. (Wall-clock upper bounds would fail
// on a loaded machine; TestProxy_draw checks the delays' bounds.)
func TestProxy_Delay(t *testing.T) {
	t.Parallel()
	const n, maxDelay = 10, 100 * time.Millisecond
	tests := []struct {
		name     string
		cfg      Config
		minTotal time.Duration
	}{
		// Uniform delays: 10 of them sum to about 5*maxDelay; the fixed seed
		// makes the sum the same on every run.
		{name: "before", cfg: Config{Delay: 1, MaxDelay: maxDelay}, minTotal: 2 * maxDelay},
		{name: "before and after", cfg: Config{Delay: 1, MaxDelay: maxDelay, DelayResponse: true}, minTotal: 5 * maxDelay},
		{name: "never", cfg: Config{Delay: 0, MaxDelay: time.Hour}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			up := newUpstream(t)
			tt.cfg.Upstream = up.URL
			tt.cfg.Seed = 7
			p := startProxy(t, tt.cfg)
			client := &http.Client{Timeout: 10 * time.Second}
			start := time.Now()
			var longest time.Duration
			for i := 0; i < n; i++ {
				t0 := time.Now()
				wantForwarded(t, do(t, client, http.MethodPost, p.URL()+"/x", nil))
				longest = max(longest, time.Since(t0))
			}
			total := time.Since(start)
			t.Logf("%d requests in %v, longest %v; %v", n, total, longest, p.Stats())
			if total < tt.minTotal {
				t.Errorf("%d requests took %v, want at least %v", n, total, tt.minTotal)
			}
			if tt.cfg.Delay == 0 && longest > 10*time.Second {
				t.Errorf("a request took %v with Delay 0 and MaxDelay %v", longest, tt.cfg.MaxDelay)
			}
			wantDelayed := int64(n)
			if tt.cfg.Delay == 0 {
				wantDelayed = 0
			}
			if got := p.Stats().Delayed; got != wantDelayed {
				t.Errorf("Stats().Delayed = %d, want %d", got, wantDelayed)
			}
		})
	}
}

// TestProxy_draw checks the faults drawn per request: delays within
// [0, MaxDelay] and spread over it, no reset of a rejected request.
func TestProxy_draw(t *testing.T) {
	t.Parallel()
	const n, maxDelay = 10000, 100 * time.Millisecond
	p, err := New(Config{Upstream: "http://127.0.0.1:1", Reject5xx: 0.5, ResetAfter: 1, Delay: 1, MaxDelay: maxDelay, DelayResponse: true})
	if err != nil {
		t.Fatal(err)
	}
	var sum time.Duration
	var longest time.Duration
	for i := 0; i < n; i++ {
		pl := p.draw()
		if !pl.delayed || pl.delay < 0 || pl.delay > maxDelay || pl.responseDelay < 0 || pl.responseDelay > maxDelay {
			t.Fatalf("draw %d = %+v, want delays within [0, %v]", i, pl, maxDelay)
		}
		if pl.reject == pl.reset {
			t.Fatalf("draw %d = %+v, want either a reject or (ResetAfter 1) a reset", i, pl)
		}
		sum += pl.delay
		longest = max(longest, pl.delay)
	}
	if mean := sum / n; mean < 45*time.Millisecond || mean > 55*time.Millisecond || longest < 99*time.Millisecond {
		t.Errorf("delays average %v with the longest %v, want uniform over [0, %v]", mean, longest, maxDelay)
	}
}

// TestProxy_probabilities sends many concurrent requests through a proxy
// with every fault on and checks the counts against the probabilities,
// the upstream against the counts, and that a fixed seed repeats itself.
func TestProxy_probabilities(t *testing.T) {
	t.Parallel()
	const n, workers = 2000, 200
	cfg := Config{Reject5xx: 0.3, ResetAfter: 0.2, Delay: 0.1, MaxDelay: 5 * time.Millisecond, Seed: 42}
	up := newUpstream(t)
	cfg.Upstream = up.URL
	p := startProxy(t, cfg)
	client := &http.Client{Timeout: 30 * time.Second, Transport: &http.Transport{MaxIdleConnsPerHost: workers}}
	var clientErrors, rejected, ok atomic.Int64
	var wg sync.WaitGroup
	next := make(chan int)
	for w := 0; w < workers; w++ {
		wg.Go(func() {
			for range next {
				r := do(t, client, http.MethodPost, p.URL()+"/api/flows/", nil)
				switch {
				case r.err != nil:
					clientErrors.Add(1)
				case r.status == http.StatusServiceUnavailable:
					rejected.Add(1)
				case r.status == http.StatusCreated:
					ok.Add(1)
				default:
					t.Errorf("unexpected HTTP %d %s", r.status, r.body)
				}
			}
		})
	}
	start := time.Now()
	for i := 0; i < n; i++ {
		next <- i
	}
	close(next)
	wg.Wait()
	s := p.Stats()
	t.Logf("%d requests from %d goroutines in %v: %v", n, workers, time.Since(start).Round(time.Millisecond), s)

	within := func(name string, got int64, want float64) {
		t.Helper()
		if tol := 0.2 * want; float64(got) < want-tol || float64(got) > want+tol {
			t.Errorf("%s = %d, want %.0f ± 20%%", name, got, want)
		}
	}
	within("rejected", s.Rejected, 0.3*n)
	within("reset", s.Reset, 0.2*0.7*n)
	within("delayed", s.Delayed, 0.1*n)
	if s.Requests != n || s.Forwarded != n-s.Rejected || s.UpstreamErrors != 0 {
		t.Errorf("Stats() = %v: want %d requests, forwarded = requests - rejected, no upstream errors", s, n)
	}
	if got := up.applied.Load(); got != s.Forwarded {
		t.Errorf("upstream applied %d requests, want the %d forwarded (reset ones included)", got, s.Forwarded)
	}
	if rejected.Load() != s.Rejected || clientErrors.Load() != s.Reset || ok.Load() != s.Forwarded-s.Reset {
		t.Errorf("clients saw %d rejected, %d errors, %d ok; want %d, %d, %d", rejected.Load(), clientErrors.Load(), ok.Load(), s.Rejected, s.Reset, s.Forwarded-s.Reset)
	}

	// The same seed and the same (sequential) order give the same faults.
	sequence := func() string {
		up := newUpstream(t)
		c := cfg
		c.Upstream, c.Delay = up.URL, 0
		p := startProxy(t, c)
		var b strings.Builder
		for i := 0; i < 50; i++ {
			r := do(t, client, http.MethodPost, p.URL()+"/", nil)
			switch {
			case r.err != nil:
				b.WriteByte('R')
			case r.status == http.StatusServiceUnavailable:
				b.WriteByte('5')
			default:
				b.WriteByte('.')
			}
		}
		return b.String()
	}
	if a, b := sequence(), sequence(); a != b {
		t.Errorf("seed %d gave two fault sequences:\n%s\n%s", cfg.Seed, a, b)
	} else {
		t.Logf("seed %d: %s", cfg.Seed, a)
	}
}

// TestProxy_SetEnabled turns faults off and on again at run time.
func TestProxy_SetEnabled(t *testing.T) {
	t.Parallel()
	up := newUpstream(t)
	p := startProxy(t, Config{Upstream: up.URL, Reject5xx: 1})
	client := &http.Client{Timeout: 10 * time.Second}
	for i, step := range []struct {
		enabled bool
		want    int
	}{{true, 503}, {false, 201}, {true, 503}} {
		p.SetEnabled(step.enabled)
		if got := do(t, client, http.MethodPost, p.URL()+"/", nil); got.status != step.want || p.Enabled() != step.enabled {
			t.Errorf("step %d: SetEnabled(%v): HTTP %d, want %d", i, step.enabled, got.status, step.want)
		}
	}
	if got, want := p.Stats().String(), "requests=3 forwarded=1 faults=2 (66.7%: rejected=2 reset=0 delayed=0) upstream_errors=0"; got != want {
		t.Errorf("Stats().String() = %q, want %q", got, want)
	}
}

// TestProxy_upstreamDown answers 502 when nothing listens upstream.
func TestProxy_upstreamDown(t *testing.T) {
	t.Parallel()
	up := httptest.NewServer(http.NotFoundHandler())
	up.Close()
	p := startProxy(t, Config{Upstream: up.URL})
	r := do(t, &http.Client{Timeout: 10 * time.Second}, http.MethodGet, p.URL()+"/", nil)
	if r.err != nil || r.status != http.StatusBadGateway || !bytes.Contains(r.body, []byte("faultproxy: upstream")) {
		t.Fatalf("got HTTP %d (%v) %s, want 502", r.status, r.err, r.body)
	}
	if s := p.Stats(); s.UpstreamErrors != 1 {
		t.Errorf("Stats() = %v, want 1 upstream error", s)
	}
}

func ExampleProxy() {
	upstream := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprint(w, `{"status":"ok"}`)
	}))
	defer upstream.Close()
	p, err := New(Config{
		Upstream:  upstream.URL,
		Reject5xx: 1, // every POST gets a 503...
		Filter:    func(r *http.Request) bool { return r.Method == http.MethodPost },
	})
	if err != nil {
		panic(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	if err := p.Start(ctx); err != nil {
		panic(err)
	}
	resp, _ := http.Post(p.URL()+"/api/flows/", "application/json", strings.NewReader(`{"name":"x"}`))
	resp.Body.Close()
	fmt.Println(resp.StatusCode)
	resp, _ = http.Get(p.URL() + "/api/health") // ...and GETs pass
	resp.Body.Close()
	fmt.Println(resp.StatusCode)
	p.SetEnabled(false) // settle: nothing is injected any more
	resp, _ = http.Post(p.URL()+"/api/flows/", "application/json", strings.NewReader(`{"name":"x"}`))
	resp.Body.Close()
	fmt.Println(resp.StatusCode)
	fmt.Println(p.Stats())
	// Output:
	// 503
	// 200
	// 200
	// requests=3 forwarded=2 faults=1 (33.3%: rejected=1 reset=0 delayed=0) upstream_errors=0
}

// TestProxy_awsSDK checks that the AWS SDK reads an injected rejection as
// the retryable ServiceUnavailableException: it retries, then reports it.
func TestProxy_awsSDK(t *testing.T) {
	t.Parallel()
	up := newUpstream(t)
	p := startProxy(t, Config{Upstream: up.URL, Reject5xx: 1})
	client := ecs.New(ecs.Options{
		Region:       "us-east-1",
		BaseEndpoint: aws.String(p.URL()),
		Credentials:  credentials.NewStaticCredentialsProvider("test", "test", ""),
	})
	_, err := client.DescribeClusters(context.Background(), &ecs.DescribeClustersInput{})
	var apiErr smithy.APIError
	if !errors.As(err, &apiErr) || apiErr.ErrorCode() != "ServiceUnavailableException" {
		t.Fatalf("DescribeClusters: %v, want a ServiceUnavailableException", err)
	}
	if s := p.Stats(); s.Rejected < 2 || up.applied.Load() != 0 {
		t.Errorf("Stats() = %v, upstream applied %d; want the SDK's retries rejected, nothing applied", s, up.applied.Load())
	}
}
