package ecs

import (
	"encoding/json"
	"errors"
	"maps"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ecs"
	"github.com/aws/aws-sdk-go-v2/service/ecs/types"

	"github.com/pushpool/pushpool/dispatch"
	"github.com/pushpool/pushpool/dispatch/dispatchtest"
	"github.com/pushpool/pushpool/internal/localstack"
)

// TestBackend_Start_awsCalls counts the AWS calls of the start of a fresh
// attempt, by a Backend that has started a run of the deployment before
// (warm: RunTask alone, the revision and the default VPC's subnets
// remembered) and by a new one (cold, as a Lambda invocation: the family's
// latest revision is described and found by its content-hash tag, and the
// subnets are looked up as the worker does), and of a repeated Start of an
// attempt the Backend started (no call). No start looks its task up: the
// clientToken makes RunTask idempotent.
func TestBackend_Start_awsCalls(t *testing.T) {
	t.Parallel()
	cluster := createCluster(t)
	vars := map[string]any{"cluster": cluster, "family": "calls-" + cluster}
	counter := &countingClient{}
	warm := newCountingBackend(t, counter)
	if _, err := warm.Start(t.Context(), newJob(t, vars)); err != nil { // registers the revision
		t.Fatal(err)
	}
	repeated := newJob(t, vars)
	for _, tc := range []struct {
		name    string
		backend *Backend
		job     dispatch.Job
		want    map[string]int
	}{
		{"warm", warm, repeated, map[string]int{"RunTask": 1}},
		{"cold", newCountingBackend(t, counter), newJob(t, vars), map[string]int{"DescribeTaskDefinition": 1, "DescribeVpcs": 1, "DescribeSubnets": 1, "RunTask": 1}},
		{"repeated", warm, repeated, nil},
	} {
		counter.reset()
		if _, err := tc.backend.Start(t.Context(), tc.job); err != nil {
			t.Fatal(err)
		}
		if got := counter.counts(); !maps.Equal(got, tc.want) {
			t.Errorf("%s: Start made the AWS calls %v, want %v", tc.name, got, tc.want)
		}
	}
}

// TestBackend_Start_coldWithAnotherLatestRevision: when the family's latest
// revision holds other content, a new Backend scans the family's newest
// revisions for the content-hash tag, and registers nothing.
func TestBackend_Start_coldWithAnotherLatestRevision(t *testing.T) {
	t.Parallel()
	cluster := createCluster(t)
	vars := map[string]any{"cluster": cluster, "family": "latest-" + cluster}
	counter := &countingClient{}
	first, err := newCountingBackend(t, counter).Start(t.Context(), newJob(t, vars))
	if err != nil {
		t.Fatal(err)
	}
	changed := maps.Clone(vars)
	changed["image"] = "example.com/flows:2"
	if _, err := newCountingBackend(t, counter).Start(t.Context(), newJob(t, changed)); err != nil {
		t.Fatal(err)
	}
	counter.reset()
	id, err := newCountingBackend(t, counter).Start(t.Context(), newJob(t, vars))
	if err != nil {
		t.Fatal(err)
	}
	if got, want := taskDefinitionOf(t, id), taskDefinitionOf(t, first); got != want {
		t.Errorf("the first content ran with %s, want its revision %s", got, want)
	}
	want := map[string]int{"DescribeTaskDefinition": 2, "ListTaskDefinitions": 1, "DescribeVpcs": 1, "DescribeSubnets": 1, "RunTask": 1}
	if got := counter.counts(); !maps.Equal(got, want) {
		t.Errorf("Start made the AWS calls %v, want %v", got, want)
	}
}

