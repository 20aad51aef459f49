// Package faultproxy is an HTTP/1.1 reverse proxy for chaos tests: put
// between pushpool's dispatchers and a real server (Prefect, moto), it
// answers some requests with a 5xx without forwarding them, loses the
// response of others after the server applied them, and delays some, each
// with a configured probability drawn from a seeded generator.
package faultproxy

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"net"
	"net/http"
	"net/http/httputil"
	"net/url"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// Config configures a Proxy. Probabilities are in [0, 1]; zero turns a
// fault off. Reject5xx is drawn first: a rejected request is neither
// delayed further nor forwarded, so ResetAfter applies to the requests
// Reject5xx spared.
type Config struct {
	// Upstream is the base URL requests are forwarded to, such as
	// http://127.0.0.1:4200. A path in it prefixes every request's path.
	Upstream string

	// Reject5xx is the probability that a request is answered with
	// RejectStatus without being forwarded: the server never sees it.
	Reject5xx float64
	// RejectStatus is the status of rejected requests, 500 to 599. Zero
	// means 503. The body is AWS's JSON error
	// {"__type":"ServiceUnavailableException",...} when the request has an
	// X-Amz-Target header, else Prefect's {"detail":...}.
	RejectStatus int

	// ResetAfter is the probability that a request is forwarded, the
	// upstream applies it and answers, and the proxy then resets the
	// client's connection without sending the answer: the request took
	// effect, the client cannot know. Note that net/http's client resends
	// a GET (without an Idempotency-Key) that failed so on a reused
	// keep-alive connection, once: such a GET can reach the upstream twice
	// and its resend draws its own faults.
	ResetAfter float64

	// Delay is the probability that a request waits a random time in
	// [0, MaxDelay] before it is forwarded (or rejected).
	Delay float64
	// MaxDelay bounds each delay. Zero means one second.
	MaxDelay time.Duration
	// DelayResponse also holds a delayed request's answer back for another
	// random time in [0, MaxDelay] after the upstream answered.
	DelayResponse bool

	// Seed seeds the random draws: the same seed and the same order of
	// requests give the same faults.
	Seed uint64

	// Filter chooses the requests that can get faults; the others are
	// forwarded untouched. Nil means every request. It is called from many
	// goroutines at once.
	Filter func(*http.Request) bool

	// UpstreamIdleTimeout is how long an idle connection to the upstream is
	// kept for reuse. Zero means 4s, under the 5s after which uvicorn (the
	// Prefect server) closes idle connections: a request sent on a
	// connection the server is closing fails without being a fault.
	UpstreamIdleTimeout time.Duration

	// Logger receives a debug record per injected fault and a warning per
	// upstream failure. Nil discards them.
	Logger *slog.Logger
}

// withDefaults returns c with every zero field set to its default.
func (c Config) withDefaults() Config {
	if c.RejectStatus == 0 {
		c.RejectStatus = http.StatusServiceUnavailable
	}
	if c.MaxDelay == 0 {
		c.MaxDelay = time.Second
	}
	if c.UpstreamIdleTimeout == 0 {
		c.UpstreamIdleTimeout = 4 * time.Second
	}
	if c.Logger == nil {
		c.Logger = slog.New(slog.DiscardHandler)
	}
	return c
}

// Validate reports the first field out of its limits.
func (c Config) Validate() error {
	u, err := url.Parse(c.Upstream)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return fmt.Errorf("faultproxy Config.Upstream %q: want an http:// or https:// base URL with a host", c.Upstream)
	}
	for _, p := range []struct {
		name string
		v    float64
	}{{"Reject5xx", c.Reject5xx}, {"ResetAfter", c.ResetAfter}, {"Delay", c.Delay}} {
		if !(p.v >= 0 && p.v <= 1) { // also rejects NaN
			return fmt.Errorf("faultproxy Config.%s %v: want a probability from 0 to 1", p.name, p.v)
		}
	}
	if c.RejectStatus != 0 && (c.RejectStatus < 500 || c.RejectStatus > 599) {
		return fmt.Errorf("faultproxy Config.RejectStatus %d: want 500 to 599, or 0 for 503", c.RejectStatus)
	}
	if c.MaxDelay < 0 {
		return fmt.Errorf("faultproxy Config.MaxDelay %v: want 0 (one second) or more", c.MaxDelay)
	}
	if c.UpstreamIdleTimeout < 0 {
		return fmt.Errorf("faultproxy Config.UpstreamIdleTimeout %v: want 0 (4s) or more", c.UpstreamIdleTimeout)
	}
	return nil
}

