package cloudrun

import (
	"context"
	"errors"
	"strings"
	"sync"
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

func mustStart(t *testing.T, b *Backend, job dispatch.Job) string {
	t.Helper()
	id, err := b.Start(ctxFor(t), job)
	if err != nil {
		t.Fatalf("Start(flow run %s, attempt %s): %v", job.FlowRunID, job.Attempt.Key(), err)
	}
	return id
}

func mustFind(t *testing.T, b *Backend, job dispatch.Job) (string, bool) {
	t.Helper()
	id, found, err := b.Find(ctxFor(t), job)
	if err != nil {
		t.Fatalf("Find(flow run %s, attempt %s): %v", job.FlowRunID, job.Attempt.Key(), err)
	}
	return id, found
}

func mustStatus(t *testing.T, b *Backend, id string) dispatch.Status {
	t.Helper()
	st, err := b.Status(ctxFor(t), id)
	if err != nil {
		t.Fatalf("Status(%s): %v", id, err)
	}
	return st
}

// tokenID is the execution the attempt's job starts, as the backend names
// it before it exists.
func tokenID(job dispatch.Job) string {
	name, _ := job.Configuration["name"].(string)
	jobName := "projects/" + testProject + "/locations/" + testRegion + "/jobs/" + JobName(name, job.FlowRunID, job.Attempt.Key())
	return tokenExecution(jobName, job.Attempt.Key())
}

// TestBackend_StartCreatesTheJobWithItsExecution: one CreateJob carrying the
// attempt's start_execution_token starts the execution; nothing runs the job.
func TestBackend_StartCreatesTheJobWithItsExecution(t *testing.T) {
	t.Parallel()
	b, f := newTestBackend(t)
	job := testJob(t, dispatchtest.NewFlowRunID(), nil)
	id := mustStart(t, b, job)
	if id != tokenID(job) {
		t.Errorf("Start = %s, want the token's execution %s", id, tokenID(job))
	}
	j := f.Job(jobOf(t, id))
	if j.GetStartExecutionToken() != job.Attempt.Key() {
		t.Errorf("the job's start_execution_token is %q, want the attempt key %q", j.GetStartExecutionToken(), job.Attempt.Key())
	}
	for where, labels := range map[string]map[string]string{"job": j.GetLabels(), "execution template": j.GetTemplate().GetLabels()} {
		if got := labels[LabelAttempt]; got != job.Attempt.Token() {
			t.Errorf("the %s's label %s is %q, want %q", where, LabelAttempt, got, job.Attempt.Token())
		}
	}
	for method, want := range map[string]int{"CreateJob": 1, "GetJob": 1, "RunJob": 0, "ListExecutions": 0} {
		if n := f.Calls(method); n != want {
			t.Errorf("Start called %s %d times, want %d", method, n, want)
		}
	}
	if st := mustStatus(t, b, id); st.State != dispatch.StateRunning || st.Attempt != job.Attempt.Key() {
		t.Errorf("Status(%s) = %+v, want RUNNING for attempt %s", id, st, job.Attempt.Key())
	}
}

// TestBackend_StartRidesOutTransientErrors: 503s while polling readiness
// (PrefectHQ/prefect#22085) and a CreateJob whose response is lost after it
// created the job neither fail the start nor start a second execution.
func TestBackend_StartRidesOutTransientErrors(t *testing.T) {
	t.Parallel()
	b, f := newTestBackend(t)
	f.SetReadyAfter(2)
	f.Inject("GetJob", status.New(codes.Unavailable, "The service is currently unavailable."), 3)
	f.InjectAfter("CreateJob", status.New(codes.Unavailable, "The service is currently unavailable."), 1)
	run := dispatchtest.NewFlowRunID()
	id := mustStart(t, b, testJob(t, run, nil))
	if n := f.CountExecutions(LabelFlowRunID, run); n != 1 {
		t.Errorf("flow run %s has %d executions, want 1", run, n)
	}
	if n := f.Calls("CreateJob"); n != 2 {
		t.Errorf("CreateJob was called %d times, want 2 (the lost response, then AlreadyExists)", n)
	}
	if n := f.Calls("RunJob"); n != 0 {
		t.Errorf("RunJob was called %d times, want none: the token starts the execution", n)
	}
	if st := mustStatus(t, b, id); st.State != dispatch.StateRunning {
		t.Errorf("Status(%s) = %+v; want RUNNING", id, st)
	}
}

// TestBackend_StartPersistentFailures checks the classification of errors
// that outlast the retries.
func TestBackend_StartPersistentFailures(t *testing.T) {
	t.Parallel()
	// started: the job was created and started its execution before the
	// error (the engine's Find tells).
	tests := []struct {
		name      string
		inject    func(f *cloudrunfake.Server)
		retryable bool
		words     []string
		started   bool
	}{
		{"readiness unavailable", func(f *cloudrunfake.Server) {
			f.Inject("GetJob", status.New(codes.Unavailable, "The service is currently unavailable."), -1)
		}, true, []string{"unavailable"}, true},
		{"not ready in time", func(f *cloudrunfake.Server) { f.SetReadyAfter(1 << 20) },
			true, []string{"not ready after"}, false},
		{"readiness denied", func(f *cloudrunfake.Server) {
			f.Inject("GetJob", cloudrunfake.PermissionDenied("run.jobs.get", "job"), -1)
		}, false, []string{"run.jobs.get", "roles/run.developer"}, true},
		{"image missing", func(f *cloudrunfake.Server) { f.SetImageMissing(testImage) },
			false, []string{testImage, "not found", "cannot be found"}, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			b, f := newTestBackend(t, func(c *Config) { c.ReadyTimeout = 300 * time.Millisecond })
			tt.inject(f)
			run := dispatchtest.NewFlowRunID()
			_, err := b.Start(ctxFor(t), testJob(t, run, nil))
			if err == nil {
				t.Fatal("Start succeeded, want an error")
			}
			if errors.Is(err, dispatch.ErrRetryable) != tt.retryable {
				t.Errorf("errors.Is(err, ErrRetryable) = %v, want %v: %v", !tt.retryable, tt.retryable, err)
			}
			for _, w := range append([]string{run, testProject, testRegion}, tt.words...) {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error does not contain %q: %v", w, err)
				}
			}
			if n, want := f.CountExecutions(LabelFlowRunID, run), map[bool]int{false: 0, true: 1}[tt.started]; n != want {
				t.Errorf("the failed start left %d executions, want %d", n, want)
			}
		})
	}
}

