// Package dispatchtest is the conformance suite every dispatch.Backend passes:
// the promises the engine and the reconciler rely on, checked the same way
// for the local process backend and for each cloud backend against its
// emulator (moto, the Cloud Run gRPC fake, the Azure SDK fake).
//
// A backend's test builds a Harness — the backend pointed at its emulator,
// plus the emulator's controls (make the infrastructure exit, make it vanish,
// inject a cloud error) — and calls Run.
package dispatchtest

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/pushpool/pushpool/dispatch"
	"github.com/pushpool/pushpool/dispatch/template"
)

// Fault is a cloud error a harness can make its emulator return.
type Fault string

// The faults the suite knows, with the classification it requires.
const (
	// Throttled: the platform rate-limits the call. Backends retry it with
	// backoff; if it persists, Start's error wraps dispatch.ErrRetryable so
	// the run goes back to the schedule instead of crashing.
	Throttled Fault = "throttled"
	// AccessDenied: the dispatcher's identity lacks a permission. Permanent;
	// the message names the missing permission.
	AccessDenied Fault = "access-denied"
	// InvalidImage: the image cannot be found or pulled. Permanent; the
	// message names the image.
	InvalidImage Fault = "invalid-image"
	// Quota: a platform quota is exhausted. Retryable: capacity frees up as
	// other jobs end, and the run is better late than crashed.
	Quota Fault = "quota"
)

// Retryable reports whether the suite requires Start's error for f to wrap
// dispatch.ErrRetryable.
func (f Fault) Retryable() bool { return f == Throttled || f == Quota }

// Harness adapts one backend and its emulator to the suite.
type Harness struct {
	// Backend is the backend under test, pointed at the emulator.
	Backend dispatch.Backend
	// Job returns a job for flowRunID that the backend can start on the
	// emulator (the suite sets its Attempt): normally the backend's default base job template rendered
	// with RenderJob and the few variables the emulator needs.
	Job func(t *testing.T, flowRunID string) dispatch.Job
	// Count reports how many pieces of infrastructure (tasks, executions,
	// container groups, processes) exist for flowRunID, however they are
	// named: the idempotency check counts what the platform holds.
	Count func(t *testing.T, flowRunID string) int
	// Exit makes the infrastructure behind infraID finish with exit code
	// code, as the platform would report it (a container exiting).
	Exit func(t *testing.T, infraID string, code int)
	// FailureCode is an exit code the platform can report for a failed job;
	// platforms that only know success and failure report 1.
	FailureCode int
	// Vanish removes the infrastructure behind infraID behind the backend's
	// back, as the platform does when it forgets a finished job.
	Vanish func(t *testing.T, infraID string)
	// MissingID returns a well-formed infrastructure id that names nothing.
	MissingID func(t *testing.T) string
	// Inject makes the emulator answer the next `times` submission calls with
	// fault f (times < 0: until the test ends). Nil when the platform has no
	// cloud errors (the process backend).
	Inject func(t *testing.T, f Fault, times int)
	// Faults lists the faults Inject supports, each with the words its
	// error must contain besides the flow run id (the permission, the image,
	// the quota's name).
	Faults map[Fault][]string
	// StopTimeout bounds how long a stopped job may take to stop being
	// RUNNING. Zero means 30 seconds.
	StopTimeout time.Duration
}