// Stats counts what a Proxy did since New.
type Stats struct {
	// Requests is every request received.
	Requests int64
	// Forwarded is every request sent to the upstream, reset ones included.
	Forwarded int64
	// Rejected is the requests answered with a 5xx without forwarding.
	Rejected int64
	// Reset is the requests applied upstream whose connection was then reset.
	Reset int64
	// Delayed is the requests held back before forwarding (or rejection).
	Delayed int64
	// UpstreamErrors is the requests the upstream did not answer (the
	// proxy answered 502) or whose client went away meanwhile.
	UpstreamErrors int64
}

// Faults is how many requests got a fault: rejected, reset or delayed.
func (s Stats) Faults() int64 { return s.Rejected + s.Reset + s.Delayed }

// String returns the counts on one line, for a test log.
func (s Stats) String() string {
	share := 0.0
	if s.Requests > 0 {
		share = 100 * float64(s.Faults()) / float64(s.Requests)
	}
	return fmt.Sprintf("requests=%d forwarded=%d faults=%d (%.1f%%: rejected=%d reset=%d delayed=%d) upstream_errors=%d",
		s.Requests, s.Forwarded, s.Faults(), share, s.Rejected, s.Reset, s.Delayed, s.UpstreamErrors)
}

// Proxy is a fault-injecting reverse proxy to one upstream. It is an
// http.Handler; Start serves it on a loopback port. Faults are on from
// New until SetEnabled(false). Its methods are safe for concurrent use.
type Proxy struct {
	cfg       Config
	reverse   *httputil.ReverseProxy
	transport *http.Transport
	enabled   atomic.Bool

	mu  sync.Mutex // guards rng
	rng *rand.Rand

	requests, forwarded, rejected, reset, delayed, upstreamErrors atomic.Int64

	srvMu   sync.Mutex // guards srv, url and stopCtx
	srv     *http.Server
	url     string
	stopCtx func() bool
}

// plan is what happens to one request, drawn when it arrives.
type plan struct {
	reject        bool
	reset         bool
	delayed       bool
	delay         time.Duration // before forwarding
	responseDelay time.Duration // after the upstream answered
}

type planKey struct{}

// errReset is how ModifyResponse tells the error handler to reset the
// client's connection.
var errReset = errors.New("faultproxy: reset after the upstream answered")

// New returns a proxy to cfg.Upstream with its faults enabled.
func New(cfg Config) (*Proxy, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	cfg = cfg.withDefaults()
	target, _ := url.Parse(cfg.Upstream)
	p := &Proxy{
		cfg: cfg,
		rng: rand.New(rand.NewPCG(cfg.Seed, cfg.Seed^0x9e3779b97f4a7c15)),
		transport: &http.Transport{
			Proxy:       nil, // never an HTTP_PROXY from the environment
			DialContext: (&net.Dialer{Timeout: 10 * time.Second, KeepAlive: 30 * time.Second}).DialContext,
			// Hundreds of concurrent requests: keep their connections
			// instead of opening one per request.
			MaxIdleConns:          1024,
			MaxIdleConnsPerHost:   1024,
			IdleConnTimeout:       cfg.UpstreamIdleTimeout,
			ResponseHeaderTimeout: 5 * time.Minute,
		},
	}
	p.enabled.Store(true)
	p.reverse = &httputil.ReverseProxy{
		Rewrite: func(pr *httputil.ProxyRequest) {
			pr.SetURL(target)
			// The client's Host, as it signed it (AWS SigV4) and as servers
			// build URLs from it.
			pr.Out.Host = pr.In.Host
		},
		Transport:      p.transport,
		FlushInterval:  -1, // pass streamed bodies on as they come
		ModifyResponse: p.modifyResponse,
		ErrorHandler:   p.handleError,
		ErrorLog:       slog.NewLogLogger(cfg.Logger.Handler(), slog.LevelWarn),
	}
	return p, nil
}