// TestBackend_StartWithoutAttempt: a job without an attempt is a caller's
// bug, refused before anything is created.
func TestBackend_StartWithoutAttempt(t *testing.T) {
	t.Parallel()
	b, f := newTestBackend(t)
	job := testJob(t, dispatchtest.NewFlowRunID(), nil)
	job.Attempt = dispatch.Attempt{}
	if _, err := b.Start(ctxFor(t), job); err == nil || !strings.Contains(err.Error(), "no attempt") {
		t.Errorf("Start without an attempt: %v, want an error saying so", err)
	}
	if _, _, err := b.Find(ctxFor(t), job); err == nil {
		t.Error("Find without an attempt succeeded")
	}
	if n := f.Calls("CreateJob"); n != 0 {
		t.Errorf("CreateJob was called %d times", n)
	}
}

// TestBackend_StartMissingImage: a job that cannot become ready is deleted
// unless keep_job, as Prefect's worker does. A kept one is found, and its
// status is the failed Ready condition, naming the image.
func TestBackend_StartMissingImage(t *testing.T) {
	t.Parallel()
	for _, keep := range []bool{false, true} {
		b, f := newTestBackend(t)
		f.SetImageMissing(testImage)
		job := testJob(t, dispatchtest.NewFlowRunID(), map[string]any{"keep_job": keep})
		if _, err := b.Start(ctxFor(t), job); err == nil {
			t.Fatal("Start with a missing image succeeded")
		}
		id, found := mustFind(t, b, job)
		if n := f.CountJobs(LabelFlowRunID, job.FlowRunID); n != map[bool]int{false: 0, true: 1}[keep] || found != keep {
			t.Errorf("keep_job %v: after the failed start %d jobs are left and Find says %v", keep, n, found)
		}
		if !keep {
			continue
		}
		st := mustStatus(t, b, id)
		if st.State != dispatch.StateExited || st.ExitCode != -1 || !strings.Contains(st.Reason, testImage) || st.Attempt != job.Attempt.Key() {
			t.Errorf("Status of the kept job that never became ready = %+v, want EXITED -1 naming the image, attempt %s", st, job.Attempt.Key())
		}
		if err := b.Stop(ctxFor(t), id); err != nil || !f.HasJob(jobOf(t, id)) {
			t.Errorf("Stop of the kept job that never ran: %v, job kept %v; want nil and kept", err, f.HasJob(jobOf(t, id)))
		}
	}
}

