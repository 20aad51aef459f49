package cloudrun

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"cloud.google.com/go/run/apiv2/runpb"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"

	"github.com/pushpool/pushpool/dispatch"
	"github.com/pushpool/pushpool/dispatch/backend/cloudrun/cloudrunfake"
	"github.com/pushpool/pushpool/dispatch/dispatchtest"
)

func ctxFor(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	t.Cleanup(cancel)
	return ctx
}

func mustSubmit(t *testing.T, b *Backend, job dispatch.Job) string {
	t.Helper()
	id, err := b.Submit(ctxFor(t), job)
	if err != nil {
		t.Fatalf("Submit(flow run %s): %v", job.FlowRunID, err)
	}
	return id
}

// TestBackend_SubmitRidesOutTransientErrors: 503s while polling readiness
// (PrefectHQ/prefect#22085) and a RunJob whose response is lost after it
// started an execution neither fail the submission nor run the job twice.
func TestBackend_SubmitRidesOutTransientErrors(t *testing.T) {
	t.Parallel()
	b, f := newTestBackend(t)
	f.SetReadyAfter(2)
	f.Inject("GetJob", status.New(codes.Unavailable, "The service is currently unavailable."), 3)
	f.InjectAfter("RunJob", status.New(codes.Unavailable, "The service is currently unavailable."), 1)
	run := dispatchtest.NewFlowRunID()
	id := mustSubmit(t, b, testJob(t, run, nil))
	if n := f.CountExecutions(LabelFlowRunID, run); n != 1 {
		t.Errorf("flow run %s has %d executions, want 1", run, n)
	}
	if n := f.Calls("RunJob"); n != 1 {
		t.Errorf("RunJob was called %d times, want 1: after a lost response the backend must find the execution it started", n)
	}
	if st, err := b.Status(ctxFor(t), id); err != nil || st.State != dispatch.StateRunning {
		t.Errorf("Status(%s) = %+v, %v; want RUNNING", id, st, err)
	}
}

// TestBackend_SubmitPersistentFailures checks the classification of errors
// that outlast the retries.
func TestBackend_SubmitPersistentFailures(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name      string
		inject    func(f *cloudrunfake.Server)
		retryable bool
		words     []string
	}{
		{"run throttled", func(f *cloudrunfake.Server) { f.Inject("RunJob", cloudrunfake.Throttled("RunJob"), -1) },
			true, []string{"throttling", "run job"}},
		{"readiness unavailable", func(f *cloudrunfake.Server) {
			f.Inject("GetJob", status.New(codes.Unavailable, "The service is currently unavailable."), -1)
		}, true, []string{"unavailable"}},
		{"run denied", func(f *cloudrunfake.Server) {
			f.Inject("RunJob", cloudrunfake.PermissionDenied("run.jobs.run", "job"), -1)
		}, false, []string{"run.jobs.run", "roles/run.developer"}},
		{"image missing", func(f *cloudrunfake.Server) { f.SetImageMissing(testImage) },
			false, []string{testImage, "not found", "cannot be found"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			b, f := newTestBackend(t)
			b.cfg.ReadyTimeout = time.Second
			tt.inject(f)
			run := dispatchtest.NewFlowRunID()
			job := testJob(t, run, nil)
			_, err := b.Submit(ctxFor(t), job)
			if err == nil {
				t.Fatal("Submit succeeded, want an error")
			}
			if errors.Is(err, dispatch.ErrRetryable) != tt.retryable {
				t.Errorf("errors.Is(err, ErrRetryable) = %v, want %v: %v", !tt.retryable, tt.retryable, err)
			}
			for _, w := range append([]string{run, testProject, testRegion}, tt.words...) {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error does not contain %q: %v", w, err)
				}
			}
			if n := f.CountExecutions(LabelFlowRunID, run); n != 0 {
				t.Errorf("a failed submission left %d executions", n)
			}
		})
	}
}

// TestBackend_SubmitMissingImageDeletesTheJob: a job that cannot become
// ready is deleted unless keep_job, as Prefect's worker does.
func TestBackend_SubmitMissingImageDeletesTheJob(t *testing.T) {
	t.Parallel()
	b, f := newTestBackend(t)
	f.SetImageMissing(testImage)
	run := dispatchtest.NewFlowRunID()
	if _, err := b.Submit(ctxFor(t), testJob(t, run, nil)); err == nil {
		t.Fatal("Submit with a missing image succeeded")
	}
	if n := f.CountJobs(LabelFlowRunID, run); n != 0 {
		t.Errorf("the job that never became ready was kept (%d jobs)", n)
	}
}

// TestBackend_SubmitNameCollision: a job of the same name that belongs to
// another flow run is not taken over.
func TestBackend_SubmitNameCollision(t *testing.T) {
	t.Parallel()
	b, f := newTestBackend(t)
	first, second := "3f2a9c1e-7b4d-4e8a-9f10-2c3d4e5f6a7b", "3f2a9c1e-7b4d-4e8a-9f10-000000000000"
	mustSubmit(t, b, testJob(t, first, nil))
	job := testJob(t, second, nil)
	job.Configuration["name"] = testJob(t, first, nil).Configuration["name"]
	_, err := b.Submit(ctxFor(t), job)
	if err == nil || !strings.Contains(err.Error(), "collision") || errors.Is(err, dispatch.ErrRetryable) {
		t.Fatalf("Submit of a run whose job name is taken: %v, want a permanent collision error", err)
	}
	if n := f.CountExecutions(LabelFlowRunID, second); n != 0 {
		t.Errorf("the colliding run got %d executions", n)
	}
}

