package main

import (
	"context"
	"encoding/json"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/pushpool/pushpool/dispatch/prefect"
	"github.com/pushpool/pushpool/functions/internal/fnapp"
	"github.com/pushpool/pushpool/internal/lambdaruntime"
)

// invokeBootstrap sends one invocation through the Runtime API and waits
// for the bootstrap's reply.
func invokeBootstrap(t *testing.T, rt *lambdaruntime.Server, id string, payload []byte, timeout time.Duration) lambdaruntime.Reply {
	t.Helper()
	got, err := rt.Invoke(t.Context(), id, payload, timeout, nil)
	if err != nil {
		t.Fatalf("invocation %s: %v", id, err)
	}
	return got
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

	rt, err := lambdaruntime.Start(t.Context(), slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(rt.Close)

	ctx, cancel := context.WithCancel(t.Context())
	defer cancel()
	cmd := exec.CommandContext(ctx, bin)
	cmd.Env = []string{
		"AWS_LAMBDA_RUNTIME_API=" + rt.Addr(),
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
	got := invokeBootstrap(t, rt, "8476a536-e9f4-11e8-9739-2dfe598c3fcd", testdata(t, "scheduler-tick.json"), 60*time.Second)
	if got.Status != "response" {
		t.Fatalf("tick invocation: %s %s\nbootstrap logs:\n%s", got.Status, got.Payload, logs)
	}
	var tr fnapp.TickReply
	if err := json.Unmarshal(got.Payload, &tr); err != nil || len(tr.Pools) != 1 || tr.Pools[0].Outcomes["submitted"] != 1 {
		t.Fatalf("tick reply %s (%v); want one run submitted\nbootstrap logs:\n%s", got.Payload, err, logs)
	}
	r := s.read(run.ID)
	if r.InfrastructurePID == nil || *r.StateType != prefect.StatePending || len(s.tasks(run.ID)) != 1 {
		t.Fatalf("run after the tick: %s, pid %v, tasks %v; want PENDING with its one task recorded", *r.StateType, r.InfrastructurePID, s.tasks(run.ID))
	}

	got = invokeBootstrap(t, rt, "9bd2c2a1-e9f4-11e8-9739-2dfe598c3fcd", withBody(t, "function-url-request.json", []byte(`{"flow_run_id":"`+run.ID+`"}`)), 30*time.Second)
	var resp struct {
		StatusCode int `json:"statusCode"`
	}
	if err := json.Unmarshal(got.Payload, &resp); err != nil || got.Status != "response" || resp.StatusCode != 401 {
		t.Errorf("unsigned webhook through the bootstrap: %s %s; want a 401 response", got.Status, got.Payload)
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