// TestBackend_JobNotReadyYet: a start cut off while the job reconciles
// leaves a job that Find reports; Status reports it PENDING with the
// condition until its execution starts, then the execution.
func TestBackend_JobNotReadyYet(t *testing.T) {
	t.Parallel()
	b, f := newTestBackend(t, func(c *Config) { c.ReadyTimeout = 50 * time.Millisecond })
	f.SetReadyAfter(40)
	job := testJob(t, dispatchtest.NewFlowRunID(), nil)
	if _, err := b.Start(ctxFor(t), job); !errors.Is(err, dispatch.ErrRetryable) {
		t.Fatalf("Start of a job that is not ready in time: %v, want a retryable error", err)
	}
	id, found := mustFind(t, b, job)
	if !found || id != tokenID(job) {
		t.Fatalf("Find = %q, %v; want %q, true", id, found, tokenID(job))
	}
	st := mustStatus(t, b, id)
	if st.State != dispatch.StatePending || !strings.Contains(st.Reason, "has not started its execution") || st.Attempt != job.Attempt.Key() {
		t.Errorf("Status of a job not ready yet = %+v, want PENDING with the reason, attempt %s", st, job.Attempt.Key())
	}
	for i := 0; st.State == dispatch.StatePending && i < 100; i++ {
		st = mustStatus(t, b, id) // each look is a GetJob, which the fake counts toward readiness
	}
	if st.State != dispatch.StateRunning || st.Attempt != job.Attempt.Key() {
		t.Errorf("Status once the job is ready = %+v, want RUNNING, attempt %s", st, job.Attempt.Key())
	}
	if again := mustStart(t, b, job); again != id {
		t.Errorf("Start after the job became ready = %s, want %s", again, id)
	}
	if n := f.CountExecutions(LabelFlowRunID, job.FlowRunID); n != 1 {
		t.Errorf("flow run %s has %d executions, want 1", job.FlowRunID, n)
	}
}

// TestBackend_StopBeforeTheExecutionStarted: Stop deletes a job that has not
// started its execution, keep_job or not, so it does not start it later.
func TestBackend_StopBeforeTheExecutionStarted(t *testing.T) {
	t.Parallel()
	for _, keep := range []bool{false, true} {
		b, f := newTestBackend(t, func(c *Config) { c.ReadyTimeout = 30 * time.Millisecond })
		f.SetReadyAfter(1 << 20)
		job := testJob(t, dispatchtest.NewFlowRunID(), map[string]any{"keep_job": keep})
		b.Start(ctxFor(t), job) //nolint:errcheck // not ready in time, by design
		id, found := mustFind(t, b, job)
		if !found {
			t.Fatal("Find did not find the job that is not ready")
		}
		if err := b.Stop(ctxFor(t), id); err != nil {
			t.Fatalf("Stop(%s): %v", id, err)
		}
		if f.HasJob(jobOf(t, id)) {
			t.Errorf("keep_job %v: Stop kept a job that had not started its execution", keep)
		}
		if st := mustStatus(t, b, id); st.State != dispatch.StateNotFound {
			t.Errorf("Status after Stop = %+v, want NOT_FOUND", st)
		}
	}
}

