package process_test

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/pushpool/pushpool/dispatch"
	"github.com/pushpool/pushpool/dispatch/backend/process"
)

func newBackend(t *testing.T, dir string) *process.Backend {
	t.Helper()
	b, err := process.New(process.Config{StateDir: dir, StopGrace: 2 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(b.Wait)
	return b
}

func job(id, command string, env map[string]any) dispatch.Job {
	return dispatch.Job{FlowRunID: id, Attempt: dispatch.Attempt{FlowRunID: id, ClaimID: "claim-1"}, WorkPool: "p", WorkPoolType: process.PoolType,
		Configuration: map[string]any{"command": command, "env": env, "stream_output": false}}
}

// waitExited polls Status until the process has exited.
func waitExited(t *testing.T, b *process.Backend, id string) dispatch.Status {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), 20*time.Second)
	defer cancel()
	for {
		st, err := b.Status(ctx, id)
		if err != nil {
			t.Fatalf("status of %s: %v", id, err)
		}
		if st.State == dispatch.StateExited {
			return st
		}
		select {
		case <-ctx.Done():
			t.Fatalf("%s did not exit; last state %s", id, st.State)
		case <-time.After(20 * time.Millisecond):
		}
	}
}

func TestBackend_Start_isIdempotentPerAttemptAcrossDispatchers(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	starts := filepath.Join(dir, "starts")
	// Four dispatchers on one host share the state directory and start the
	// same attempt at once.
	backends := []*process.Backend{newBackend(t, dir), newBackend(t, dir), newBackend(t, dir), newBackend(t, dir)}
	j := job("0b6a2d5e-run", `sh -c 'echo started >> "$STARTS"'`, map[string]any{"STARTS": starts})
	ids := make([]string, len(backends)*2)
	var wg sync.WaitGroup
	for i := range ids {
		wg.Go(func() {
			id, err := backends[i%len(backends)].Start(t.Context(), j)
			if err != nil {
				t.Errorf("submit %d: %v", i, err)
			}
			ids[i] = id
		})
	}
	wg.Wait()
	for _, id := range ids[1:] {
		if id != ids[0] {
			t.Fatalf("submissions returned different ids %v; want one process", ids)
		}
	}
	for _, b := range backends {
		b.Wait()
	}
	data, _ := os.ReadFile(starts)
	if n := strings.Count(string(data), "started"); n != 1 {
		t.Fatalf("the command ran %d times, want once", n)
	}
}

func TestBackend_Status(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name     string
		command  string
		kill     bool
		wantCode int
	}{
		{"success", "true", false, 0},
		{"failure", "sh -c 'exit 3'", false, 3},
		{"killed", "sleep 30", true, 137},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			b := newBackend(t, t.TempDir())
			id, err := b.Start(t.Context(), job("run-"+tt.name, tt.command, nil))
			if err != nil {
				t.Fatal(err)
			}
			if tt.kill {
				pid, _ := strconv.Atoi(id[strings.LastIndexByte(id, ':')+1:])
				if st, _ := b.Status(t.Context(), id); st.State != dispatch.StateRunning {
					t.Fatalf("state before kill = %s, want RUNNING", st.State)
				}
				syscall.Kill(pid, syscall.SIGKILL)
			}
			st := waitExited(t, b, id)
			if st.ExitCode != tt.wantCode {
				t.Errorf("exit code = %d (%s), want %d", st.ExitCode, st.Reason, tt.wantCode)
			}
		})
	}
}

func TestBackend_Stop(t *testing.T) {
	t.Parallel()
	b := newBackend(t, t.TempDir())
	// The child ignores nothing; its own child must go too (process group).
	id, err := b.Start(t.Context(), job("run-stop", "sh -c 'sleep 60 & sleep 60; wait'", nil))
	if err != nil {
		t.Fatal(err)
	}
	if err := b.Stop(t.Context(), id); err != nil {
		t.Fatalf("stop: %v", err)
	}
	st := waitExited(t, b, id)
	if st.ExitCode != 128+int(syscall.SIGTERM) {
		t.Errorf("exit code after stop = %d, want 143 (SIGTERM)", st.ExitCode)
	}
	if err := b.Stop(t.Context(), id); err != nil {
		t.Errorf("stopping a stopped process: %v, want nil", err)
	}
}

func TestBackend_unknownInfrastructure(t *testing.T) {
	t.Parallel()
	b := newBackend(t, t.TempDir())
	host, _ := os.Hostname()
	gone := host + ":999999999"
	if st, err := b.Status(t.Context(), gone); err != nil || st.State != dispatch.StateNotFound {
		t.Errorf("status of a missing process = %+v, %v; want NOT_FOUND", st, err)
	}
	if err := b.Stop(t.Context(), gone); err != nil {
		t.Errorf("stop of a missing process = %v, want nil", err)
	}
	if _, err := b.Status(t.Context(), "another-host:1"); err == nil || !strings.Contains(err.Error(), "another-host") {
		t.Errorf("status of another host's process = %v, want an error naming the host", err)
	}
}

