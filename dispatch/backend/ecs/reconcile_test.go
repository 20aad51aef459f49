package ecs

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ecs"
	"github.com/aws/aws-sdk-go-v2/service/ecs/types"

	"github.com/pushpool/pushpool/dispatch"
	"github.com/pushpool/pushpool/dispatch/dispatchtest"
	"github.com/pushpool/pushpool/dispatch/prefect"
	"github.com/pushpool/pushpool/internal/localstack"
)

// These tests measure what one reconcile pass costs over many RUNNING runs
// on ECS: AWS calls (through awsRecorder) and Prefect requests (through
// prefectCounter), against moto and the package's Prefect server.

// awsRecorder is an AWS SDK HTTP client that counts calls by action and
// records the task ARNs each DescribeTasks call asked about.
type awsRecorder struct {
	mu        sync.Mutex
	actions   map[string]int
	described [][]string
}

func (a *awsRecorder) Do(r *http.Request) (*http.Response, error) {
	var body []byte
	if r.Body != nil {
		body, _ = io.ReadAll(r.Body)
		r.Body.Close()
		r.Body = io.NopCloser(bytes.NewReader(body))
	}
	action := r.Header.Get("X-Amz-Target")
	action = action[strings.LastIndexByte(action, '.')+1:]
	a.mu.Lock()
	if a.actions == nil {
		a.actions = map[string]int{}
	}
	a.actions[action]++
	if action == "DescribeTasks" {
		var in struct{ Tasks []string }
		_ = json.Unmarshal(body, &in)
		a.described = append(a.described, in.Tasks)
	}
	a.mu.Unlock()
	return http.DefaultClient.Do(r)
}

// take returns the calls by action and the DescribeTasks batches since the
// last take.
func (a *awsRecorder) take() (map[string]int, [][]string) {
	a.mu.Lock()
	defer a.mu.Unlock()
	actions, described := a.actions, a.described
	a.actions, a.described = nil, nil
	return actions, described
}

// prefectCounter counts the requests of a Prefect client by route, but for
// the CSRF token, which a client fetches once in its life (when the server
// enables CSRF protection), not per pass.
type prefectCounter struct {
	mu     sync.Mutex
	routes map[string]int
}

func (p *prefectCounter) RoundTrip(r *http.Request) (*http.Response, error) {
	route := r.Method + " " + r.URL.Path
	if strings.HasSuffix(r.URL.Path, "/csrf-token") {
		return http.DefaultTransport.RoundTrip(r)
	}
	p.mu.Lock()
	if p.routes == nil {
		p.routes = map[string]int{}
	}
	p.routes[route]++
	p.mu.Unlock()
	return http.DefaultTransport.RoundTrip(r)
}

// take returns the total and the requests by route since the last take.
func (p *prefectCounter) take() (int, map[string]int) {
	p.mu.Lock()
	defer p.mu.Unlock()
	n := 0
	for _, v := range p.routes {
		n += v
	}
	routes := p.routes
	p.routes = nil
	return n, routes
}

// runningPool is a pool whose runs are RUNNING, each with a RUNNING task in
// moto recorded as its infrastructure_pid.
type runningPool struct {
	name    string
	cluster string
	runs    []prefect.FlowRun
	pids    map[string]string // flow run id -> infrastructure_pid
}

