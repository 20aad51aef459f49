package main

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/http/httputil"
	"net/url"
	"regexp"
	"strings"
	"sync"
	"time"
)

// proxy is a reverse proxy to the Prefect server that counts the requests
// by route and the answers a client retries (408, 429, 5xx).
type proxy struct {
	url string
	srv *http.Server

	mu        sync.Mutex
	counts    map[string]int
	retryable map[string]int // by route and status
}

// newProxy starts a proxy to upstream (an API URL ending in /api) on a
// loopback port; url is the proxied API URL.
func newProxy(ctx context.Context, upstream string) (*proxy, error) {
	target, err := url.Parse(upstream)
	if err != nil {
		return nil, fmt.Errorf("proxy upstream %q: %w", upstream, err)
	}
	p := &proxy{counts: map[string]int{}, retryable: map[string]int{}}
	rp := &httputil.ReverseProxy{
		Rewrite: func(pr *httputil.ProxyRequest) {
			pr.SetURL(&url.URL{Scheme: target.Scheme, Host: target.Host})
		},
		// Idle connections are dropped before uvicorn's keep-alive (5 s)
		// closes them, so a reused one is never reset under a request.
		Transport: &http.Transport{MaxIdleConnsPerHost: 256, IdleConnTimeout: 4 * time.Second},
		ModifyResponse: func(resp *http.Response) error {
			if resp.StatusCode == http.StatusRequestTimeout || resp.StatusCode == http.StatusTooManyRequests || resp.StatusCode >= 500 {
				p.mu.Lock()
				p.retryable[fmt.Sprintf("%s %s: %d", resp.Request.Method, route(strings.TrimPrefix(resp.Request.URL.Path, target.Path)), resp.StatusCode)]++
				p.mu.Unlock()
			}
			return nil
		},
		ErrorHandler: func(w http.ResponseWriter, r *http.Request, err error) {
			p.mu.Lock()
			p.retryable[fmt.Sprintf("%s %s: %v", r.Method, route(strings.TrimPrefix(r.URL.Path, target.Path)), err)]++
			p.mu.Unlock()
			http.Error(w, err.Error(), http.StatusBadGateway)
		},
	}
	var lc net.ListenConfig
	l, err := lc.Listen(ctx, "tcp", "127.0.0.1:0")
	if err != nil {
		return nil, fmt.Errorf("proxy: listen: %w", err)
	}
	p.url = "http://" + l.Addr().String() + target.Path
	p.srv = &http.Server{ReadHeaderTimeout: 30 * time.Second, Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		key := r.Method + " " + route(strings.TrimPrefix(r.URL.Path, target.Path))
		p.mu.Lock()
		p.counts[key]++
		p.mu.Unlock()
		rp.ServeHTTP(w, r)
	})}
	go func() {
		if err := p.srv.Serve(l); err != nil && !errors.Is(err, http.ErrServerClosed) {
			fmt.Println("providerbench: proxy stopped:", err)
		}
	}()
	return p, nil
}

// reset forgets the counts.
func (p *proxy) reset() {
	p.mu.Lock()
	p.counts, p.retryable = map[string]int{}, map[string]int{}
	p.mu.Unlock()
}

// snapshot returns the request counts and the retryable answers since the
// last reset.
func (p *proxy) snapshot() (counts, retryable map[string]int) {
	p.mu.Lock()
	defer p.mu.Unlock()
	return clone(p.counts), clone(p.retryable)
}

func clone(m map[string]int) map[string]int {
	out := make(map[string]int, len(m))
	for k, v := range m {
		out[k] = v
	}
	return out
}

func (p *proxy) close() { _ = p.srv.Close() }

var uuidSegment = regexp.MustCompile(`^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$`)

// route names a request path by its route: ids and names become {id} and
// {name}.
func route(path string) string {
	segs := strings.Split(strings.Trim(path, "/"), "/")
	literal := map[string]bool{"filter": true, "count": true, "paginate": true, "name": true, "slug": true,
		"queues": true, "schedules": true, "increment": true, "decrement": true, "tag": true}
	for i, s := range segs {
		prev := ""
		if i > 0 {
			prev = segs[i-1]
		}
		switch {
		case uuidSegment.MatchString(s):
			segs[i] = "{id}"
		case literal[s]:
		case prev == "work_pools" || prev == "queues" || prev == "name" || prev == "slug" || prev == "{name}" && i >= 2 && segs[i-2] == "name" ||
			prev == "concurrency_limits" || prev == "tag":
			segs[i] = "{name}"
		}
	}
	return "/" + strings.Join(segs, "/")
}