// TestBackend_NameCollision: a job of the attempt's name that belongs to
// another flow run is not taken over, nor found, nor deleted when it failed
// to become ready.
func TestBackend_NameCollision(t *testing.T) {
	t.Parallel()
	b, f := newTestBackend(t)
	first := testJob(t, dispatchtest.NewFlowRunID(), nil)
	id := mustStart(t, b, first)
	second := testJob(t, dispatchtest.NewFlowRunID(), nil)
	j := f.Job(jobOf(t, id))
	f.ForgetJob(j.Name)
	j.Name = jobOf(t, tokenID(second))
	f.SetImageMissing(testImage)
	mustCreateRaw(t, b, j)
	defer func() {
		if !f.HasJob(j.Name) {
			t.Errorf("Start deleted the job %s of another flow run", j.Name)
		}
	}()

	_, err := b.Start(ctxFor(t), second)
	if err == nil || !strings.Contains(err.Error(), "collision") || errors.Is(err, dispatch.ErrRetryable) {
		t.Fatalf("Start of an attempt whose job name is taken: %v, want a permanent collision error", err)
	}
	if id, found := mustFind(t, b, second); found {
		t.Errorf("Find of the colliding attempt found %s", id)
	}
	if n := f.CountExecutions(LabelFlowRunID, second.FlowRunID); n != 0 {
		t.Errorf("the colliding run got %d executions", n)
	}
}

// TestBackend_StopKeepJob: with keep_job, Stop cancels the execution and
// keeps the job.
func TestBackend_StopKeepJob(t *testing.T) {
	t.Parallel()
	b, f := newTestBackend(t)
	id := mustStart(t, b, testJob(t, dispatchtest.NewFlowRunID(), map[string]any{"keep_job": true}))
	if err := b.Stop(ctxFor(t), id); err != nil {
		t.Fatal(err)
	}
	if !f.HasJob(jobOf(t, id)) {
		t.Error("Stop deleted a keep_job job")
	}
	st := mustStatus(t, b, id)
	if st.State != dispatch.StateExited || st.ExitCode == 0 || !strings.Contains(st.Reason, "cancelled") {
		t.Errorf("Status after Stop = %+v; want EXITED non-zero, reason naming the cancellation", st)
	}
}

// TestBackend_StatusOfAForgottenExecution: an execution that is gone while
// its job stays is NOT_FOUND, not a job waiting to start.
func TestBackend_StatusOfAForgottenExecution(t *testing.T) {
	t.Parallel()
	b, f := newTestBackend(t)
	id := mustStart(t, b, testJob(t, dispatchtest.NewFlowRunID(), nil))
	f.ForgetExecution(id)
	if st := mustStatus(t, b, id); st.State != dispatch.StateNotFound {
		t.Errorf("Status of an execution deleted from its job = %+v, want NOT_FOUND", st)
	}
}

