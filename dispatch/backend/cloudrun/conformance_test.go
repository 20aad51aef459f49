package cloudrun

import (
	"context"
	"os"
	"regexp"
	"strings"
	"testing"
	"time"

	"google.golang.org/api/option"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"

	"github.com/pushpool/pushpool/dispatch"
	"github.com/pushpool/pushpool/dispatch/backend/cloudrun/cloudrunfake"
	"github.com/pushpool/pushpool/dispatch/dispatchtest"
	"github.com/pushpool/pushpool/dispatch/prefect"
	"github.com/pushpool/pushpool/internal/localstack"
)

var srv *localstack.Prefect

func TestMain(m *testing.M) {
	os.Exit(localstack.RunTestsWithPrefect(m, localstack.PrefectOptions{}, func(p *localstack.Prefect) { srv = p }))
}

const (
	testProject = "pushpool-test"
	testRegion  = "us-east1"
	testImage   = "prefecthq/prefect:3-latest"
)

// newTestBackend returns a backend on a fresh fake, with fast polling;
// configure changes its Config before it is built.
func newTestBackend(t *testing.T, configure ...func(*Config)) (*Backend, *cloudrunfake.Server) {
	t.Helper()
	f, err := cloudrunfake.Start()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(f.Stop)
	cfg := Config{
		Project: testProject,
		ClientOptions: []option.ClientOption{
			option.WithEndpoint(f.Addr()), option.WithoutAuthentication(),
			option.WithGRPCDialOption(grpc.WithTransportCredentials(insecure.NewCredentials())),
		},
		PollInterval: 10 * time.Millisecond, ReadyTimeout: 10 * time.Second,
		Backoff: 5 * time.Millisecond, MaxBackoff: 40 * time.Millisecond,
	}
	for _, c := range configure {
		c(&cfg)
	}
	b, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { b.Close() })
	return b, f
}

// testJob renders the default template for a fresh attempt of flowRunID.
func testJob(t *testing.T, flowRunID string, extra map[string]any) dispatch.Job {
	t.Helper()
	vars := map[string]any{"region": testRegion}
	for k, v := range extra {
		vars[k] = v
	}
	job := dispatchtest.RenderJob(t, PoolType, DefaultBaseJobTemplate(), vars, flowRunID)
	job.Attempt = dispatchtest.NewAttempt(flowRunID)
	return job
}

func jobOf(t *testing.T, infraID string) string {
	t.Helper()
	id, err := ParseExecutionID(infraID)
	if err != nil {
		t.Fatal(err)
	}
	return id.JobResource()
}

// TestConformance runs the backend conformance suite against cloudrunfake.
func TestConformance(t *testing.T) {
	b, f := newTestBackend(t)
	parent := "projects/" + testProject + "/locations/" + testRegion
	dispatchtest.Run(t, dispatchtest.Harness{
		Backend: b,
		Job:     func(t *testing.T, flowRunID string) dispatch.Job { return testJob(t, flowRunID, nil) },
		// Every attempt's execution carries the flow run's label.
		Count: func(t *testing.T, flowRunID string) int {
			return f.CountExecutions(LabelFlowRunID, flowRunID)
		},
		Exit: func(t *testing.T, infraID string, code int) {
			if err := f.CompleteExecution(infraID, code == 0, "Task "+infraID[strings.LastIndex(infraID, "/")+1:]+"-task0 failed with exit code 1."); err != nil {
				t.Fatal(err)
			}
		},
		FailureCode: 1,
		Vanish:      func(t *testing.T, infraID string) { f.ForgetJob(jobOf(t, infraID)) },
		MissingID: func(t *testing.T) string {
			return parent + "/jobs/missing-0123456789ab-0123abcd/executions/missing-0123456789ab-0123abcd-0123abcd"
		},
		Inject: func(t *testing.T, fault dispatchtest.Fault, times int) {
			t.Cleanup(f.Clear)
			switch fault {
			case dispatchtest.Throttled:
				f.Inject("CreateJob", cloudrunfake.Throttled("CreateJob"), times)
			case dispatchtest.AccessDenied:
				f.Inject("CreateJob", cloudrunfake.PermissionDenied("run.jobs.create", parent), times)
			case dispatchtest.InvalidImage:
				f.Inject("CreateJob", cloudrunfake.ImageNotFound(testImage), times)
			case dispatchtest.Quota:
				f.Inject("CreateJob", cloudrunfake.QuotaExceeded(testProject, "JobsPerProjectPerRegion", "1000 jobs per region"), times)
			default:
				t.Fatalf("no fault %s", fault)
			}
		},
		Faults: map[dispatchtest.Fault][]string{
			dispatchtest.Throttled:    {"throttling", testProject, testRegion},
			dispatchtest.AccessDenied: {"run.jobs.create", "Application Default Credentials", testProject},
			dispatchtest.InvalidImage: {testImage},
			dispatchtest.Quota:        {"quota", "JobsPerProjectPerRegion", testRegion},
		},
		StopTimeout: 5 * time.Second,
	})
}

// TestEndToEnd dispatches a run from a pool with the default template
// through a real Prefect server onto the fake, then fails its execution and
// checks that a reconcile pass crashes the run with Cloud Run's message.
func TestEndToEnd(t *testing.T) {
	b, f := newTestBackend(t)
	api, err := prefect.New(prefect.Config{URL: srv.URL})
	if err != nil {
		t.Fatal(err)
	}
	res := dispatchtest.RunEndToEnd(t, dispatchtest.EndToEnd{
		API: api, PoolType: PoolType, BaseJobTemplate: DefaultBaseJobTemplate(),
		JobVariables: map[string]any{"region": testRegion, "image": testImage},
		Backend:      b,
		Count:        func(t *testing.T, flowRunID string) int { return f.CountExecutions(LabelFlowRunID, flowRunID) },
		PIDPattern:   regexp.MustCompile(`^projects/` + testProject + `/locations/` + testRegion + `/jobs/[a-z][-a-z0-9]*[a-z0-9]/executions/[-a-z0-9]+$`),
	})

	const reason = "Task e2e-task0 failed with exit code 1."
	if err := f.CompleteExecution(res.InfrastructureID, false, reason); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	r, err := dispatch.NewReconciler(res.Dispatcher, dispatch.ReconcileConfig{})
	if err != nil {
		t.Fatal(err)
	}
	pass, err := r.RunOnce(ctx, res.Pool)
	if err != nil {
		t.Fatalf("reconcile pool %s: %v", res.Pool, err)
	}
	if pass.Count(dispatch.ActionCrashed) != 1 {
		t.Fatalf("reconcile pass over pool %s: %+v, want the run crashed", res.Pool, pass)
	}
	run, err := api.ReadFlowRun(ctx, res.FlowRunID)
	if err != nil {
		t.Fatal(err)
	}
	if run.State == nil || run.State.Type != prefect.StateCrashed {
		t.Fatalf("flow run %s is in %+v after its execution failed, want CRASHED", res.FlowRunID, run.State)
	}
	if msg := run.State.Message; msg == nil || !strings.Contains(*msg, reason) {
		t.Errorf("the Crashed message %v does not carry Cloud Run's condition message %q", msg, reason)
	}
	// The job stays until the sweep: deleting it is the sweep's business.
	if !f.HasJob(jobOf(t, res.InfrastructureID)) {
		t.Errorf("the job of the failed execution %s was deleted before any sweep", res.InfrastructureID)
	}
}
