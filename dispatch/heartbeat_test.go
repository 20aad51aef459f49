package dispatch_test

import (
	"context"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync/atomic"
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

// runningEverywhere reports every infrastructure as running, in one batch.
type runningEverywhere struct{ noopBackend }

func (runningEverywhere) Statuses(_ context.Context, ids []string) (map[string]dispatch.Status, error) {
	out := map[string]dispatch.Status{}
	for _, id := range ids {
		out[id] = dispatch.Status{State: dispatch.StateRunning}
	}
	return out, nil
}

// eventReads counts the event reads of the reconciler.
type eventReads struct {
	dispatch.API
	counts, reads atomic.Int32
}

func (e *eventReads) CountEventsByResource(ctx context.Context, f prefect.EventFilter) ([]prefect.EventCount, error) {
	e.counts.Add(1)
	return e.API.CountEventsByResource(ctx, f)
}

func (e *eventReads) ReadEvents(ctx context.Context, f prefect.EventFilter, max int) ([]prefect.Event, error) {
	e.reads.Add(1)
	return e.API.ReadEvents(ctx, f, max)
}

// TestReconciler_heartbeatsOfAllRunsInOneQuery: the last heartbeats of every
// RUNNING run of a pass come from one count of heartbeat events by flow run
// on the real server: a run whose last heartbeat is older than the window
// is crashed naming it, one with a fresh heartbeat and one that never sent
// any are left alone.
func TestReconciler_heartbeatsOfAllRunsInOneQuery(t *testing.T) {
	t.Parallel()
	e := newEnv(t, nil)
	fresh, stale, silent := e.runningRun("elsewhere:1"), e.runningRun("elsewhere:2"), e.runningRun("elsewhere:3")
	now := time.Now().UTC()
	beat := func(run prefect.FlowRun, at time.Time) prefect.Event {
		return prefect.Event{Event: "prefect.flow-run.heartbeat", Occurred: at, Resource: map[string]string{"prefect.resource.id": "prefect.flow-run." + run.ID}}
	}
	if err := e.api.EmitEvents(t.Context(), []prefect.Event{beat(stale, now.Add(-55*time.Second)), beat(stale, now.Add(-50*time.Second)), beat(fresh, now)}); err != nil {
		t.Fatal(err)
	}
	// The server stores events in the background.
	for deadline := time.Now().Add(30 * time.Second); len(e.heartbeats(stale.ID)) < 2 || len(e.heartbeats(fresh.ID)) < 1; {
		if time.Now().After(deadline) {
			t.Fatal("the emitted heartbeats were not stored within 30s")
		}
		time.Sleep(200 * time.Millisecond)
	}
	api := &eventReads{API: e.api}
	d, err := dispatch.New(dispatch.Config{}, api, runningEverywhere{}, nil)
	if err != nil {
		t.Fatal(err)
	}
	res, err := e.reconciler(d, dispatch.ReconcileConfig{HeartbeatWindow: 30 * time.Second}).RunOnce(t.Context(), e.pool.Name)
	if err != nil {
		t.Fatal(err)
	}
	if n, m := api.counts.Load(), api.reads.Load(); n != 1 || m != 0 {
		t.Errorf("the pass made %d heartbeat counts and %d event reads; want one count", n, m)
	}
	if res.Checked != 3 || len(res.Runs) != 1 || res.Runs[0].FlowRunID != stale.ID || res.Runs[0].Action != dispatch.ActionCrashed {
		t.Fatalf("pass = %+v; want the stale run crashed, the others left alone", res)
	}
	msg := stateMessage(e.read(stale.ID))
	if want := "sent no heartbeat since " + now.Add(-50*time.Second).Format(time.RFC3339); !strings.Contains(msg, want) {
		t.Errorf("Crashed message = %q; want it to contain %q", msg, want)
	}
	for _, run := range []prefect.FlowRun{fresh, silent} {
		if got := e.read(run.ID); *got.StateType != prefect.StateRunning {
			t.Errorf("run %s is %s, want RUNNING", run.ID, *got.StateType)
		}
	}
}
