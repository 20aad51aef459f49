package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/pushpool/pushpool/dispatch/prefect"
	"github.com/pushpool/pushpool/functions/internal/fnapp"
)

// runtimeAPI is a loopback implementation of the Lambda Runtime API
// (2018-06-01), the interface a provided.al2023 bootstrap polls: it hands
// out queued invocations and collects their responses and errors.
type runtimeAPI struct {
	events   chan invocation
	mu       sync.Mutex
	replies  map[string]runtimeReply
	replied  chan string
	initErrs []string
}

type invocation struct {
	id       string
	payload  []byte
	deadline time.Time
}

type runtimeReply struct {
	status  string // "response" or "error"
	payload []byte
}

func newRuntimeAPI() *runtimeAPI {
	return &runtimeAPI{events: make(chan invocation, 8), replies: map[string]runtimeReply{}, replied: make(chan string, 8)}
}

func (r *runtimeAPI) ServeHTTP(w http.ResponseWriter, req *http.Request) {
	const prefix = "/2018-06-01/runtime/"
	switch {
	case req.Method == http.MethodGet && req.URL.Path == prefix+"invocation/next":
		select {
		case inv := <-r.events:
			h := w.Header()
			h.Set("Lambda-Runtime-Aws-Request-Id", inv.id)
			h.Set("Lambda-Runtime-Deadline-Ms", strconv.FormatInt(inv.deadline.UnixMilli(), 10))
			h.Set("Lambda-Runtime-Invoked-Function-Arn", "arn:aws:lambda:us-east-1:123456789012:function:pushpool")
			h.Set("Lambda-Runtime-Trace-Id", "Root=1-5e6722a7-cc56xmpl46db7ae02d4da47e;Parent=0;Sampled=0")
			w.Header().Set("Content-Type", "application/json")
			_, _ = w.Write(inv.payload)
		case <-req.Context().Done():
		}
	case req.Method == http.MethodPost && req.URL.Path == prefix+"init/error":
		b, _ := io.ReadAll(req.Body)
		r.mu.Lock()
		r.initErrs = append(r.initErrs, string(b))
		r.mu.Unlock()
		w.WriteHeader(http.StatusAccepted)
	case req.Method == http.MethodPost:
		var id, kind string
		if _, err := fmt.Sscanf(req.URL.Path[len(prefix):], "invocation/%36s", &id); err != nil {
			http.Error(w, "bad path", http.StatusNotFound)
			return
		}
		kind = filepath.Base(req.URL.Path)
		b, _ := io.ReadAll(req.Body)
		r.mu.Lock()
		r.replies[id] = runtimeReply{status: kind, payload: b}
		r.mu.Unlock()
		w.WriteHeader(http.StatusAccepted)
		r.replied <- id
	default:
		http.Error(w, "unknown route", http.StatusNotFound)
	}
}

// invoke queues an invocation and waits for its reply.
func (r *runtimeAPI) invoke(t *testing.T, id string, payload []byte, timeout time.Duration) runtimeReply {
	t.Helper()
	r.events <- invocation{id: id, payload: payload, deadline: time.Now().Add(timeout)}
	deadline := time.After(timeout + 10*time.Second)
	for {
		select {
		case got := <-r.replied:
			if got == id {
				r.mu.Lock()
				defer r.mu.Unlock()
				return r.replies[id]
			}
		case <-deadline:
			r.mu.Lock()
			defer r.mu.Unlock()
			t.Fatalf("invocation %s: no reply from the bootstrap (init errors: %v)", id, r.initErrs)
		}
	}
}

// TestBootstrap_dispatchesADueRun builds the function as Lambda runs it
// (linux, -tags lambda.norpc, a binary named bootstrap) and runs it against
// a loopback Runtime API: a scheduler tick dispatches a real due run to ECS
// in moto, and an unsigned webhook gets 401 from the same process.
func TestBootstrap_dispatchesADueRun(t *testing.T) {
	s := newStack(t, 20)
	bin := filepath.Join(t.TempDir(), "bootstrap")
	build := exec.CommandContext(t.Context(), "go", "build", "-tags", "lambda.norpc", "-trimpath", "-o", bin, ".")
	build.Env = append(os.Environ(), "CGO_ENABLED=0")
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("build the bootstrap: %v\n%s", err, out)
	}

	rt := newRuntimeAPI()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	hs := &http.Server{Handler: rt}
	go func() { _ = hs.Serve(ln) }()
	t.Cleanup(func() { _ = hs.Close() })

	ctx, cancel := context.WithCancel(t.Context())
	defer cancel()
	cmd := exec.CommandContext(ctx, bin)
	cmd.Env = []string{
		"AWS_LAMBDA_RUNTIME_API=" + ln.Addr().String(),
		"_HANDLER=bootstrap", "AWS_LAMBDA_FUNCTION_NAME=pushpool", "AWS_LAMBDA_FUNCTION_VERSION=$LATEST",
		"AWS_LAMBDA_FUNCTION_MEMORY_SIZE=512", "AWS_REGION=us-east-1", "AWS_DEFAULT_REGION=us-east-1",
		"AWS_ACCESS_KEY_ID=test", "AWS_SECRET_ACCESS_KEY=test", "HOME=" + t.TempDir(),
	}
	for k, v := range s.env {
		cmd.Env = append(cmd.Env, k+"="+v)
	}
	logs := &lockedBuffer{}
	cmd.Stdout, cmd.Stderr = logs, logs
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cancel(); _ = cmd.Wait() })

	run := s.run(time.Now())
	got := rt.invoke(t, "8476a536-e9f4-11e8-9739-2dfe598c3fcd", testdata(t, "scheduler-tick.json"), 60*time.Second)
	if got.status != "response" {
		t.Fatalf("tick invocation: %s %s\nbootstrap logs:\n%s", got.status, got.payload, logs)
	}
	var tr fnapp.TickReply
	if err := json.Unmarshal(got.payload, &tr); err != nil || len(tr.Pools) != 1 || tr.Pools[0].Outcomes["submitted"] != 1 {
		t.Fatalf("tick reply %s (%v); want one run submitted\nbootstrap logs:\n%s", got.payload, err, logs)
	}
	r := s.read(run.ID)
	if r.InfrastructurePID == nil || *r.StateType != prefect.StatePending || len(s.tasks(run.ID)) != 1 {
		t.Fatalf("run after the tick: %s, pid %v, tasks %v; want PENDING with its one task recorded", *r.StateType, r.InfrastructurePID, s.tasks(run.ID))
	}

	got = rt.invoke(t, "9bd2c2a1-e9f4-11e8-9739-2dfe598c3fcd", withBody(t, "function-url-request.json", []byte(`{"flow_run_id":"`+run.ID+`"}`)), 30*time.Second)
	var resp struct {
		StatusCode int `json:"statusCode"`
	}
	if err := json.Unmarshal(got.payload, &resp); err != nil || got.status != "response" || resp.StatusCode != 401 {
		t.Errorf("unsigned webhook through the bootstrap: %s %s; want a 401 response", got.status, got.payload)
	}
}

type lockedBuffer struct {
	mu sync.Mutex
	b  []byte
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.b = append(l.b, p...)
	return len(p), nil
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return string(l.b)
}
