// Package lambdaruntime is a loopback implementation of the AWS Lambda
// Runtime API, speaking its wire format, so the real function bootstrap
// can be run and invoked without Lambda (the bootstrap test, make bench).
package lambdaruntime

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"time"
)

// Server is a loopback Lambda Runtime API (2018-06-01), the interface a
// provided.al2023 bootstrap polls: it hands out queued invocations with
// Lambda's headers and collects their responses and errors.
type Server struct {
	addr   string
	srv    *http.Server
	events chan invocation

	mu        sync.Mutex
	replies   map[string]chan Reply
	initErrs  []string
	firstPoll time.Time
}

type invocation struct {
	id       string
	payload  []byte
	deadline time.Time
}

// Reply is what the function answered to an invocation.
type Reply struct {
	// Status is "response" or "error".
	Status  string
	Payload []byte
}

const runtimePrefix = "/2018-06-01/runtime/"

// Start serves a Runtime API on a loopback port until Close.
func Start(ctx context.Context, logger *slog.Logger) (*Server, error) {
	var lc net.ListenConfig
	l, err := lc.Listen(ctx, "tcp", "127.0.0.1:0")
	if err != nil {
		return nil, fmt.Errorf("Lambda Runtime API: listen: %w", err)
	}
	r := &Server{addr: l.Addr().String(), events: make(chan invocation, 1), replies: map[string]chan Reply{}}
	r.srv = &http.Server{Handler: r, ReadHeaderTimeout: 10 * time.Second, ErrorLog: slog.NewLogLogger(logger.Handler(), slog.LevelWarn)}
	go func() {
		if err := r.srv.Serve(l); err != nil && !errors.Is(err, http.ErrServerClosed) {
			logger.Warn("Lambda Runtime API stopped", "error", err)
		}
	}()
	return r, nil
}

// Addr is the host:port the function's AWS_LAMBDA_RUNTIME_API names.
func (r *Server) Addr() string { return r.addr }

// Close stops serving.
func (r *Server) Close() { _ = r.srv.Close() }

// ServeHTTP implements the Runtime API's routes: next, response, error
// and init/error.
func (r *Server) ServeHTTP(w http.ResponseWriter, req *http.Request) {
	path := strings.TrimPrefix(req.URL.Path, runtimePrefix)
	switch {
	case req.Method == http.MethodGet && path == "invocation/next":
		r.mu.Lock()
		if r.firstPoll.IsZero() {
			r.firstPoll = time.Now()
		}
		r.mu.Unlock()
		select {
		case inv := <-r.events:
			h := w.Header()
			h.Set("Lambda-Runtime-Aws-Request-Id", inv.id)
			h.Set("Lambda-Runtime-Deadline-Ms", strconv.FormatInt(inv.deadline.UnixMilli(), 10))
			h.Set("Lambda-Runtime-Invoked-Function-Arn", "arn:aws:lambda:us-east-1:123456789012:function:pushpool")
			h.Set("Lambda-Runtime-Trace-Id", "Root=1-5e6722a7-cc56xmpl46db7ae02d4da47e;Parent=0;Sampled=0")
			h.Set("Content-Type", "application/json")
			_, _ = w.Write(inv.payload)
		case <-req.Context().Done():
		}
	case req.Method == http.MethodPost && path == "init/error":
		b, _ := io.ReadAll(req.Body)
		r.mu.Lock()
		r.initErrs = append(r.initErrs, string(b))
		r.mu.Unlock()
		w.WriteHeader(http.StatusAccepted)
	case req.Method == http.MethodPost && strings.HasPrefix(path, "invocation/"):
		id, kind, ok := strings.Cut(strings.TrimPrefix(path, "invocation/"), "/")
		if !ok || (kind != "response" && kind != "error") {
			http.Error(w, "unknown route", http.StatusNotFound)
			return
		}
		b, _ := io.ReadAll(req.Body)
		r.mu.Lock()
		ch := r.replies[id]
		delete(r.replies, id)
		r.mu.Unlock()
		if ch == nil {
			http.Error(w, "unknown invocation", http.StatusBadRequest)
			return
		}
		ch <- Reply{Status: kind, Payload: b}
		w.WriteHeader(http.StatusAccepted)
	default:
		http.Error(w, "unknown route", http.StatusNotFound)
	}
}

// Invoke queues an invocation with a deadline timeout from now and waits
// for its reply, for the function's process to exit (exited closes; nil
// when not watched), or for ctx.
func (r *Server) Invoke(ctx context.Context, id string, payload []byte, timeout time.Duration, exited <-chan struct{}) (Reply, error) {
	ch := make(chan Reply, 1)
	r.mu.Lock()
	r.replies[id] = ch
	r.mu.Unlock()
	inv := invocation{id: id, payload: payload, deadline: time.Now().Add(timeout)}
	late := time.NewTimer(timeout + 10*time.Second)
	defer late.Stop()
	select {
	case r.events <- inv:
	case <-exited:
		return Reply{}, fmt.Errorf("the function exited before it took invocation %s (init errors: %v)", id, r.initErrors())
	case <-ctx.Done():
		return Reply{}, ctx.Err()
	}
	select {
	case got := <-ch:
		return got, nil
	case <-exited:
		return Reply{}, fmt.Errorf("the function exited during invocation %s (init errors: %v)", id, r.initErrors())
	case <-late.C:
		return Reply{}, fmt.Errorf("invocation %s: no reply %s after its deadline", id, 10*time.Second)
	case <-ctx.Done():
		return Reply{}, ctx.Err()
	}
}

// FirstPoll is when the function first asked for an invocation (its init
// done, the handler ready), or zero before then.
func (r *Server) FirstPoll() time.Time {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.firstPoll
}

func (r *Server) initErrors() []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]string(nil), r.initErrs...)
}