// Run runs the conformance suite against h.
func Run(t *testing.T, h Harness) {
	t.Helper()
	if h.Backend == nil || h.Job == nil || h.Count == nil || h.Exit == nil || h.Vanish == nil || h.MissingID == nil {
		t.Fatal("dispatchtest: Harness needs Backend, Job, Count, Exit, Vanish and MissingID")
	}
	if h.StopTimeout == 0 {
		h.StopTimeout = 30 * time.Second
	}
	t.Run("StartIsIdempotentPerAttempt", func(t *testing.T) { startIdempotent(t, h) })
	t.Run("ConcurrentStartsOfOneAttempt", func(t *testing.T) { concurrentStarts(t, h) })
	t.Run("FindOnlyTheAttemptsOwn", func(t *testing.T) { findAttempt(t, h) })
	t.Run("RunAgainAfterTheFirstAttemptFinished", func(t *testing.T) { runAgain(t, h) })
	t.Run("StartAfterAnAbortedStart", func(t *testing.T) { startAfterAbort(t, h) })
	t.Run("StatusOfSuccess", func(t *testing.T) { statusExit(t, h, 0) })
	t.Run("StatusOfFailure", func(t *testing.T) { statusExit(t, h, h.FailureCode) })
	t.Run("StatusOfVanished", func(t *testing.T) { statusVanished(t, h) })
	t.Run("StopRunning", func(t *testing.T) { stopRunning(t, h) })
	t.Run("StopAndStatusOfMissing", func(t *testing.T) { stopMissing(t, h) })
	t.Run("MalformedID", func(t *testing.T) { malformedID(t, h) })
	if h.Inject != nil {
		for _, f := range slices.Sorted(maps.Keys(h.Faults)) {
			t.Run("Fault/"+string(f), func(t *testing.T) { fault(t, h, f, h.Faults[f]) })
		}
		if _, ok := h.Faults[Throttled]; ok {
			t.Run("ThrottlingIsRetried", func(t *testing.T) { throttlingRetried(t, h) })
		}
	}
}

// NewFlowRunID returns a fresh flow run id, as Prefect makes them.
func NewFlowRunID() string { return uuid.NewString() }

func ctxFor(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	t.Cleanup(cancel)
	return ctx
}

// NewAttempt returns a fresh attempt of flowRunID, as a claim makes one.
func NewAttempt(flowRunID string) dispatch.Attempt {
	return dispatch.Attempt{FlowRunID: flowRunID, ClaimID: uuid.NewString()}
}

// jobFor is the harness's job for the attempt.
func jobFor(t *testing.T, h Harness, a dispatch.Attempt) dispatch.Job {
	t.Helper()
	job := h.Job(t, a.FlowRunID)
	job.Attempt = a
	return job
}

// submit starts a fresh attempt of flowRunID.
func submit(t *testing.T, h Harness, flowRunID string) string {
	t.Helper()
	return start(t, h, NewAttempt(flowRunID))
}

func start(t *testing.T, h Harness, a dispatch.Attempt) string {
	t.Helper()
	id, err := h.Backend.Start(ctxFor(t), jobFor(t, h, a))
	if err != nil {
		t.Fatalf("Start(flow run %s, attempt %s): %v", a.FlowRunID, a.Key(), err)
	}
	if id == "" {
		t.Fatalf("Start(flow run %s, attempt %s) returned an empty infrastructure id", a.FlowRunID, a.Key())
	}
	return id
}

func find(t *testing.T, h Harness, a dispatch.Attempt) (string, bool) {
	t.Helper()
	id, found, err := h.Backend.Find(ctxFor(t), jobFor(t, h, a))
	if err != nil {
		t.Fatalf("Find(flow run %s, attempt %s): %v", a.FlowRunID, a.Key(), err)
	}
	if found && id == "" {
		t.Fatalf("Find(flow run %s, attempt %s) found an empty infrastructure id", a.FlowRunID, a.Key())
	}
	return id, found
}

// checkAttempt fails when Status of id names another attempt than a, or
// none: pushpool's own infrastructure must say which attempt it belongs to.
func checkAttempt(t *testing.T, h Harness, id string, a dispatch.Attempt) {
	t.Helper()
	st, err := h.Backend.Status(ctxFor(t), id)
	if err != nil {
		t.Fatalf("Status(%s): %v", id, err)
	}
	if st.State != dispatch.StateNotFound && st.Attempt != a.Key() {
		t.Errorf("Status(%s).Attempt = %q, want %q (the attempt it was started for)", id, st.Attempt, a.Key())
	}
}

func startIdempotent(t *testing.T, h Harness) {
	a := NewAttempt(NewFlowRunID())
	first := start(t, h, a)
	second := start(t, h, a)
	if first != second {
		t.Errorf("a second Start of attempt %s returned %q, the first %q: a retried start must find what the first started", a.Key(), second, first)
	}
	if n := h.Count(t, a.FlowRunID); n != 1 {
		t.Errorf("after two Starts of one attempt of flow run %s the platform holds %d pieces of infrastructure, want 1", a.FlowRunID, n)
	}
	other := submit(t, h, NewFlowRunID())
	if other == first {
		t.Errorf("two flow runs got the same infrastructure id %q", first)
	}
	st, err := h.Backend.Status(ctxFor(t), first)
	if err != nil {
		t.Fatalf("Status(%s): %v", first, err)
	}
	if st.State != dispatch.StatePending && st.State != dispatch.StateRunning {
		t.Errorf("Status of a just-started job = %+v, want PENDING or RUNNING", st)
	}
	checkAttempt(t, h, first, a)
}

