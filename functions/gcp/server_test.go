package main

import (
	"bytes"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// buildServer builds the function as a container image would hold it
// (linux, CGO off) and returns the binary's path.
func buildServer(t *testing.T) string {
	t.Helper()
	bin := filepath.Join(t.TempDir(), "pushpool-gcp")
	build := exec.CommandContext(t.Context(), "go", "build", "-trimpath", "-o", bin, ".")
	build.Env = append(os.Environ(), "CGO_ENABLED=0")
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("build the function: %v\n%s", err, out)
	}
	return bin
}

func freePort(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return fmt.Sprint(ln.Addr().(*net.TCPAddr).Port)
}

// TestServer_servesOnPort runs the built function as Cloud Run does: the
// environment, $PORT, SIGTERM to stop. A Cloud Scheduler tick dispatches a
// due run onto Cloud Run (the fake), an unsigned webhook gets 401 from the
// same process, and SIGTERM ends it cleanly. A wrong setting stops it at
// start, naming the variable.
func TestServer_servesOnPort(t *testing.T) {
	t.Parallel()
	s := newStack(t, 20)
	bin := buildServer(t)

	port := freePort(t)
	s.url = "http://127.0.0.1:" + port
	s.env[EnvSelfURL] = s.url
	cmd := exec.Command(bin)
	cmd.Env = []string{"PORT=" + port, "HOME=" + t.TempDir(), "K_SERVICE=pushpool", "K_REVISION=pushpool-00001-abc", "K_CONFIGURATION=pushpool"}
	for k, v := range s.env {
		cmd.Env = append(cmd.Env, k+"="+v)
	}
	logs := &lockedBuffer{}
	cmd.Stdout, cmd.Stderr = logs, logs
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	t.Cleanup(func() { _ = cmd.Process.Kill() })
	deadline := time.Now().Add(30 * time.Second)
	for {
		c, err := net.Dial("tcp", "127.0.0.1:"+port)
		if err == nil {
			c.Close()
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the function is not listening on $PORT=%s after 30s\nlogs:\n%s", port, logs)
		}
		time.Sleep(100 * time.Millisecond)
	}

	run := s.flowRun(time.Now())
	code, reply := s.tick("eventarc-binary-scheduler-tick.json")
	if p := pool(t, reply); code != 200 || count(p, "outcomes", "submitted") != 1 {
		t.Fatalf("tick: status %d %v; want the due run submitted\nlogs:\n%s", code, reply, logs)
	}
	s.startedOnce(run.ID)

	req, _ := http.NewRequestWithContext(t.Context(), http.MethodPost, s.url+"/webhook", strings.NewReader(`{"flow_run_id":"`+run.ID+`"}`))
	if code, reply := s.do(req); code != 401 {
		t.Errorf("unsigned webhook: status %d %v; want 401", code, reply)
	}
	if !strings.Contains(logs.String(), `"severity":"INFO"`) || !strings.Contains(logs.String(), `"message":"tick"`) {
		t.Errorf("logs are not Cloud Logging structured entries (severity, message):\n%s", logs)
	}
	if strings.Contains(logs.String(), webhookSecret) {
		t.Errorf("the logs hold the webhook secret:\n%s", logs)
	}

	if err := cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-exited:
		if err != nil {
			t.Errorf("exit after SIGTERM: %v\nlogs:\n%s", err, logs)
		}
	case <-time.After(10 * time.Second):
		t.Errorf("still running 10s after SIGTERM (Cloud Run kills it then)")
	}

	// A wrong setting: the start fails at once with the variable named.
	bad := exec.Command(bin)
	bad.Env = append(slicesWithout(cmd.Env, EnvTopic), EnvTopic+"=pushpool-fanout")
	out, err := bad.CombinedOutput()
	if code := bad.ProcessState.ExitCode(); err == nil || code != 1 || !bytes.Contains(out, []byte("pushpool: "+EnvTopic)) {
		t.Errorf("start with a short topic name: exit %d, output %q; want exit 1 naming %s", code, out, EnvTopic)
	}
}

func slicesWithout(env []string, name string) []string {
	var out []string
	for _, kv := range env {
		if !strings.HasPrefix(kv, name+"=") {
			out = append(out, kv)
		}
	}
	return out
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