// Start serves the proxy on a free 127.0.0.1 port until ctx ends or Close
// is called; URL then returns its address.
func (p *Proxy) Start(ctx context.Context) error {
	p.srvMu.Lock()
	defer p.srvMu.Unlock()
	if p.srv != nil {
		return errors.New("faultproxy: already started")
	}
	var lc net.ListenConfig
	l, err := lc.Listen(ctx, "tcp", "127.0.0.1:0")
	if err != nil {
		return fmt.Errorf("faultproxy: listen on a loopback port: %w", err)
	}
	p.url = "http://" + l.Addr().String()
	p.srv = &http.Server{
		Handler:           p,
		ReadHeaderTimeout: 30 * time.Second,
		// Longer than Go clients keep idle connections (90s), so the proxy
		// never closes one a client is about to reuse: such failures would
		// not be injected faults.
		IdleTimeout: 120 * time.Second,
		ErrorLog:    slog.NewLogLogger(p.cfg.Logger.Handler(), slog.LevelWarn),
	}
	srv := p.srv
	go srv.Serve(l)
	p.stopCtx = context.AfterFunc(ctx, func() { p.Close() })
	return nil
}

// URL returns the proxy's base URL, http://127.0.0.1:PORT, once Start
// returned; point clients at it (plus the upstream's API path, if any).
func (p *Proxy) URL() string {
	p.srvMu.Lock()
	defer p.srvMu.Unlock()
	return p.url
}

// Close stops serving: it closes the listener and every client connection
// (requests in flight fail) and the idle upstream connections.
func (p *Proxy) Close() error {
	p.srvMu.Lock()
	srv, stopCtx := p.srv, p.stopCtx
	p.srvMu.Unlock()
	var err error
	if srv != nil {
		stopCtx()
		err = srv.Close()
	}
	p.transport.CloseIdleConnections()
	return err
}

// SetEnabled turns fault injection on or off; off, every request is
// forwarded untouched (a harness's settling phase). Requests already in
// flight keep the faults they drew.
func (p *Proxy) SetEnabled(on bool) { p.enabled.Store(on) }

// Enabled reports whether faults are injected.
func (p *Proxy) Enabled() bool { return p.enabled.Load() }

// Stats returns the counts so far.
func (p *Proxy) Stats() Stats {
	return Stats{
		Requests:       p.requests.Load(),
		Forwarded:      p.forwarded.Load(),
		Rejected:       p.rejected.Load(),
		Reset:          p.reset.Load(),
		Delayed:        p.delayed.Load(),
		UpstreamErrors: p.upstreamErrors.Load(),
	}
}

// draw decides the faults of one request.
func (p *Proxy) draw() plan {
	p.mu.Lock()
	defer p.mu.Unlock()
	// Every request takes the same number of draws, so one fault's
	// probability does not shift the others' sequence.
	uDelay, uReject, uReset := p.rng.Float64(), p.rng.Float64(), p.rng.Float64()
	d1, d2 := p.rng.Int64N(int64(p.cfg.MaxDelay)+1), p.rng.Int64N(int64(p.cfg.MaxDelay)+1)
	var pl plan
	if uDelay < p.cfg.Delay {
		pl.delayed = true
		pl.delay = time.Duration(d1)
		if p.cfg.DelayResponse {
			pl.responseDelay = time.Duration(d2)
		}
	}
	pl.reject = uReject < p.cfg.Reject5xx
	pl.reset = !pl.reject && uReset < p.cfg.ResetAfter
	return pl
}