// newRunningPool creates a pool, a deployment and n RUNNING runs of it, and
// starts a task in moto for each (RunTask starts up to 10 at once).
func newRunningPool(t *testing.T, api *prefect.Client, n int) *runningPool {
	t.Helper()
	ctx := t.Context()
	cluster := createCluster(t)
	p := &runningPool{name: "reconcile-" + dispatchtest.NewFlowRunID()[:8], cluster: cluster, pids: map[string]string{}}
	if _, err := api.CreateWorkPool(ctx, prefect.WorkPoolCreate{Name: p.name, Type: PoolType, BaseJobTemplate: DefaultBaseJobTemplate()}); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { api.DeleteWorkPool(context.Background(), p.name) })
	flow, err := api.CreateFlow(ctx, "flow-"+p.name, nil)
	if err != nil {
		t.Fatal(err)
	}
	dep, err := api.CreateDeployment(ctx, prefect.DeploymentCreate{Name: "dep", FlowID: flow.ID, WorkPoolName: p.name, JobVariables: map[string]any{"cluster": cluster}})
	if err != nil {
		t.Fatal(err)
	}
	aws := motoECS()
	td, err := aws.RegisterTaskDefinition(ctx, &ecs.RegisterTaskDefinitionInput{Family: awsString("reconcile-" + cluster),
		ContainerDefinitions: []types.ContainerDefinition{{Name: awsString("prefect"), Image: awsString("prefecthq/prefect:3.9.1-python3.11"), Memory: aws32(512)}}})
	if err != nil {
		t.Fatal(err)
	}
	var arns []string
	for len(arns) < n {
		out, err := aws.RunTask(ctx, &ecs.RunTaskInput{Cluster: &cluster, TaskDefinition: td.TaskDefinition.TaskDefinitionArn, Count: aws32(min(10, n-len(arns))), LaunchType: types.LaunchTypeFargate, NetworkConfiguration: fargateNetwork})
		if err != nil {
			t.Fatal(err)
		}
		for _, task := range out.Tasks {
			arns = append(arns, *task.TaskArn)
		}
	}
	var (
		mu  sync.Mutex
		wg  sync.WaitGroup
		sem = make(chan struct{}, 4)
	)
	for _, arn := range arns {
		wg.Go(func() {
			sem <- struct{}{}
			defer func() { <-sem }()
			run, err := api.CreateFlowRunFromDeployment(ctx, dep.ID, prefect.DeploymentFlowRunCreate{State: &prefect.StateCreate{Type: prefect.StateRunning, Name: "Running"}})
			if err != nil {
				t.Errorf("create a running flow run: %v", err)
				return
			}
			pid := cluster + "::" + arn
			if err := api.UpdateFlowRun(ctx, run.ID, prefect.FlowRunUpdate{InfrastructurePID: &pid}); err != nil {
				t.Errorf("record the pid of flow run %s: %v", run.ID, err)
				return
			}
			mu.Lock()
			p.runs = append(p.runs, run)
			p.pids[run.ID] = pid
			mu.Unlock()
		})
	}
	wg.Wait()
	if t.Failed() {
		t.FailNow()
	}
	return p
}

// fargateNetwork lets moto start Fargate tasks, which need no container
// instances.
var fargateNetwork = &types.NetworkConfiguration{AwsvpcConfiguration: &types.AwsVpcConfiguration{Subnets: []string{"subnet-0123456789"}}}

func awsString(s string) *string { return &s }
func aws32(n int) *int32         { v := int32(n); return &v }

// reconcileHarness is one dispatcher's reconciler over moto and Prefect,
// with its AWS calls and Prefect requests counted.
type reconcileHarness struct {
	rec     *dispatch.Reconciler
	aws     *awsRecorder
	prefect *prefectCounter
	logs    *logRecorder
}

