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
	// backoff; if it persists, Submit's error wraps dispatch.ErrRetryable so
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

// Retryable reports whether the suite requires Submit's error for f to wrap
// dispatch.ErrRetryable.
func (f Fault) Retryable() bool { return f == Throttled || f == Quota }

// Harness adapts one backend and its emulator to the suite.
type Harness struct {
	// Backend is the backend under test, pointed at the emulator.
	Backend dispatch.Backend
	// Job returns a job for flowRunID that the backend can start on the
	// emulator: normally the backend's default base job template rendered
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
	t.Run("SubmitIsIdempotentPerFlowRun", func(t *testing.T) { submitIdempotent(t, h) })
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

func submit(t *testing.T, h Harness, flowRunID string) string {
	t.Helper()
	id, err := h.Backend.Submit(ctxFor(t), h.Job(t, flowRunID))
	if err != nil {
		t.Fatalf("Submit(flow run %s): %v", flowRunID, err)
	}
	if id == "" {
		t.Fatalf("Submit(flow run %s) returned an empty infrastructure id", flowRunID)
	}
	return id
}

func submitIdempotent(t *testing.T, h Harness) {
	run := NewFlowRunID()
	first := submit(t, h, run)
	second := submit(t, h, run)
	if first != second {
		t.Errorf("a second Submit for flow run %s returned %q, the first %q: a retried submission must find what the first started", run, second, first)
	}
	if n := h.Count(t, run); n != 1 {
		t.Errorf("after two Submits for flow run %s the platform holds %d pieces of infrastructure, want 1", run, n)
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
		t.Errorf("Status of a just-submitted job = %+v, want PENDING or RUNNING", st)
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
	_, err := h.Backend.Submit(ctxFor(t), h.Job(t, run))
	if err == nil {
		t.Fatalf("Submit(flow run %s) with fault %s succeeded, want an error", run, f)
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
	id, err := h.Backend.Submit(ctxFor(t), h.Job(t, run))
	if err != nil {
		t.Fatalf("Submit(flow run %s) after one throttled call: %v, want the backend to retry with backoff", run, err)
	}
	if n := h.Count(t, run); n != 1 {
		t.Errorf("after a throttled then successful Submit the platform holds %d pieces of infrastructure for flow run %s, want 1 (id %s)", n, run, id)
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