// TestBackend_Start_tagsTheAttempt: the task carries the attempt's Token as
// startedBy and as the pushpool.io/attempt tag, and RunTask its clientToken.
func TestBackend_Start_tagsTheAttempt(t *testing.T) {
	t.Parallel()
	cluster := createCluster(t)
	counter := &countingClient{}
	job := newJob(t, map[string]any{"cluster": cluster, "labels": map[string]any{dispatch.LabelAttempt: "a user's value"}})
	id, err := newCountingBackend(t, counter).Start(t.Context(), job)
	if err != nil {
		t.Fatal(err)
	}
	token := job.Attempt.Token()
	var req struct {
		ClientToken, StartedBy string
		Tags                   []struct{ Key, Value string }
	}
	if err := json.Unmarshal(counter.runTasks[0], &req); err != nil {
		t.Fatal(err)
	}
	if req.ClientToken != token || req.StartedBy != token {
		t.Errorf("RunTask with clientToken %q and startedBy %q, want the attempt token %q", req.ClientToken, req.StartedBy, token)
	}
	var values []string
	for _, tag := range req.Tags {
		if tag.Key == dispatch.LabelAttempt {
			values = append(values, tag.Value)
		}
	}
	if !slices.Equal(values, []string{token}) {
		t.Errorf("RunTask tags %s with %q, want only %q", dispatch.LabelAttempt, values, token)
	}
	desc, err := motoECS().DescribeTasks(t.Context(), &ecs.DescribeTasksInput{Cluster: aws.String(cluster), Tasks: []string{taskARN(t, id)}})
	if err != nil || len(desc.Tasks) != 1 {
		t.Fatalf("describe task %s: %v", id, err)
	}
	if got := aws.ToString(desc.Tasks[0].StartedBy); got != token {
		t.Errorf("the task's startedBy is %q, want %q", got, token)
	}
}

// TestBackend_Start_lostResponse: a RunTask that started the task but whose
// response never arrived (a connection reset) is repeated with the same
// clientToken by the SDK's retry within one Start, which gets the task the
// first call started. The next Start of the attempt in this process first
// looks for the attempt's running task (one ListTasks) and runs nothing
// when it finds it; when the task is no longer running, the lookup misses
// and the repeated RunTask's clientToken gets the task all the same.
func TestBackend_Start_lostResponse(t *testing.T) {
	t.Parallel()
	cluster := createCluster(t)
	for _, tc := range []struct {
		name        string
		maxAttempts int
		starts      int
		stop        bool // stop the task between the Starts
		runTasks    int
		listTasks   int
	}{
		{"retried by the SDK", 3, 1, false, 2, 0},
		{"found by the next Start", 1, 2, false, 1, 1},
		{"repeated by the next Start", 1, 2, true, 2, 1},
	} {
		t.Run(tc.name, func(t *testing.T) {
			counter := &countingClient{lose: 1}
			cfg := motoAWS()
			cfg.HTTPClient = counter
			b, err := New(t.Context(), Config{AWS: cfg, Endpoint: moto.URL, MaxAttempts: tc.maxAttempts})
			if err != nil {
				t.Fatal(err)
			}
			job := newJob(t, map[string]any{"cluster": cluster})
			var id string
			for i := range tc.starts {
				id, err = b.Start(t.Context(), job)
				if i < tc.starts-1 {
					if !errors.Is(err, dispatch.ErrRetryable) {
						t.Fatalf("Start whose RunTask response was lost: %v, want a retryable error", err)
					}
					if tc.stop {
						stopTasksOf(t, job)
					}
					continue
				}
				if err != nil {
					t.Fatalf("Start after a lost RunTask response: %v", err)
				}
			}
			if arns := tasksOfFlowRun(t, job.FlowRunID); len(arns) != 1 || arns[0] != taskARN(t, id) {
				t.Errorf("moto holds tasks %v for flow run %s, want only %s", arns, job.FlowRunID, taskARN(t, id))
			}
			if len(counter.runTasks) != tc.runTasks || slices.ContainsFunc(counter.runTasks, func(body []byte) bool { return string(body) != string(counter.runTasks[0]) }) {
				t.Errorf("RunTask was sent %d times, want %d times with one body (the same clientToken)", len(counter.runTasks), tc.runTasks)
			}
			if n := counter.counts()["ListTasks"]; n != tc.listTasks {
				t.Errorf("%d ListTasks calls, want %d", n, tc.listTasks)
			}
		})
	}
}

// stopTasksOf stops the tasks of the job's attempt in moto.
func stopTasksOf(t *testing.T, job dispatch.Job) {
	t.Helper()
	arns, err := moto.TasksStartedBy(t.Context(), job.Attempt.Token())
	if err != nil {
		t.Fatal(err)
	}
	code := 1
	for _, arn := range arns {
		if err := moto.SetTaskStopped(t.Context(), arn, localstack.MotoTaskStop{ExitCode: &code}); err != nil {
			t.Fatal(err)
		}
	}
}

