package main

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httputil"
	"net/url"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// countingProxy is a reverse proxy to one upstream that counts every
// request by a key (a Prefect route or an AWS action) and remembers when
// the last one arrived. Websocket upgrades pass through (Prefect's events
// client), each counted once. One proxy serves one contender, so its counts
// are that contender's alone.
type countingProxy struct {
	name     string
	classify func(*http.Request) string
	reverse  *httputil.ReverseProxy
	counts   counter
	last     atomic.Int64 // unix nanoseconds of the last request
	url      string
	srv      *http.Server

	hookMu sync.Mutex
	hooks  []*hook
}

// hook runs fn once, synchronously, before the first request whose key
// matches is counted.
type hook struct {
	match func(key string) bool
	once  sync.Once
	fn    func()
}

// newCountingProxy starts a proxy to upstream on a loopback port until ctx
// ends or close is called. classify names each request.
func newCountingProxy(ctx context.Context, name, upstream string, classify func(*http.Request) string, logger *slog.Logger) (*countingProxy, error) {
	target, err := url.Parse(upstream)
	if err != nil {
		return nil, fmt.Errorf("%s proxy: upstream %q: %w", name, upstream, err)
	}
	p := &countingProxy{name: name, classify: classify}
	transport := &http.Transport{
		Proxy:               nil,
		DialContext:         (&net.Dialer{Timeout: 10 * time.Second, KeepAlive: 30 * time.Second}).DialContext,
		MaxIdleConns:        1024,
		MaxIdleConnsPerHost: 1024,
		// Under uvicorn's keep-alive (localstack sets 120 s for Prefect;
		// moto's werkzeug closes after each answer anyway).
		IdleConnTimeout:       4 * time.Second,
		ResponseHeaderTimeout: 10 * time.Minute,
	}
	p.reverse = &httputil.ReverseProxy{
		Rewrite: func(pr *httputil.ProxyRequest) {
			pr.SetURL(target)
			pr.Out.Host = pr.In.Host // as the client signed it (SigV4)
		},
		Transport:     transport,
		FlushInterval: -1,
		ErrorLog:      slog.NewLogLogger(logger.Handler(), slog.LevelWarn),
	}
	var lc net.ListenConfig
	l, err := lc.Listen(ctx, "tcp", "127.0.0.1:0")
	if err != nil {
		return nil, fmt.Errorf("%s proxy: listen: %w", name, err)
	}
	p.url = "http://" + l.Addr().String()
	p.srv = &http.Server{Handler: p, ReadHeaderTimeout: 30 * time.Second, IdleTimeout: 120 * time.Second,
		ErrorLog: slog.NewLogLogger(logger.Handler(), slog.LevelWarn)}
	go func() {
		if err := p.srv.Serve(l); err != nil && !errors.Is(err, http.ErrServerClosed) {
			logger.Warn("proxy stopped", "proxy", name, "error", err)
		}
	}()
	context.AfterFunc(ctx, func() { p.close() })
	return p, nil
}

// onFirst registers fn to run, once, before the first request whose key
// matches is counted.
func (p *countingProxy) onFirst(match func(key string) bool, fn func()) {
	p.hookMu.Lock()
	p.hooks = append(p.hooks, &hook{match: match, fn: fn})
	p.hookMu.Unlock()
}

// ServeHTTP counts the request and forwards it.
func (p *countingProxy) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	key := p.classify(r)
	p.hookMu.Lock()
	hooks := p.hooks
	p.hookMu.Unlock()
	for _, h := range hooks {
		if h.match(key) {
			h.once.Do(h.fn)
		}
	}
	p.counts.add(key)
	p.last.Store(time.Now().UnixNano())
	p.reverse.ServeHTTP(w, r)
	p.last.Store(time.Now().UnixNano())
}

// lastRequest is when the last request arrived or was answered; zero
// before any.
func (p *countingProxy) lastRequest() time.Time {
	n := p.last.Load()
	if n == 0 {
		return time.Time{}
	}
	return time.Unix(0, n)
}

// close stops serving.
func (p *countingProxy) close() {
	_ = p.srv.Close()
}

// classifyPrefect names a request to the Prefect API by its route.
func classifyPrefect(r *http.Request) string {
	return prefectRoute(r.Method, r.URL.Path, strings.EqualFold(r.Header.Get("Upgrade"), "websocket"))
}

// classifyAWS names a request to AWS by its service and action, reading
// (and restoring) a form body for the query protocol.
func classifyAWS(r *http.Request) string {
	var body []byte
	if r.Header.Get("X-Amz-Target") == "" && r.Body != nil &&
		strings.HasPrefix(r.Header.Get("Content-Type"), "application/x-www-form-urlencoded") {
		data, err := io.ReadAll(r.Body)
		r.Body.Close()
		if err == nil {
			body = data
		}
		r.Body = io.NopCloser(bytes.NewReader(data))
	}
	return awsAction(r.Header.Get("Authorization"), r.Header.Get("X-Amz-Target"), r.URL.RawQuery, body)
}