// ServeHTTP forwards r to the upstream, or injects the faults it draws.
func (p *Proxy) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	p.requests.Add(1)
	var pl plan
	if p.enabled.Load() && (p.cfg.Filter == nil || p.cfg.Filter(r)) {
		pl = p.draw()
	}
	if pl.delayed {
		p.delayed.Add(1)
		p.cfg.Logger.Debug("faultproxy delay", "method", r.Method, "path", r.URL.Path, "delay", pl.delay)
		if !sleep(r.Context(), pl.delay) {
			p.upstreamErrors.Add(1)
			return
		}
	}
	if pl.reject {
		p.rejected.Add(1)
		p.cfg.Logger.Debug("faultproxy reject", "method", r.Method, "path", r.URL.Path, "status", p.cfg.RejectStatus)
		p.writeReject(w, r)
		return
	}
	p.forwarded.Add(1)
	if pl.reset || pl.responseDelay > 0 {
		r = r.WithContext(context.WithValue(r.Context(), planKey{}, pl))
	}
	p.reverse.ServeHTTP(w, r)
}

func (p *Proxy) writeReject(w http.ResponseWriter, r *http.Request) {
	msg := fmt.Sprintf("faultproxy: injected %d %s", p.cfg.RejectStatus, http.StatusText(p.cfg.RejectStatus))
	var body any = map[string]string{"detail": msg}
	contentType := "application/json"
	if r.Header.Get("X-Amz-Target") != "" {
		body = map[string]string{"__type": "ServiceUnavailableException", "message": msg}
		contentType = "application/x-amz-json-1.1"
		if ct := r.Header.Get("Content-Type"); strings.HasPrefix(ct, "application/x-amz-json") {
			contentType = ct
		}
		w.Header().Set("X-Amzn-Errortype", "ServiceUnavailableException")
	}
	data, _ := json.Marshal(body)
	w.Header().Set("Content-Type", contentType)
	w.WriteHeader(p.cfg.RejectStatus)
	w.Write(data)
}

// modifyResponse applies a request's after-the-upstream faults.
func (p *Proxy) modifyResponse(resp *http.Response) error {
	pl, _ := resp.Request.Context().Value(planKey{}).(plan)
	if pl.reset {
		// Read the whole answer: the upstream has finished with the
		// request before the client loses it.
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		return errReset
	}
	if pl.responseDelay > 0 && !sleep(resp.Request.Context(), pl.responseDelay) {
		resp.Body.Close()
		return resp.Request.Context().Err()
	}
	return nil
}

// handleError resets the client's connection for a ResetAfter fault and
// answers 502 when the upstream failed.
func (p *Proxy) handleError(w http.ResponseWriter, r *http.Request, err error) {
	if errors.Is(err, errReset) {
		p.reset.Add(1)
		p.cfg.Logger.Debug("faultproxy reset", "method", r.Method, "path", r.URL.Path)
		resetConn(w)
		return
	}
	p.upstreamErrors.Add(1)
	if r.Context().Err() != nil {
		return // the client went away; nobody reads an answer
	}
	p.cfg.Logger.Warn("faultproxy upstream failed", "method", r.Method, "path", r.URL.Path, "err", err)
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(http.StatusBadGateway)
	data, _ := json.Marshal(map[string]string{"detail": "faultproxy: upstream: " + err.Error()})
	w.Write(data)
}

// resetConn takes the client's connection from the HTTP server and closes
// it with SO_LINGER 0, so the client reads a reset instead of an answer.
func resetConn(w http.ResponseWriter) {
	conn, _, err := http.NewResponseController(w).Hijack()
	if err != nil {
		// Not hijackable (HTTP/2, a test recorder): the closest is to
		// abort the handler, which drops the connection.
		panic(http.ErrAbortHandler)
	}
	if tcp, ok := conn.(*net.TCPConn); ok {
		tcp.SetLinger(0)
	}
	conn.Close()
}

// sleep waits d or until ctx ends, reporting whether it waited d.
func sleep(ctx context.Context, d time.Duration) bool {
	if d <= 0 {
		return true
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return true
	case <-ctx.Done():
		return false
	}
}