// TestBackend_Start_concurrentInOneProcess: concurrent Starts of one attempt
// in one Backend wait for the first: one RunTask, one task, one id.
func TestBackend_Start_concurrentInOneProcess(t *testing.T) {
	t.Parallel()
	cluster := createCluster(t)
	counter := &countingClient{}
	b := newCountingBackend(t, counter)
	job := newJob(t, map[string]any{"cluster": cluster})
	ids := startConcurrently(t, job, b, b, b, b, b, b, b, b)
	if arns := tasksOfFlowRun(t, job.FlowRunID); len(arns) != 1 || arns[0] != taskARN(t, ids[0]) {
		t.Errorf("moto holds tasks %v for flow run %s, want only %s", arns, job.FlowRunID, ids[0])
	}
	if got := counter.counts(); got["RunTask"] != 1 || got["ListTasks"] != 0 || got["RegisterTaskDefinition"] > 1 {
		t.Errorf("8 concurrent Starts of one attempt made the AWS calls %v, want one RunTask, no ListTasks and at most one registration", got)
	}
}

// TestBackend_Start_concurrentInTwoProcesses: Backends that share no memory
// (two dispatcher processes), warm or cold, start one attempt at the same
// time and one after another: RunTask's clientToken makes it one task,
// and every Start returns its id.
func TestBackend_Start_concurrentInTwoProcesses(t *testing.T) {
	t.Parallel()
	cluster := createCluster(t)
	vars := map[string]any{"cluster": cluster, "family": "two-" + cluster}
	one, other := &countingClient{}, &countingClient{}
	a, b := newCountingBackend(t, one), newCountingBackend(t, other)
	for _, bk := range []*Backend{a, b} { // warm both
		if _, err := bk.Start(t.Context(), newJob(t, vars)); err != nil {
			t.Fatal(err)
		}
	}
	for _, tc := range []struct {
		name     string
		backends []*Backend
	}{
		{"warm", []*Backend{a, b, a, b, a, b}},
		{"cold", []*Backend{newCountingBackend(t, one), newCountingBackend(t, other), newCountingBackend(t, one)}},
	} {
		one.reset()
		other.reset()
		job := newJob(t, vars)
		ids := startConcurrently(t, job, tc.backends...)
		if arns := tasksOfFlowRun(t, job.FlowRunID); len(arns) != 1 || arns[0] != taskARN(t, ids[0]) {
			t.Errorf("%s: moto holds tasks %v for flow run %s, want only %s", tc.name, arns, job.FlowRunID, ids[0])
		}
		if n := one.counts()["ListTasks"] + other.counts()["ListTasks"]; n != 0 {
			t.Errorf("%s: %d ListTasks calls, want none", tc.name, n)
		}
		// A later Start by a Backend that never tried the attempt.
		if id, err := newCountingBackend(t, one).Start(t.Context(), job); err != nil || id != ids[0] {
			t.Errorf("%s: a third process's Start = %q, %v; want %q", tc.name, id, err, ids[0])
		}
		if n := len(tasksOfFlowRun(t, job.FlowRunID)); n != 1 {
			t.Errorf("%s: moto holds %d tasks for flow run %s after a third process's Start, want 1", tc.name, n, job.FlowRunID)
		}
	}
}

// startConcurrently starts job once on each backend at the same time and
// returns the ids, failing the test unless all Starts return one id.
func startConcurrently(t *testing.T, job dispatch.Job, backends ...*Backend) []string {
	t.Helper()
	ids := make([]string, len(backends))
	errs := make([]error, len(backends))
	var wg sync.WaitGroup
	for i, bk := range backends {
		wg.Go(func() { ids[i], errs[i] = bk.Start(t.Context(), job) })
	}
	wg.Wait()
	for i := range backends {
		if errs[i] != nil {
			t.Fatalf("concurrent Start %d of attempt %s: %v", i, job.Attempt.Key(), errs[i])
		}
		if ids[i] != ids[0] {
			t.Fatalf("concurrent Starts of one attempt returned %q and %q, want one id", ids[0], ids[i])
		}
	}
	return ids
}

