package dispatch_test

import (
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/pushpool/pushpool/dispatch"
	"github.com/pushpool/pushpool/dispatch/prefect"
)

// heartbeats returns the run's heartbeat events, newest first.
func (e *env) heartbeats(id string) []prefect.Event {
	e.t.Helper()
	ev, err := e.api.ReadEvents(e.t.Context(), prefect.EventFilter{Names: []string{"prefect.flow-run.heartbeat"},
		ResourceIDs: []string{"prefect.flow-run." + id}, Descending: true}, 0)
	if err != nil {
		e.t.Fatal(err)
	}
	return ev
}

// waitHeartbeats waits until the run has sent n heartbeats.
func (e *env) waitHeartbeats(id string, n int, within time.Duration) []prefect.Event {
	e.t.Helper()
	deadline := time.Now().Add(within)
	for {
		if ev := e.heartbeats(id); len(ev) >= n {
			return ev
		}
		if time.Now().After(deadline) {
			e.t.Fatalf("run %s sent fewer than %d heartbeats in %s; states:\n%s\nlogs:\n%s", id, n, within, e.history(id), e.logs(id))
		}
		time.Sleep(500 * time.Millisecond)
	}
}

// TestReconciler_heartbeats runs a real flow through `prefect flow-run
// execute` with the shortest heartbeat frequency Prefect allows (30s): while
// heartbeats arrive the run stays RUNNING; frozen with SIGSTOP it is crashed
// once the window passes, and its process is stopped.
func TestReconciler_heartbeats(t *testing.T) {
	t.Parallel()
	e := newEnv(t, nil)
	flows, _ := filepath.Abs("testdata/flows")
	entrypoint := "sleepy.py:sleepy"
	dep := e.deployment("sleepy", func(in *prefect.DeploymentCreate) {
		in.Entrypoint = &entrypoint
		in.PullSteps = []map[string]any{{"prefect.deployments.steps.set_working_directory": map[string]any{"directory": flows}}}
		in.JobVariables = map[string]any{
			"command": filepath.Join(srv.Venv, "bin", "prefect") + " flow-run execute",
			"env": map[string]any{
				"PREFECT_FLOWS_HEARTBEAT_FREQUENCY": "30",
				"PREFECT_HOME":                      t.TempDir(),
			},
		}
	})
	run := e.run(dep)
	d, b := e.dispatcher(t.TempDir())
	infra := e.submitted(d, run.ID)
	const window = 40 * time.Second
	rec := e.reconciler(d, dispatch.ReconcileConfig{FlowHeartbeatFrequency: 30 * time.Second, HeartbeatWindow: window})

	// Two heartbeats 30s apart: the run has been RUNNING for longer than
	// the window, and is left alone because they keep coming.
	e.waitHeartbeats(run.ID, 2, 90*time.Second)
	if res, err := rec.RunOnce(t.Context(), e.pool.Name); err != nil || len(res.Runs) != 0 {
		t.Fatalf("reconcile while heartbeats arrive = %+v, %v; want nothing done", res, err)
	}
	if got := e.read(run.ID); *got.StateType != prefect.StateRunning {
		t.Fatalf("run is %s, want RUNNING", *got.StateType)
	}

	// Frozen: no more heartbeats; crashed once the window has passed.
	// `prefect flow-run execute` starts the flow in a session of its own,
	// so the whole tree is frozen, not just the process group.
	tree := processTree(pidOf(t, infra))
	t.Cleanup(func() {
		for _, pid := range tree {
			syscall.Kill(pid, syscall.SIGKILL)
		}
	})
	for _, pid := range tree {
		if err := syscall.Kill(pid, syscall.SIGSTOP); err != nil {
			t.Fatal(err)
		}
	}
	got := e.reconcileUntilWithin(rec, run.ID, prefect.StateCrashed, 2*window)
	if msg := stateMessage(got); !strings.Contains(msg, "sent no heartbeat since") {
		t.Errorf("Crashed message = %q; want the last heartbeat named", msg)
	}
	b.Wait() // the reconciler stopped the frozen process
	for _, pid := range tree {
		syscall.Kill(pid, syscall.SIGKILL) // the flow process in its own session
	}
	st, err := b.Status(t.Context(), infra)
	if err != nil || st.State != dispatch.StateExited {
		t.Errorf("process status after the crash = %+v, %v; want exited", st, err)
	}
}

// TestReconciler_neverOverwritesAFinishedRun: a run that completes between
// the reconciler's read and its write stays COMPLETED.
func TestReconciler_neverOverwritesAFinishedRun(t *testing.T) {
	t.Parallel()
	e := newEnv(t, nil)
	run := e.run(e.dep)
	for _, st := range []prefect.StateType{prefect.StatePending, prefect.StateRunning} {
		if _, err := e.api.SetFlowRunState(t.Context(), run.ID, prefect.StateCreate{Type: st}, false); err != nil {
			t.Fatal(err)
		}
	}
	snapshot := e.read(run.ID) // what the reconciler saw: RUNNING
	if _, err := e.api.SetFlowRunState(t.Context(), run.ID, prefect.StateCreate{Type: prefect.StateCompleted}, false); err != nil {
		t.Fatal(err)
	}
	d, _ := e.dispatcher(t.TempDir())
	if c, acted := e.reconciler(d, dispatch.ReconcileConfig{}).CrashIfUnchanged(t.Context(), snapshot, "heartbeats stopped"); acted {
		t.Errorf("crash of a run that finished meanwhile = %+v; want nothing done", c)
	}
	if got := e.read(run.ID); *got.StateType != prefect.StateCompleted {
		t.Errorf("run is %s, want COMPLETED; states:\n%s", *got.StateType, e.history(run.ID))
	}
}

// processTree returns pid and all its descendants, from /proc.
func processTree(root int) []int {
	children := map[int][]int{}
	entries, _ := os.ReadDir("/proc")
	for _, e := range entries {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		stat, err := os.ReadFile(filepath.Join("/proc", e.Name(), "stat"))
		if err != nil {
			continue
		}
		// The fields after the parenthesised command: state, ppid, ...
		rest := string(stat[strings.LastIndexByte(string(stat), ')')+1:])
		f := strings.Fields(rest)
		if len(f) < 2 {
			continue
		}
		ppid, _ := strconv.Atoi(f[1])
		children[ppid] = append(children[ppid], pid)
	}
	tree := []int{root}
	for i := 0; i < len(tree); i++ {
		tree = append(tree, children[tree[i]]...)
	}
	return tree
}