func newReconcileHarness(t *testing.T, cfg dispatch.ReconcileConfig) *reconcileHarness {
	t.Helper()
	h := &reconcileHarness{aws: &awsRecorder{}, prefect: &prefectCounter{}, logs: &logRecorder{}}
	awsCfg := motoAWS()
	awsCfg.HTTPClient = h.aws
	b, err := New(t.Context(), Config{AWS: awsCfg, Endpoint: moto.URL, MaxAttempts: 3, MaxBackoff: 20 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	api, err := prefect.New(prefect.Config{URL: srv.URL, HTTPClient: &http.Client{Transport: h.prefect}})
	if err != nil {
		t.Fatal(err)
	}
	d, err := dispatch.New(dispatch.Config{WorkerName: "pushpool-reconcile-test"}, api, b, slog.New(h.logs))
	if err != nil {
		t.Fatal(err)
	}
	if h.rec, err = dispatch.NewReconciler(d, cfg); err != nil {
		t.Fatal(err)
	}
	return h
}

// logRecorder keeps the records of warning level and above.
type logRecorder struct {
	mu   sync.Mutex
	warn []string
}

func (l *logRecorder) Enabled(_ context.Context, level slog.Level) bool {
	return level >= slog.LevelWarn
}
func (l *logRecorder) Handle(_ context.Context, r slog.Record) error {
	l.mu.Lock()
	l.warn = append(l.warn, r.Message)
	l.mu.Unlock()
	return nil
}
func (l *logRecorder) WithAttrs([]slog.Attr) slog.Handler { return l }
func (l *logRecorder) WithGroup(string) slog.Handler      { return l }

func (l *logRecorder) take() []string {
	l.mu.Lock()
	defer l.mu.Unlock()
	w := l.warn
	l.warn = nil
	return w
}

func testAPI(t *testing.T) *prefect.Client {
	t.Helper()
	api, err := prefect.New(prefect.Config{URL: srv.URL, MaxRetries: 10})
	if err != nil {
		t.Fatal(err)
	}
	return api
}

// TestReconciler_RunOnce_batchesAWSCallsAndPrefectRequests: one reconcile
// pass over 250 RUNNING ECS runs costs ceil(250/100) DescribeTasks calls and
// 4 Prefect requests (pending and cancelling runs, two pages of running
// runs, one heartbeat count), and still crashes the runs whose tasks exited.
func TestReconciler_RunOnce_batchesAWSCallsAndPrefectRequests(t *testing.T) {
	t.Parallel()
	const n = 250
	api := testAPI(t)
	pool := newRunningPool(t, api, n)
	h := newReconcileHarness(t, dispatch.ReconcileConfig{})

	res, err := h.rec.RunOnce(t.Context(), pool.name)
	if err != nil {
		t.Fatal(err)
	}
	actions, batches := h.aws.take()
	requests, routes := h.prefect.take()
	t.Logf("one pass over %d RUNNING runs: AWS calls %v, Prefect requests %d %v", n, actions, requests, routes)
	if res.Checked != n || len(res.Runs) != 0 || res.Deferred != 0 {
		t.Errorf("pass over healthy runs = checked %d, deferred %d, runs %+v; want %d checked and nothing done", res.Checked, res.Deferred, res.Runs, n)
	}
	if want := map[string]int{"DescribeTasks": (n + 99) / 100}; fmt.Sprint(actions) != fmt.Sprint(want) {
		t.Errorf("AWS calls = %v, want %v", actions, want)
	}
	for _, b := range batches {
		if len(b) > 100 {
			t.Errorf("a DescribeTasks call asked about %d tasks; ECS allows 100", len(b))
		}
	}
	if requests > 5 {
		t.Errorf("Prefect requests = %d %v, want at most 5", requests, routes)
	}

	// Three tasks exit with code 1: the next pass crashes exactly their runs,
	// with the same number of DescribeTasks calls.
	code := 1
	crashed := map[string]bool{}
	for _, run := range pool.runs[:3] {
		if err := moto.SetTaskStopped(t.Context(), taskARN(t, pool.pids[run.ID]), localstack.MotoTaskStop{ExitCode: &code}); err != nil {
			t.Fatal(err)
		}
		crashed[run.ID] = true
	}
	res, err = h.rec.RunOnce(t.Context(), pool.name)
	if err != nil {
		t.Fatal(err)
	}
	actions, _ = h.aws.take()
	if res.Count(dispatch.ActionCrashed) != 3 || len(res.Runs) != 3 {
		t.Errorf("pass after three tasks exited = %+v; want their three runs crashed", res.Runs)
	}
	for _, c := range res.Runs {
		if !crashed[c.FlowRunID] {
			t.Errorf("run %s was %s; its task runs", c.FlowRunID, c.Action)
		}
	}
	if actions["DescribeTasks"] != (n+99)/100 {
		t.Errorf("DescribeTasks calls of the second pass = %d, want %d", actions["DescribeTasks"], (n+99)/100)
	}
}

// TestReconciler_RunOnce_runningRunsInTurns: with RunningPerPass below the
// number of RUNNING runs, consecutive passes check them RunningPerPass at a
// time in order of start time until every run was checked (the run at a
// turn's boundary is read again by the next), then start over.
func TestReconciler_RunOnce_runningRunsInTurns(t *testing.T) {
	t.Parallel()
	const n, per = 60, 25
	api := testAPI(t)
	pool := newRunningPool(t, api, n)
	h := newReconcileHarness(t, dispatch.ReconcileConfig{RunningPerPass: per})

	seen := map[string]bool{}
	var first []string
	for pass := 1; ; pass++ {
		res, err := h.rec.RunOnce(t.Context(), pool.name)
		if err != nil {
			t.Fatal(err)
		}
		_, batches := h.aws.take()
		described := 0
		for _, b := range batches {
			described += len(b)
			for _, arn := range b {
				seen[arn] = true
			}
			if pass == 1 {
				first = append(first, b...)
			}
		}
		requests, routes := h.prefect.take()
		t.Logf("pass %d: %d runs checked, %d tasks described, %d Prefect requests %v", pass, res.Checked, described, requests, routes)
		if res.Checked > per || described != res.Checked {
			t.Fatalf("pass %d checked %d runs and described %d tasks; want at most %d of both", pass, res.Checked, described, per)
		}
		if res.Checked < per {
			break // the round is over
		}
		if pass > n/(per-1)+1 {
			t.Fatalf("the round did not end after %d passes", pass)
		}
	}
	if len(seen) != n {
		t.Errorf("a round described %d distinct tasks; want all %d", len(seen), n)
	}
	// The next pass starts again from the earliest runs.
	if _, err := h.rec.RunOnce(t.Context(), pool.name); err != nil {
		t.Fatal(err)
	}
	_, batches := h.aws.take()
	var again []string
	for _, b := range batches {
		again = append(again, b...)
	}
	slices.Sort(first)
	slices.Sort(again)
	if !slices.Equal(first, again) {
		t.Errorf("the pass after a round described %d tasks, not the %d of the round's first pass", len(again), len(first))
	}
}

// TestReconciler_RunLeased_oneReconcilerPerLease: four dispatchers'
// reconcilers of one pool try at once; one takes the lease and makes the
// pass, the others read the lease and skip. The holder keeps it within the
// lease period; when it stops (dies), another takes it after the period.
func TestReconciler_RunLeased_oneReconcilerPerLease(t *testing.T) {
	t.Parallel()
	// The period must outlast the first two rounds, SQLite's 503 retries
	// on a loaded 2-core machine included (8 s did not, once in CI).
	const n, reconcilers, period = 120, 4, 20 * time.Second
	api := testAPI(t)
	pool := newRunningPool(t, api, n)
	hs := make([]*reconcileHarness, reconcilers)
	for i := range hs {
		hs[i] = newReconcileHarness(t, dispatch.ReconcileConfig{LeasePeriod: period})
	}
	round := func() (holders []int, describe int) {
		t.Helper()
		ran := make([]bool, len(hs))
		var wg sync.WaitGroup
		for i, h := range hs {
			wg.Go(func() {
				_, ok, err := h.rec.RunLeased(t.Context(), pool.name)
				// SQLite answers 503 while another writer holds the
				// database, and may still do so when the client's retries
				// run out; that reconciler made no pass, which is what a
				// contender does, so it only counts against the check if
				// it is anything else.
				switch {
				case sqliteBusy(err):
					t.Logf("reconciler %d: the SQLite server stayed busy: %v", i, err)
				case err != nil:
					t.Errorf("reconciler %d: %v", i, err)
				}
				ran[i] = ok
			})
		}
		wg.Wait()
		for i, h := range hs {
			actions, _ := h.aws.take()
			describe += actions["DescribeTasks"]
			requests, routes := h.prefect.take()
			t.Logf("reconciler %d: ran %v, AWS %v, Prefect requests %d %v", i, ran[i], actions, requests, routes)
			if ran[i] {
				holders = append(holders, i)
			}
		}
		return holders, describe
	}
	start := time.Now()
	first, describe := round()
	if len(first) != 1 || describe != (n+99)/100 {
		t.Fatalf("reconcilers that made a pass: %v with %d DescribeTasks calls; want one, with %d", first, describe, (n+99)/100)
	}
	holder := first[0]
	again, _ := round()
	if took := time.Since(start); len(again) != 1 || again[0] != holder {
		if took >= period {
			t.Fatalf("the passes of the second round were made by %v, but the first two rounds took %s, longer than the lease period %s: the machine was too loaded to check that the holder %d keeps its lease", again, took.Round(time.Millisecond), period, holder)
		}
		t.Errorf("within the lease period the passes were made by %v; want the holder %d alone", again, holder)
	}
	// The holder stops; after the period another reconciler takes over.
	var next atomic.Int32
	next.Store(-1)
	deadline := time.Now().Add(period + 10*time.Second)
	for next.Load() < 0 && time.Now().Before(deadline) {
		for i, h := range hs {
			if i == holder {
				continue
			}
			if _, ok, err := h.rec.RunLeased(t.Context(), pool.name); sqliteBusy(err) {
				t.Logf("reconciler %d: the SQLite server stayed busy: %v", i, err)
			} else if err != nil {
				t.Fatal(err)
			} else if ok {
				next.Store(int32(i))
				break
			}
		}
		time.Sleep(200 * time.Millisecond)
	}
	if next.Load() < 0 {
		t.Fatalf("no reconciler took the lease within %s of its holder stopping", period+10*time.Second)
	}
}

// sqliteBusy reports whether err is the test server's 503: SQLite answers
// so while another writer holds the database, and may still when the
// client's retries run out.
func sqliteBusy(err error) bool {
	var apiErr *prefect.APIError
	return errors.As(err, &apiErr) && apiErr.StatusCode == http.StatusServiceUnavailable
}

// TestReconciler_RunOnce_backsOffWhenThrottled: DescribeTasks throttled
// (moto answers ThrottlingException) makes a pass stop reading statuses after
// its first call (and the client's retries), leave its runs for later with
// one warning and no per-run error, and back off; the next pass reads no
// status until the backoff ends, a second throttled pass doubles it, and a
// pass that is not throttled ends it. Not parallel: it injects faults.
func TestReconciler_RunOnce_backsOffWhenThrottled(t *testing.T) {
	const n, backoff = 30, 400 * time.Millisecond
	api := testAPI(t)
	pool := newRunningPool(t, api, n)
	h := newReconcileHarness(t, dispatch.ReconcileConfig{ThrottleBackoff: backoff})
	t.Cleanup(func() { moto.ClearFaults(context.Background()) })
	throttle := func() {
		t.Helper()
		if err := moto.InjectFault(t.Context(), localstack.MotoFault{Action: "DescribeTasks", Times: -1, Type: "ThrottlingException", Message: "Rate exceeded"}); err != nil {
			t.Fatal(err)
		}
	}
	pass := func(name string, wantCalls, wantDeferred int, wantBackoff time.Duration, wantWarnings int) {
		t.Helper()
		res, err := h.rec.RunOnce(t.Context(), pool.name)
		if err != nil {
			t.Fatal(err)
		}
		actions, _ := h.aws.take()
		warnings := h.logs.take()
		t.Logf("%s: DescribeTasks calls %d, deferred %d, backoff %s, warnings %q", name, actions["DescribeTasks"], res.Deferred, res.Backoff, warnings)
		if actions["DescribeTasks"] != wantCalls {
			t.Errorf("%s: %d DescribeTasks calls, want %d", name, actions["DescribeTasks"], wantCalls)
		}
		if res.Deferred != wantDeferred || len(res.Runs) != 0 {
			t.Errorf("%s: deferred %d, runs %+v; want %d deferred and none reported", name, res.Deferred, res.Runs, wantDeferred)
		}
		if res.Backoff > wantBackoff || (wantBackoff > 0 && res.Backoff < wantBackoff/2) {
			t.Errorf("%s: backoff %s, want about %s", name, res.Backoff, wantBackoff)
		}
		if len(warnings) != wantWarnings {
			t.Errorf("%s: warnings %q, want %d", name, warnings, wantWarnings)
		}
	}

	throttle()
	// One DescribeTasks call, tried MaxAttempts (3) times by the client.
	pass("throttled", 3, n, backoff, 1)
	pass("backing off", 0, n, backoff, 0)
	time.Sleep(backoff)
	pass("throttled again", 3, n, 2*backoff, 1)
	if err := moto.ClearFaults(t.Context()); err != nil {
		t.Fatal(err)
	}
	time.Sleep(2 * backoff)
	pass("recovered", (n+99)/100, 0, 0, 0)
}

// TestBackend_Statuses reads tasks of two clusters, a forgotten task, a
// task of a cluster that does not exist and an id that is not an ECS task
// id: one DescribeTasks per cluster, each task as Status reports it, the
// malformed id left out.
func TestBackend_Statuses(t *testing.T) {
	t.Parallel()
	ctx := t.Context()
	rec := &awsRecorder{}
	cfg := motoAWS()
	cfg.HTTPClient = rec
	b, err := New(ctx, Config{AWS: cfg, Endpoint: moto.URL, MaxAttempts: 3, MaxBackoff: 20 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	api := motoECS()
	run := func(cluster string) string {
		td, err := api.RegisterTaskDefinition(ctx, &ecs.RegisterTaskDefinitionInput{Family: awsString("statuses"),
			ContainerDefinitions: []types.ContainerDefinition{{Name: awsString("prefect"), Image: awsString("prefecthq/prefect:3.9.1-python3.11"), Memory: aws32(512)}}})
		if err != nil {
			t.Fatal(err)
		}
		out, err := api.RunTask(ctx, &ecs.RunTaskInput{Cluster: &cluster, TaskDefinition: td.TaskDefinition.TaskDefinitionArn, StartedBy: aws.String(dispatchtest.NewFlowRunID() + "-0123abcd"),
			LaunchType: types.LaunchTypeFargate, NetworkConfiguration: fargateNetwork})
		if err != nil {
			t.Fatal(err)
		}
		return cluster + "::" + *out.Tasks[0].TaskArn
	}
	a := createCluster(t)
	b2 := a + "-b"
	if _, err := api.CreateCluster(ctx, &ecs.CreateClusterInput{ClusterName: &b2}); err != nil {
		t.Fatal(err)
	}
	running, stopped, forgotten, other := run(a), run(a), run(a), run(b2)
	code := 137
	if err := moto.SetTaskStopped(ctx, taskARN(t, stopped), localstack.MotoTaskStop{ExitCode: &code, ContainerReason: "OutOfMemoryError"}); err != nil {
		t.Fatal(err)
	}
	if err := moto.ForgetTask(ctx, taskARN(t, forgotten)); err != nil {
		t.Fatal(err)
	}
	noCluster := "no-such-cluster::arn:aws:ecs:us-east-1:123456789012:task/no-such-cluster/0123456789abcdef0123456789abcdef"
	ids := []string{running, stopped, forgotten, other, noCluster, "not an ECS id"}
	rec.take()
	got, err := b.Statuses(ctx, ids)
	if err != nil {
		t.Fatal(err)
	}
	actions, _ := rec.take()
	if actions["DescribeTasks"] != 3 || len(actions) != 1 {
		t.Errorf("AWS calls %v; want one DescribeTasks per cluster (3)", actions)
	}
	if _, ok := got["not an ECS id"]; ok || len(got) != 5 {
		t.Errorf("Statuses = %+v; want the five task ids, not the malformed one", got)
	}
	for _, id := range ids[:5] {
		want, err := b.Status(ctx, id)
		if err != nil {
			t.Fatal(err)
		}
		if fmt.Sprint(got[id]) != fmt.Sprint(want) {
			t.Errorf("Statuses[%s] = %+v, Status = %+v", id, got[id], want)
		}
	}
	if got[running].State != dispatch.StateRunning || got[stopped].ExitCode != 137 || got[forgotten].State != dispatch.StateNotFound || got[noCluster].State != dispatch.StateNotFound {
		t.Errorf("Statuses = %+v", got)
	}
}
