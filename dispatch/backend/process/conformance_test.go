package process

import (
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/pushpool/pushpool/dispatch"
	"github.com/pushpool/pushpool/dispatch/dispatchtest"
)

// TestConformance runs the backend conformance suite. The job's command
// waits for an exit file the harness writes, so Exit decides its exit code.
func TestConformance(t *testing.T) {
	b, err := New(Config{StateDir: t.TempDir(), StopGrace: 2 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { b.StopAll(t.Context()); b.Wait() })
	exits := t.TempDir()
	exitFile := func(infraID string) string { return filepath.Join(exits, strings.ReplaceAll(infraID, ":", "_")) }
	pid := func(t *testing.T, infraID string) int {
		_, p, _ := strings.Cut(infraID, ":")
		n, err := strconv.Atoi(p)
		if err != nil {
			t.Fatalf("infrastructure id %q has no pid", infraID)
		}
		return n
	}
	// The job finds its own exit file by its pid ($$ of the shell).
	script := fmt.Sprintf(`f=%s/$(hostname)_$$; while [ ! -f "$f" ]; do sleep 0.05; done; exit "$(cat "$f")"`, exits)
	dispatchtest.Run(t, dispatchtest.Harness{
		Backend: b,
		Job: func(t *testing.T, flowRunID string) dispatch.Job {
			return dispatchtest.RenderJob(t, PoolType, DefaultBaseJobTemplate(),
				map[string]any{"command": "sh -c '" + script + "'"}, flowRunID)
		},
		Count: func(t *testing.T, flowRunID string) int {
			n := 0
			procs, _ := filepath.Glob("/proc/[0-9]*/environ")
			for _, p := range procs {
				data, err := os.ReadFile(p)
				if err == nil && strings.Contains("\x00"+string(data), "\x00PREFECT__FLOW_RUN_ID="+flowRunID+"\x00") && groupLeader(filepath.Dir(p)) {
					n++
				}
			}
			return n
		},
		Exit: func(t *testing.T, infraID string, code int) {
			if err := os.WriteFile(exitFile(infraID)+".tmp", []byte(strconv.Itoa(code)), 0o600); err != nil {
				t.Fatal(err)
			}
			if err := os.Rename(exitFile(infraID)+".tmp", exitFile(infraID)); err != nil {
				t.Fatal(err)
			}
		},
		FailureCode: 3,
		Vanish: func(t *testing.T, infraID string) {
			p := pid(t, infraID)
			syscall.Kill(-p, syscall.SIGKILL)
			deadline := time.Now().Add(10 * time.Second)
			for {
				if rec, ok := b.attemptOfPID(p); ok && os.Remove(b.path("exit", rec.Token+".json")) == nil {
					return
				}
				if time.Now().After(deadline) {
					t.Fatalf("process %s left no exit record to forget", infraID)
				}
				time.Sleep(20 * time.Millisecond)
			}
		},
		MissingID: func(t *testing.T) string { return b.id(1<<22 + 1) },
	})
}

// groupLeader reports whether the process of a /proc/<pid> directory leads
// its process group. Each job is started as a group leader; its children (the
// shell's sleep) inherit its environment and must not count as another job.
func groupLeader(procDir string) bool {
	stat, err := os.ReadFile(filepath.Join(procDir, "stat"))
	if err != nil {
		return false
	}
	// pid (comm) state ppid pgrp ...; comm may hold spaces, so split after ")".
	i := strings.LastIndexByte(string(stat), ')')
	fields := strings.Fields(string(stat[i+1:]))
	return len(fields) >= 3 && fields[2] == filepath.Base(procDir)
}