// TestBackend_Start_retriedRunTaskKeepsItsToken: a throttled or failed
// RunTask is retried by the SDK with the same clientToken.
func TestBackend_Start_retriedRunTaskKeepsItsToken(t *testing.T) {
	cluster := createCluster(t)
	for _, fault := range []localstack.MotoFault{
		{Type: "ThrottlingException", Message: "Rate exceeded"},
		{Status: 500, Type: "ServerException", Message: "Service unavailable"},
	} {
		t.Run(fault.Type, func(t *testing.T) {
			fault.Action, fault.Times = "RunTask", 1
			if err := moto.InjectFault(t.Context(), fault); err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { moto.ClearFaults(t.Context()) })
			counter := &countingClient{}
			job := newJob(t, map[string]any{"cluster": cluster})
			if _, err := newCountingBackend(t, counter).Start(t.Context(), job); err != nil {
				t.Fatalf("Start after one %s: %v", fault.Type, err)
			}
			if len(counter.runTasks) != 2 {
				t.Fatalf("RunTask was sent %d times, want 2", len(counter.runTasks))
			}
			for i, body := range counter.runTasks {
				var req struct{ ClientToken string }
				if err := json.Unmarshal(body, &req); err != nil || req.ClientToken != job.Attempt.Token() {
					t.Errorf("RunTask %d carried clientToken %q (%v), want %q", i, req.ClientToken, err, job.Attempt.Token())
				}
			}
		})
	}
}

// TestBackend_Start_conflictingRepeat: a repeated Start of an attempt whose
// request differs from the first (here a changed env; in practice a
// revision registered in between) gets ECS's ConflictException, which names
// the first task: Start returns that task and starts none.
func TestBackend_Start_conflictingRepeat(t *testing.T) {
	t.Parallel()
	cluster := createCluster(t)
	b := newTestBackend(t)
	job := newJob(t, map[string]any{"cluster": cluster})
	first, err := b.Start(t.Context(), job)
	if err != nil {
		t.Fatal(err)
	}
	changed := dispatchtest.RenderJob(t, PoolType, DefaultBaseJobTemplate(), map[string]any{"cluster": cluster, "env": map[string]any{"EXTRA": "1"}}, job.FlowRunID)
	changed.Attempt = job.Attempt
	again, err := b.Start(t.Context(), changed)
	if err != nil {
		t.Fatalf("a repeated Start with another request: %v, want the first task", err)
	}
	if again != first {
		t.Errorf("a repeated Start with another request returned %q, want %q", again, first)
	}
	if n := len(tasksOfFlowRun(t, job.FlowRunID)); n != 1 {
		t.Errorf("moto holds %d tasks for flow run %s, want 1", n, job.FlowRunID)
	}
}

// TestBackend_Start_defaultCluster: without a cluster the task runs in the
// account's default cluster and the id names the cluster by ARN, as the
// worker records it; Find and a conflicting repeat resolve the same ARN.
func TestBackend_Start_defaultCluster(t *testing.T) {
	t.Parallel()
	if _, err := motoECS().CreateCluster(t.Context(), &ecs.CreateClusterInput{ClusterName: aws.String("default")}); err != nil {
		t.Fatal(err)
	}
	b := newTestBackend(t)
	job := newJob(t, nil)
	id, err := b.Start(t.Context(), job)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(id, "arn:aws:ecs:"+testRegion+":123456789012:cluster/default::") {
		t.Errorf("Start in the default cluster returned %q, want the cluster's ARN before ::", id)
	}
	if got, found, err := b.Find(t.Context(), job); err != nil || !found || got != id {
		t.Errorf("Find = %q, %v, %v; want %q", got, found, err, id)
	}
	changed := dispatchtest.RenderJob(t, PoolType, DefaultBaseJobTemplate(), map[string]any{"env": map[string]any{"EXTRA": "1"}}, job.FlowRunID)
	changed.Attempt = job.Attempt
	if again, err := b.Start(t.Context(), changed); err != nil || again != id {
		t.Errorf("a conflicting repeat = %q, %v; want %q", again, err, id)
	}
}

// TestBackend_Start_withoutAttempt: a job without an attempt is the
// caller's bug; Start and Find refuse it before calling AWS.
func TestBackend_Start_withoutAttempt(t *testing.T) {
	t.Parallel()
	counter := &countingClient{}
	b := newCountingBackend(t, counter)
	job := newJob(t, map[string]any{"cluster": "never-called"})
	job.Attempt = dispatch.Attempt{}
	if _, err := b.Start(t.Context(), job); err == nil || !strings.Contains(err.Error(), job.FlowRunID) || !strings.Contains(err.Error(), "attempt") {
		t.Errorf("Start without an attempt: %v, want an error naming the flow run and the attempt", err)
	}
	if _, _, err := b.Find(t.Context(), job); err == nil {
		t.Error("Find without an attempt succeeded")
	}
	job.Attempt = dispatchtest.NewAttempt(dispatchtest.NewFlowRunID())
	if _, err := b.Start(t.Context(), job); err == nil {
		t.Error("Start with another flow run's attempt succeeded")
	}
	if n := counter.total(); n != 0 {
		t.Errorf("%d AWS calls, want none", n)
	}
}

