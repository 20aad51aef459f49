package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/pushpool/pushpool/dispatch/prefect"
)

// buildApp builds the function app as it is deployed: the handler binary
// (static, named as host.json's defaultExecutablePath) beside host.json
// and the function folders. (The deployed one is linux/amd64; this one is
// for the machine running the test.)
func buildApp(t *testing.T) string {
	t.Helper()
	dir := t.TempDir()
	err := filepath.WalkDir("app", func(path string, d os.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		data, err := os.ReadFile(path)
		if err != nil {
			return err
		}
		dst := filepath.Join(dir, strings.TrimPrefix(path, "app"+string(filepath.Separator)))
		if err := os.MkdirAll(filepath.Dir(dst), 0o755); err != nil {
			return err
		}
		return os.WriteFile(dst, data, 0o644)
	})
	if err != nil {
		t.Fatalf("copy the app: %v", err)
	}
	var host struct {
		CustomHandler struct {
			Description struct {
				DefaultExecutablePath string `json:"defaultExecutablePath"`
			} `json:"description"`
		} `json:"customHandler"`
	}
	data, _ := os.ReadFile(filepath.Join(dir, "host.json"))
	if err := json.Unmarshal(data, &host); err != nil || host.CustomHandler.Description.DefaultExecutablePath != "handler" {
		t.Fatalf("host.json names executable %q (%v); want handler", host.CustomHandler.Description.DefaultExecutablePath, err)
	}
	// Every backend (-tags pushpool_all): the test serves a process pool.
	build := exec.CommandContext(t.Context(), "go", "build", "-tags", "pushpool_all", "-trimpath", "-ldflags=-s -w", "-o", filepath.Join(dir, "handler"), ".")
	build.Env = append(os.Environ(), "CGO_ENABLED=0")
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("build the handler: %v\n%s", err, out)
	}
	return dir
}

// startHandler starts the handler as the Functions host does: in the app's
// root, with the port and worker id it chose and the app settings.
func startHandler(t *testing.T, app string, settings map[string]string) (*exec.Cmd, string, *lockedBuffer) {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	port := strconv.Itoa(l.Addr().(*net.TCPAddr).Port)
	l.Close()
	cmd := exec.Command(filepath.Join(app, "handler"))
	cmd.Dir = app
	cmd.Env = []string{
		"PATH=" + os.Getenv("PATH"), "HOME=" + t.TempDir(),
		EnvPort + "=" + port, "FUNCTIONS_CUSTOMHANDLER_WORKER_ID=" + uuid.NewString(), EnvAppRoot + "=" + app,
		"FUNCTIONS_WORKER_RUNTIME=custom", "FUNCTIONS_EXTENSION_VERSION=~4", "WEBSITE_SITE_NAME=pushpool-fn",
	}
	for k, v := range settings {
		if k != EnvAppRoot {
			cmd.Env = append(cmd.Env, k+"="+v)
		}
	}
	logs := &lockedBuffer{}
	cmd.Stdout, cmd.Stderr = logs, logs
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = cmd.Process.Kill(); _ = cmd.Wait() })
	return cmd, "http://127.0.0.1:" + port, logs
}

// TestHandler_servesTheHostOverHTTP runs the built handler as the
// Functions host would: it waits for the handler to answer on
// FUNCTIONS_CUSTOMHANDLER_PORT, posts a timer invocation that dispatches a
// real due run, and stops it with SIGTERM.
func TestHandler_servesTheHostOverHTTP(t *testing.T) {
	s := newStack(t, 20)
	app := buildApp(t)
	cmd, base, logs := startHandler(t, app, s.env)
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()

	// The host's readiness check: any HTTP answer on the port.
	client := &http.Client{Timeout: 90 * time.Second}
	deadline := time.Now().Add(30 * time.Second)
	for {
		resp, err := client.Get(base + "/")
		if err == nil {
			resp.Body.Close()
			break
		}
		select {
		case err := <-exited:
			t.Fatalf("the handler exited before it listened (%v):\n%s", err, logs)
		case <-time.After(100 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			t.Fatalf("the handler did not listen within 30s:\n%s", logs)
		}
	}

	run := s.run(time.Now())
	req, _ := http.NewRequest(http.MethodPost, base+"/"+fnTick, bytes.NewReader(testdata(t, "timer-trigger.json")))
	req.Header.Set("Content-Type", "application/json; charset=utf-8")
	req.Header.Set("X-Azure-Functions-InvocationId", uuid.NewString())
	req.Header.Set("X-Azure-Functions-HostVersion", "4.1037.0.0")
	req.Header.Set("User-Agent", "Azure-Functions-Host/4.1037.0.0")
	resp, err := client.Do(req)
	if err != nil {
		t.Fatalf("tick invocation: %v\nhandler logs:\n%s", err, logs)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	var r reply
	if resp.StatusCode != http.StatusOK || json.Unmarshal(body, &r) != nil {
		t.Fatalf("tick invocation: %d %s\nhandler logs:\n%s", resp.StatusCode, body, logs)
	}
	if p := tickOf(t, r).Pools[0]; p.Outcomes["submitted"] != 1 {
		t.Fatalf("tick reply %s; want one run submitted\nhandler logs:\n%s", body, logs)
	}
	if got := s.read(run.ID); got.InfrastructurePID == nil || *got.StateType != prefect.StatePending || len(s.started(30*time.Second, run.ID)[run.ID]) != 1 {
		t.Fatalf("run after the tick: %s, pid %v; want PENDING with its one process recorded", *got.StateType, got.InfrastructurePID)
	}

	if err := cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-exited:
		if err != nil {
			t.Errorf("the handler exited with %v on SIGTERM; want 0\n%s", err, logs)
		}
	case <-time.After(30 * time.Second):
		t.Errorf("the handler did not stop within 30s of SIGTERM")
	}
}

// TestHandler_refusesUnresolvedKeyVaultReferences: a secret setting the
// platform left as a Key Vault reference stops the handler at start, with
// an error line the host logs as an error.
func TestHandler_refusesUnresolvedKeyVaultReferences(t *testing.T) {
	app := buildApp(t)
	cmd, _, logs := startHandler(t, app, map[string]string{
		"PREFECT_API_URL": "https://prefect.example.com/api",
		"PREFECT_API_KEY": "@Microsoft.KeyVault(SecretUri=https://pushpool-kv.vault.azure.net/secrets/prefect-api-key/)",
		"PUSHPOOL_POOLS":  "aci", EnvQueue: "pushpool-wake", EnvStorage: "UseDevelopmentStorage=true",
	})
	ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
	defer cancel()
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	select {
	case err := <-done:
		var exit *exec.ExitError
		if !errors.As(err, &exit) || exit.ExitCode() != 1 {
			t.Errorf("handler exited with %v; want exit status 1", err)
		}
	case <-ctx.Done():
		t.Fatalf("the handler kept running with an unresolved Key Vault reference:\n%s", logs)
	}
	if out := logs.String(); !strings.Contains(out, "pushpool: error: app setting PREFECT_API_KEY is a Key Vault reference") {
		t.Errorf("handler output %q; want the error naming PREFECT_API_KEY", out)
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