// concurrentStarts: dispatchers (or a dispatcher's retries) that start one
// attempt at the same time start one job.
func concurrentStarts(t *testing.T, h Harness) {
	a := NewAttempt(NewFlowRunID())
	const n = 6
	ids := make([]string, n)
	errs := make([]error, n)
	var wg sync.WaitGroup
	for i := range n {
		wg.Go(func() { ids[i], errs[i] = h.Backend.Start(ctxFor(t), jobFor(t, h, a)) })
	}
	wg.Wait()
	for i := range n {
		if errs[i] != nil {
			t.Fatalf("concurrent Start %d of attempt %s: %v", i, a.Key(), errs[i])
		}
		if ids[i] != ids[0] {
			t.Errorf("concurrent Starts of one attempt returned %q and %q, want one id", ids[0], ids[i])
		}
	}
	if c := h.Count(t, a.FlowRunID); c != 1 {
		t.Errorf("after %d concurrent Starts of one attempt of flow run %s the platform holds %d pieces of infrastructure, want 1", n, a.FlowRunID, c)
	}
}

// findAttempt: Find sees only the attempt's own infrastructure.
func findAttempt(t *testing.T, h Harness) {
	run := NewFlowRunID()
	a := NewAttempt(run)
	if id, found := find(t, h, a); found {
		t.Fatalf("Find of an attempt that started nothing found %q", id)
	}
	id := start(t, h, a)
	got, found := find(t, h, a)
	if !found || got != id {
		t.Errorf("Find after Start = %q, %v; want %q, true", got, found, id)
	}
	if other, found := find(t, h, NewAttempt(run)); found {
		t.Errorf("Find of another attempt of flow run %s found %q, the first attempt's infrastructure %q: an earlier attempt's infrastructure never counts as a later one's", run, other, id)
	}
}

// runAgain: a run that is run again (Retry, resume, reschedule) gets new
// infrastructure, and each attempt keeps its own.
func runAgain(t *testing.T, h Harness) {
	run := NewFlowRunID()
	first, second := NewAttempt(run), NewAttempt(run)
	id1 := start(t, h, first)
	h.Exit(t, id1, h.FailureCode)
	waitFor(t, h, id1, func(s dispatch.Status) bool { return s.State == dispatch.StateExited })
	before := h.Count(t, run) // 1, or 0 where finished infrastructure is not kept
	id2 := start(t, h, second)
	if id2 == id1 {
		t.Fatalf("the second attempt of flow run %s got the first attempt's infrastructure %q: a re-run must start again", run, id1)
	}
	if n := h.Count(t, run); n != before+1 {
		t.Errorf("the second attempt of flow run %s took the platform from %d to %d pieces of infrastructure, want one more", run, before, n)
	}
	if again := start(t, h, second); again != id2 {
		t.Errorf("a repeated Start of the second attempt returned %q, want %q", again, id2)
	}
	st, err := h.Backend.Status(ctxFor(t), id2)
	if err != nil {
		t.Fatalf("Status(%s): %v", id2, err)
	}
	if st.State != dispatch.StatePending && st.State != dispatch.StateRunning {
		t.Errorf("Status of the second attempt's fresh job = %+v, want PENDING or RUNNING (not the first attempt's exit)", st)
	}
	checkAttempt(t, h, id1, first)
	checkAttempt(t, h, id2, second)
	if got, found := find(t, h, first); !found || got != id1 {
		t.Errorf("Find(first attempt) = %q, %v; want %q", got, found, id1)
	}
	if got, found := find(t, h, second); !found || got != id2 {
		t.Errorf("Find(second attempt) = %q, %v; want %q", got, found, id2)
	}
}