// TestMotoServer_runTaskClientToken checks the test server's emulation of
// RunTask's clientToken, on which the tests above rely (moto ignores it):
// a repeated request is answered with the first response (the second of
// two sequential starts whose first response was forgotten), concurrent
// ones start one task, another request with the token gets a
// ConflictException naming the task, and the token is per cluster.
func TestMotoServer_runTaskClientToken(t *testing.T) {
	t.Parallel()
	cluster, other := createCluster(t), createCluster(t)+"-other"
	if _, err := motoECS().CreateCluster(t.Context(), &ecs.CreateClusterInput{ClusterName: aws.String(other)}); err != nil {
		t.Fatal(err)
	}
	// A real RunTask request, captured from a Start, with a fresh token.
	counter := &countingClient{}
	if _, err := newCountingBackend(t, counter).Start(t.Context(), newJob(t, map[string]any{"cluster": cluster})); err != nil {
		t.Fatal(err)
	}
	var in ecs.RunTaskInput
	if err := json.Unmarshal(counter.runTasks[0], &in); err != nil {
		t.Fatal(err)
	}
	token := dispatchtest.NewAttempt(dispatchtest.NewFlowRunID()).Token()
	in.ClientToken, in.StartedBy = aws.String(token), aws.String(token)
	run := func(in ecs.RunTaskInput) (string, error) {
		out, err := motoECS().RunTask(t.Context(), &in)
		if err != nil {
			return "", err
		}
		if len(out.Tasks) != 1 {
			t.Fatalf("RunTask returned %d tasks", len(out.Tasks))
		}
		return aws.ToString(out.Tasks[0].TaskArn), nil
	}
	arns := make([]string, 6)
	var wg sync.WaitGroup
	for i := range arns {
		wg.Go(func() {
			var err error
			if arns[i], err = run(in); err != nil {
				t.Errorf("RunTask %d: %v", i, err)
			}
		})
	}
	wg.Wait()
	if again, err := run(in); err != nil || again != arns[0] {
		t.Errorf("a repeated RunTask = %q, %v; want %q", again, err, arns[0])
	}
	if got, err := moto.TasksStartedBy(t.Context(), token); err != nil || len(got) != 1 || slices.ContainsFunc(arns, func(a string) bool { return a != got[0] }) {
		t.Errorf("after 7 RunTasks with one token moto holds %v (%v), and they returned %v; want one task", got, err, arns)
	}
	changed := in
	changed.Group = aws.String("another-group")
	_, err := run(changed)
	var conflict *types.ConflictException
	if !errors.As(err, &conflict) || !slices.Equal(conflict.ResourceIds, arns[:1]) {
		t.Errorf("RunTask with the token and another request: %v, want a ConflictException naming %s", err, arns[0])
	}
	elsewhere := in
	elsewhere.Cluster = aws.String(other)
	if arn, err := run(elsewhere); err != nil || arn == arns[0] {
		t.Errorf("RunTask with the token in another cluster = %q, %v; want a new task", arn, err)
	}
}

// TestBackend_Start_coldBurstSharesLookups: a new Backend starting a burst
// of runs of one deployment at once looks up the revision and the subnets
// once for all of them, not once per run that missed its memory.
func TestBackend_Start_coldBurstSharesLookups(t *testing.T) {
	t.Parallel()
	cluster := createCluster(t)
	vars := map[string]any{"cluster": cluster, "family": "burst-" + cluster}
	counter := &countingClient{}
	if _, err := newCountingBackend(t, counter).Start(t.Context(), newJob(t, vars)); err != nil { // registers the revision
		t.Fatal(err)
	}
	counter.reset()
	b := newCountingBackend(t, counter)
	const n = 12
	var wg sync.WaitGroup
	for range n {
		job := newJob(t, vars)
		wg.Go(func() {
			if _, err := b.Start(t.Context(), job); err != nil {
				t.Error(err)
			}
		})
	}
	wg.Wait()
	got := counter.counts()
	if got["RunTask"] != n || got["DescribeTaskDefinition"] > 1 || got["ListTaskDefinitions"] > 1 || got["DescribeVpcs"] > 1 || got["DescribeSubnets"] > 1 {
		t.Errorf("%d concurrent cold Starts made the AWS calls %v, want %d RunTask and each lookup at most once", n, got, n)
	}
}