// TestBackend_StopKeepJob: with keep_job, Stop cancels the execution and
// keeps the job.
func TestBackend_StopKeepJob(t *testing.T) {
	t.Parallel()
	b, f := newTestBackend(t)
	id := mustSubmit(t, b, testJob(t, dispatchtest.NewFlowRunID(), map[string]any{"keep_job": true}))
	if err := b.Stop(ctxFor(t), id); err != nil {
		t.Fatal(err)
	}
	if !f.HasJob(jobOf(t, id)) {
		t.Error("Stop deleted a keep_job job")
	}
	st, err := b.Status(ctxFor(t), id)
	if err != nil || st.State != dispatch.StateExited || st.ExitCode == 0 || !strings.Contains(st.Reason, "cancelled") {
		t.Errorf("Status after Stop = %+v, %v; want EXITED non-zero, reason naming the cancellation", st, err)
	}
}

// TestBackend_Sweep: finished jobs older than the cut-off are deleted;
// running, recent and keep_job jobs and jobs pushpool did not create stay.
func TestBackend_Sweep(t *testing.T) {
	t.Parallel()
	b, f := newTestBackend(t)
	ids := map[string]string{}
	for _, name := range []string{"succeeded", "failed", "running", "kept", "recent"} {
		vars := map[string]any{"name": name}
		if name == "kept" {
			vars["keep_job"] = true
		}
		ids[name] = mustSubmit(t, b, testJob(t, dispatchtest.NewFlowRunID(), vars))
	}
	long := time.Now().Add(-2 * time.Hour)
	for name, ok := range map[string]bool{"succeeded": true, "failed": false, "kept": true, "recent": true} {
		if err := f.CompleteExecution(ids[name], ok, ""); err != nil {
			t.Fatal(err)
		}
		if name != "recent" {
			if err := f.SetCompletionTime(ids[name], long); err != nil {
				t.Fatal(err)
			}
		}
	}
	// A job pushpool did not create: no managed label.
	other := testJob(t, dispatchtest.NewFlowRunID(), map[string]any{"name": "foreign"})
	otherID := mustSubmit(t, b, other)
	f.CompleteExecution(otherID, true, "")
	f.SetCompletionTime(otherID, long)
	j := f.Job(jobOf(t, otherID))
	delete(j.Labels, LabelManaged)
	f.ForgetJob(j.Name)
	mustCreateRaw(t, b, j)

	deleted, err := b.Sweep(ctxFor(t), testProject, testRegion, time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	if deleted != 2 {
		t.Errorf("Sweep deleted %d jobs, want 2", deleted)
	}
	for name, want := range map[string]bool{"succeeded": false, "failed": false, "running": true, "kept": true, "recent": true} {
		if got := f.HasJob(jobOf(t, ids[name])); got != want {
			t.Errorf("after the sweep job %q exists = %v, want %v", name, got, want)
		}
	}
	if !f.HasJob(j.Name) {
		t.Error("Sweep deleted a job without the pushpool-io-managed label")
	}
	if k := f.KilledWhileRunning(); len(k) != 0 {
		t.Errorf("Sweep deleted running executions %v (PrefectHQ/prefect#23025)", k)
	}
}

// mustCreateRaw creates j as someone else would, through the API.
func mustCreateRaw(t *testing.T, b *Backend, j *runpb.Job) {
	t.Helper()
	cl, err := b.clientsFor(ctxFor(t), credentials{})
	if err != nil {
		t.Fatal(err)
	}
	parent, id, _ := strings.Cut(j.Name, "/jobs/")
	in := proto.Clone(j).(*runpb.Job)
	in.Name, in.TerminalCondition, in.LatestCreatedExecution = "", nil, nil
	if _, err := cl.jobs.CreateJob(ctxFor(t), &runpb.CreateJobRequest{Parent: parent, JobId: id, Job: in}); err != nil {
		t.Fatal(err)
	}
}

// TestBackend_StatusOfBareJobName: Prefect's worker's pid format is
// refused with an explanation, not taken for a missing execution.
func TestBackend_StatusOfBareJobName(t *testing.T) {
	t.Parallel()
	b, _ := newTestBackend(t)
	_, err := b.Status(ctxFor(t), "crimson-okapi-3f2a9c1")
	if err == nil || !strings.Contains(err.Error(), "bare Cloud Run job name") || errors.Is(err, dispatch.ErrRetryable) {
		t.Errorf("Status of a bare job name: %v, want a permanent error explaining the format", err)
	}
	if err := b.Stop(ctxFor(t), "crimson-okapi-3f2a9c1"); err == nil {
		t.Error("Stop of a bare job name succeeded, want an error explaining the format")
	}
}