// startAfterAbort: a Start cut off at once (a dispatcher killed or out of
// time while starting) leaves nothing that makes the next Start of the same
// attempt start a second job, or wait for one that never comes.
func startAfterAbort(t *testing.T, h Harness) {
	a := NewAttempt(NewFlowRunID())
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	_, _ = h.Backend.Start(ctx, jobFor(t, h, a)) // may or may not have started it
	begin := time.Now()
	id := start(t, h, a)
	if waited := time.Since(begin); waited > 30*time.Second {
		t.Errorf("Start after an aborted Start took %s", waited)
	}
	if n := h.Count(t, a.FlowRunID); n != 1 {
		t.Errorf("after an aborted and a complete Start of one attempt the platform holds %d pieces of infrastructure, want 1", n)
	}
	if got, found := find(t, h, a); !found || got != id {
		t.Errorf("Find = %q, %v; want %q", got, found, id)
	}
}

func statusExit(t *testing.T, h Harness, code int) {
	id := submit(t, h, NewFlowRunID())
	h.Exit(t, id, code)
	st := waitFor(t, h, id, func(s dispatch.Status) bool { return s.State == dispatch.StateExited })
	if st.ExitCode != code {
		t.Errorf("Status(%s) after exit %d = %+v, want exit code %d", id, code, st, code)
	}
	if code != 0 && st.Reason == "" && st.ExitCode == -1 {
		t.Errorf("Status(%s) of a failed job gives neither an exit code nor a reason: %+v", id, st)
	}
}

func statusVanished(t *testing.T, h Harness) {
	id := submit(t, h, NewFlowRunID())
	h.Vanish(t, id)
	st, err := h.Backend.Status(ctxFor(t), id)
	if err != nil {
		t.Fatalf("Status(%s) of vanished infrastructure: %v, want StateNotFound and no error", id, err)
	}
	if st.State != dispatch.StateNotFound {
		t.Errorf("Status(%s) of vanished infrastructure = %+v, want %s", id, st, dispatch.StateNotFound)
	}
	if err := h.Backend.Stop(ctxFor(t), id); err != nil {
		t.Errorf("Stop(%s) of vanished infrastructure: %v, want nil (it is stopped)", id, err)
	}
}

func stopRunning(t *testing.T, h Harness) {
	id := submit(t, h, NewFlowRunID())
	if err := h.Backend.Stop(ctxFor(t), id); err != nil {
		t.Fatalf("Stop(%s): %v", id, err)
	}
	st := waitFor(t, h, id, func(s dispatch.Status) bool {
		return s.State == dispatch.StateExited || s.State == dispatch.StateNotFound
	})
	if st.State == dispatch.StateExited && st.ExitCode == 0 {
		t.Errorf("a stopped job reports a clean exit: %+v", st)
	}
	if err := h.Backend.Stop(ctxFor(t), id); err != nil {
		t.Errorf("a second Stop(%s): %v, want nil", id, err)
	}
}

func stopMissing(t *testing.T, h Harness) {
	id := h.MissingID(t)
	if err := h.Backend.Stop(ctxFor(t), id); err != nil {
		t.Errorf("Stop(%s) of missing infrastructure: %v, want nil", id, err)
	}
	st, err := h.Backend.Status(ctxFor(t), id)
	if err != nil {
		t.Fatalf("Status(%s) of missing infrastructure: %v, want StateNotFound and no error", id, err)
	}
	if st.State != dispatch.StateNotFound {
		t.Errorf("Status(%s) of missing infrastructure = %+v, want %s", id, st, dispatch.StateNotFound)
	}
}

func malformedID(t *testing.T, h Harness) {
	const id = "not-an-infrastructure-id"
	_, err := h.Backend.Status(ctxFor(t), id)
	if err == nil {
		t.Fatalf("Status(%q) succeeded, want an error naming the id", id)
	}
	if !strings.Contains(err.Error(), id) {
		t.Errorf("Status(%q) error %q does not name the id", id, err)
	}
	if errors.Is(err, dispatch.ErrRetryable) {
		t.Errorf("Status(%q) error is retryable; a malformed id never heals: %v", id, err)
	}
}