// TestBackend_Sweep: finished jobs older than the cut-off are deleted, one
// per attempt, and so are old jobs that never started their execution;
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
		ids[name] = mustStart(t, b, testJob(t, dispatchtest.NewFlowRunID(), vars))
	}
	// A run that ran twice: two attempts, two jobs.
	again := testJob(t, dispatchtest.NewFlowRunID(), map[string]any{"name": "again"})
	ids["again-1"] = mustStart(t, b, again)
	again.Attempt = dispatchtest.NewAttempt(again.FlowRunID)
	ids["again-2"] = mustStart(t, b, again)

	long := time.Now().Add(-2 * time.Hour)
	for name, ok := range map[string]bool{"succeeded": true, "failed": false, "kept": true, "recent": true, "again-1": false, "again-2": true} {
		if err := f.CompleteExecution(ids[name], ok, ""); err != nil {
			t.Fatal(err)
		}
		if name != "recent" {
			if err := f.SetCompletionTime(ids[name], long); err != nil {
				t.Fatal(err)
			}
		}
	}
	// Jobs that never started their execution (their Start was cut off
	// while they reconciled): an old one and a recent one.
	b.cfg.ReadyTimeout = 30 * time.Millisecond
	f.SetReadyAfter(1 << 20)
	for _, name := range []string{"unready-old", "unready-recent"} {
		job := testJob(t, dispatchtest.NewFlowRunID(), map[string]any{"name": name})
		b.Start(ctxFor(t), job) //nolint:errcheck // not ready in time, by design
		ids[name] = tokenID(job)
	}
	if err := f.SetJobCreateTime(jobOf(t, ids["unready-old"]), long); err != nil {
		t.Fatal(err)
	}
	f.SetReadyAfter(0)
	// A job pushpool did not create: no managed label.
	otherID := mustStart(t, b, testJob(t, dispatchtest.NewFlowRunID(), map[string]any{"name": "foreign"}))
	f.CompleteExecution(otherID, true, "")
	f.SetCompletionTime(otherID, long)
	j := f.Job(jobOf(t, otherID))
	delete(j.Labels, LabelManaged)
	f.ForgetJob(j.Name)
	mustCreateRaw(t, b, j)
	f.SetJobCreateTime(j.Name, long)

	deleted, err := b.Sweep(ctxFor(t), testProject, testRegion, time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]bool{"succeeded": false, "failed": false, "running": true, "kept": true, "recent": true,
		"again-1": false, "again-2": false, "unready-old": false, "unready-recent": true}
	if deleted != 5 {
		t.Errorf("Sweep deleted %d jobs, want 5", deleted)
	}
	for name, want := range want {
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

// mustCreateRaw creates j as someone else would, through the API, without a
// start_execution_token.
func mustCreateRaw(t *testing.T, b *Backend, j *runpb.Job) {
	t.Helper()
	cl, err := b.clientsFor(ctxFor(t), credentials{})
	if err != nil {
		t.Fatal(err)
	}
	parent, id, _ := strings.Cut(j.Name, "/jobs/")
	in := proto.Clone(j).(*runpb.Job)
	in.Name, in.TerminalCondition, in.LatestCreatedExecution, in.CreateExecution, in.ExecutionCount = "", nil, nil, nil, 0
	if _, err := cl.jobs.CreateJob(ctxFor(t), &runpb.CreateJobRequest{Parent: parent, JobId: id, Job: in}); err != nil {
		t.Fatal(err)
	}
}

// TestBackend_APIKeySecret: with the dispatcher's secrets configured, the
// job reads the Prefect API key and auth string from Secret Manager and the
// plaintext values are nowhere in it; a configuration's own secret wins.
func TestBackend_APIKeySecret(t *testing.T) {
	t.Parallel()
	const key, auth = "pnu_plaintextkey0123456789", "admin:pass"
	b, f := newTestBackend(t, func(c *Config) {
		c.APIKeySecret = SecretRef{Secret: "prefect-api-key"}
		c.AuthStringSecret = SecretRef{Secret: "projects/other/secrets/prefect-auth", Version: "3"}
	})
	env := map[string]any{"PREFECT_API_KEY": key, "PREFECT_API_AUTH_STRING": auth, "OTHER": "x"}
	tests := []struct {
		name              string
		vars              map[string]any
		wantKey, wantAuth *runpb.SecretKeySelector
	}{
		{"dispatcher's secrets", map[string]any{"env": env},
			&runpb.SecretKeySelector{Secret: "prefect-api-key", Version: "latest"},
			&runpb.SecretKeySelector{Secret: "projects/other/secrets/prefect-auth", Version: "3"}},
		{"the configuration's secret wins", map[string]any{"env": env,
			"prefect_api_key_secret": map[string]any{"secret": "pool-key", "version": "7"}},
			&runpb.SecretKeySelector{Secret: "pool-key", Version: "7"},
			&runpb.SecretKeySelector{Secret: "projects/other/secrets/prefect-auth", Version: "3"}},
		{"env_from_secrets wins", map[string]any{"env": env,
			"env_from_secrets": map[string]any{"PREFECT_API_KEY": map[string]any{"secret": "mine", "version": "1"}}},
			&runpb.SecretKeySelector{Secret: "mine", Version: "1"},
			&runpb.SecretKeySelector{Secret: "projects/other/secrets/prefect-auth", Version: "3"}},
	}
	for _, tt := range tests {
		id := mustStart(t, b, testJob(t, dispatchtest.NewFlowRunID(), tt.vars))
		j := f.Job(jobOf(t, id))
		got := map[string][]*runpb.EnvVar{}
		for _, e := range j.GetTemplate().GetTemplate().GetContainers()[0].GetEnv() {
			got[e.GetName()] = append(got[e.GetName()], e)
			if v := e.GetValue(); strings.Contains(v, key) || strings.Contains(v, auth) {
				t.Errorf("%s: env %s holds the plaintext secret", tt.name, e.GetName())
			}
		}
		for name, want := range map[string]*runpb.SecretKeySelector{"PREFECT_API_KEY": tt.wantKey, "PREFECT_API_AUTH_STRING": tt.wantAuth} {
			if len(got[name]) != 1 || !proto.Equal(got[name][0].GetValueSource().GetSecretKeyRef(), want) {
				t.Errorf("%s: env %s = %v, want one secretKeyRef %v", tt.name, name, got[name], want)
			}
		}
		if len(got["OTHER"]) != 1 || got["OTHER"][0].GetValue() != "x" {
			t.Errorf("%s: env OTHER = %v, want x", tt.name, got["OTHER"])
		}
	}
}

func TestParseSecretRef(t *testing.T) {
	t.Parallel()
	tests := []struct {
		in      string
		want    SecretRef
		wantErr bool
	}{
		{in: ""},
		{in: "prefect-api-key", want: SecretRef{Secret: "prefect-api-key"}},
		{in: "prefect_api_key:3", want: SecretRef{Secret: "prefect_api_key", Version: "3"}},
		{in: "k:latest", want: SecretRef{Secret: "k", Version: "latest"}},
		{in: "projects/p-1/secrets/k", want: SecretRef{Secret: "projects/p-1/secrets/k"}},
		{in: "projects/p-1/secrets/k:prod", want: SecretRef{Secret: "projects/p-1/secrets/k", Version: "prod"}},
		{in: "projects/p-1/secrets/k/versions/4", want: SecretRef{Secret: "projects/p-1/secrets/k", Version: "4"}},
		{in: "projects/1234/secrets/k", want: SecretRef{Secret: "projects/1234/secrets/k"}},
		{in: "projects/example.com:proj/secrets/k:2", want: SecretRef{Secret: "projects/example.com:proj/secrets/k", Version: "2"}},
		{in: "has space", wantErr: true},
		{in: "k:", wantErr: true},
		{in: "projects//secrets/k", wantErr: true},
		{in: "k:v/1", wantErr: true},
	}
	for _, tt := range tests {
		got, err := ParseSecretRef(tt.in)
		if (err != nil) != tt.wantErr || got != tt.want {
			t.Errorf("ParseSecretRef(%q) = %+v, %v; want %+v (error %v)", tt.in, got, err, tt.want, tt.wantErr)
		}
		if err != nil && !strings.Contains(err.Error(), tt.in) {
			t.Errorf("ParseSecretRef(%q) error %q does not name the input", tt.in, err)
		}
	}
	if err := (Config{APIKeySecret: SecretRef{Version: "1"}}).Validate(); err == nil || !strings.Contains(err.Error(), "APIKeySecret") {
		t.Errorf("Validate of a version without a secret: %v, want an error naming APIKeySecret", err)
	}
}

// TestBackend_ConcurrentStartsCreateOnce: dispatchers starting one attempt
// at once make one CreateJob succeed; the others wait for its job.
func TestBackend_ConcurrentStartsCreateOnce(t *testing.T) {
	t.Parallel()
	b, f := newTestBackend(t)
	f.SetReadyAfter(3)
	job := testJob(t, dispatchtest.NewFlowRunID(), nil)
	const n = 8
	ids := make([]string, n)
	errs := make([]error, n)
	var wg sync.WaitGroup
	for i := range n {
		wg.Go(func() { ids[i], errs[i] = b.Start(ctxFor(t), job) })
	}
	wg.Wait()
	for i := range n {
		if errs[i] != nil || ids[i] != ids[0] {
			t.Errorf("Start %d = %q, %v; want %q", i, ids[i], errs[i], ids[0])
		}
	}
	if c := f.CountJobs(LabelFlowRunID, job.FlowRunID); c != 1 {
		t.Errorf("%d jobs for one attempt, want 1", c)
	}
	if c := f.CountExecutions(LabelFlowRunID, job.FlowRunID); c != 1 {
		t.Errorf("%d executions for one attempt, want 1", c)
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