func TestBackend_Start_badJobs(t *testing.T) {
	t.Parallel()
	b := newBackend(t, t.TempDir())
	tests := []struct {
		name    string
		cfg     map[string]any
		wantErr string
	}{
		{"no command", map[string]any{}, "has no command"},
		{"unbalanced quote", map[string]any{"command": "echo 'oops"}, `field "command"`},
		{"missing binary", map[string]any{"command": "no-such-binary-xyz"}, "not found on this host's PATH"},
		{"missing working dir", map[string]any{"command": "true", "working_dir": "/no/such/dir"}, "working_dir"},
	}
	for _, tt := range tests {
		j := job("run-"+strings.ReplaceAll(tt.name, " ", "-"), "", nil)
		j.Configuration = tt.cfg
		_, err := b.Start(t.Context(), j)
		if err == nil || !strings.Contains(err.Error(), tt.wantErr) || !strings.Contains(err.Error(), "run-") {
			t.Errorf("%s: err = %v, want one naming the flow run and %q", tt.name, err, tt.wantErr)
		}
	}
	// A failed start leaves nothing behind: a corrected retry starts the run.
	if _, err := b.Start(t.Context(), job("run-missing-binary", "true", nil)); err != nil {
		t.Errorf("retry after a failed start: %v", err)
	}
}

// TestBackend_Start_afterAKilledDispatcher: a dispatcher killed while it
// started an attempt — holding the attempt's lock, or after starting the
// process but before recording it — leaves neither a dead end nor room for a
// second process.
func TestBackend_Start_afterAKilledDispatcher(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	b := newBackend(t, dir)
	j := job("7c1e0f3a-killed", "sleep 30", nil)
	token := j.Attempt.Token()

	// The killed dispatcher held the lock (flock -o holds it in its own
	// process only): the kernel released it with its process, so the next
	// Start goes on at once.
	holder := exec.Command("flock", "-o", filepath.Join(dir, "attempt-"+token+".lock"), "sleep", "2")
	if err := holder.Start(); err != nil {
		t.Fatal(err)
	}
	time.Sleep(200 * time.Millisecond)
	holder.Process.Kill()
	holder.Wait()

	// ...and it had recorded its intent and started the job's process
	// without recording it: the job carries its attempt in its environment,
	// and Start finds it.
	intent := fmt.Sprintf(`{"flow_run_id":%q,"attempt":%q,"pid":0}`, j.FlowRunID, j.Attempt.Key())
	if err := os.WriteFile(filepath.Join(dir, "attempt-"+token+".json"), []byte(intent), 0o600); err != nil {
		t.Fatal(err)
	}
	orphan := exec.Command("sleep", "30")
	orphan.Env = append(os.Environ(), dispatch.EnvAttempt+"="+token)
	orphan.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := orphan.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { orphan.Process.Kill(); orphan.Wait() })

	ctx, cancel := context.WithTimeout(t.Context(), 5*time.Second)
	defer cancel()
	id, err := b.Start(ctx, j)
	if err != nil {
		t.Fatalf("Start after a killed dispatcher: %v", err)
	}
	if want := ":" + strconv.Itoa(orphan.Process.Pid); !strings.HasSuffix(id, want) {
		t.Errorf("Start = %s, want the orphaned process (pid %d) instead of a second one", id, orphan.Process.Pid)
	}
	if st, err := b.Status(t.Context(), id); err != nil || st.State != dispatch.StateRunning || st.Attempt != j.Attempt.Key() {
		t.Errorf("Status(%s) = %+v, %v; want RUNNING for attempt %s", id, st, err, j.Attempt.Key())
	}
}

// TestBackend_Status_pidReused: an exit or a liveness is never taken from
// another process that got the same pid later.
func TestBackend_Status_pidReused(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	b := newBackend(t, dir)
	id, err := b.Start(t.Context(), job("2d4f6a8c-reused", "true", nil))
	if err != nil {
		t.Fatal(err)
	}
	waitExited(t, b, id)
	// A later attempt's process got the same pid and is still running: the
	// pid's record now names that attempt, whose process started later.
	self := os.Getpid()
	data := fmt.Sprintf(`{"attempt_token":"2d4f6a8c-other-%s","start_ticks":1}`, "0123abcd")
	if err := os.WriteFile(filepath.Join(dir, "pid-"+strconv.Itoa(self)+".json"), []byte(data), 0o600); err != nil {
		t.Fatal(err)
	}
	host, _ := os.Hostname()
	st, err := b.Status(t.Context(), host+":"+strconv.Itoa(self))
	if err != nil {
		t.Fatal(err)
	}
	if st.State != dispatch.StateNotFound || st.Attempt != "0123abcd" {
		t.Errorf("Status of a pid now held by a process that started at another time = %+v; want NOT_FOUND for attempt 0123abcd", st)
	}
}