func fault(t *testing.T, h Harness, f Fault, words []string) {
	run := NewFlowRunID()
	h.Inject(t, f, -1)
	_, err := h.Backend.Start(ctxFor(t), jobFor(t, h, NewAttempt(run)))
	if err == nil {
		t.Fatalf("Start(flow run %s) with fault %s succeeded, want an error", run, f)
	}
	if got := errors.Is(err, dispatch.ErrRetryable); got != f.Retryable() {
		t.Errorf("fault %s: errors.Is(err, ErrRetryable) = %v, want %v; error: %v", f, got, f.Retryable(), err)
	}
	msg := err.Error()
	for _, w := range append([]string{run}, words...) {
		if !strings.Contains(msg, w) {
			t.Errorf("fault %s: error does not contain %q: %s", f, w, msg)
		}
	}
}

func throttlingRetried(t *testing.T, h Harness) {
	run := NewFlowRunID()
	h.Inject(t, Throttled, 1)
	id, err := h.Backend.Start(ctxFor(t), jobFor(t, h, NewAttempt(run)))
	if err != nil {
		t.Fatalf("Start(flow run %s) after one throttled call: %v, want the backend to retry with backoff", run, err)
	}
	if n := h.Count(t, run); n != 1 {
		t.Errorf("after a throttled then successful Start the platform holds %d pieces of infrastructure for flow run %s, want 1 (id %s)", n, run, id)
	}
}

// waitFor polls Status until ok or h.StopTimeout, failing the test on a
// Status error or the timeout.
func waitFor(t *testing.T, h Harness, id string, ok func(dispatch.Status) bool) dispatch.Status {
	t.Helper()
	deadline := time.Now().Add(h.StopTimeout)
	for {
		st, err := h.Backend.Status(ctxFor(t), id)
		if err != nil {
			t.Fatalf("Status(%s): %v", id, err)
		}
		if ok(st) {
			return st
		}
		if time.Now().After(deadline) {
			t.Fatalf("Status(%s) is still %+v after %s", id, st, h.StopTimeout)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// RenderJob renders a job for flowRunID from a base job template and job
// variables the way the engine does (template.Render, then template.Prepare
// with a flow, a deployment and a pool), for harnesses that need a realistic
// job without a Prefect server. Placeholders naming blocks or variables fail.
func RenderJob(t testing.TB, poolType string, baseJobTemplate, variables map[string]any, flowRunID string) dispatch.Job {
	t.Helper()
	cfg, err := template.Render(context.Background(), template.Input{
		BaseJobTemplate:        baseJobTemplate,
		DeploymentJobVariables: variables,
	}, noResolver{})
	if err != nil {
		t.Fatalf("render the %s base job template: %v", poolType, err)
	}
	job := dispatch.Job{
		FlowRunID: flowRunID, FlowRunName: "conformance-" + flowRunID[:8],
		FlowName: "conformance-flow", FlowID: "6a1b7f8e-0d7b-4f9e-9a63-2f0a9d1c5e11",
		DeploymentID: "0f6d3c57-58f4-4b8c-9c6e-0c2b8b7e4d21",
		WorkPool:     "conformance-pool", WorkPoolID: "3e7d1c3a-2a6b-4c44-8f0e-5b0e4e6f9a10", WorkPoolType: poolType,
	}
	job.Configuration = template.Prepare(cfg, template.RunInfo{
		FlowRunID: job.FlowRunID, FlowRunName: job.FlowRunName,
		FlowID: job.FlowID, FlowName: job.FlowName,
		DeploymentID: job.DeploymentID, DeploymentName: "conformance-deployment",
		WorkPoolID: job.WorkPoolID, WorkPoolName: job.WorkPool,
		WorkerName:  "pushpool-conformance",
		SettingsEnv: map[string]string{"PREFECT_API_URL": "http://127.0.0.1:4200/api"},
	})
	return job
}

type noResolver struct{}

func (noResolver) Variable(context.Context, string) (any, bool, error) {
	return nil, false, errors.New("dispatchtest: no Prefect variables without a server")
}

func (noResolver) BlockDocumentByName(_ context.Context, slug, name string) (map[string]any, error) {
	return nil, fmt.Errorf("dispatchtest: no block %s/%s without a server", slug, name)
}

func (noResolver) BlockDocumentByID(_ context.Context, id string) (map[string]any, error) {
	return nil, fmt.Errorf("dispatchtest: no block document %s without a server", id)
}
