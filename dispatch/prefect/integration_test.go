package prefect_test

import (
	"context"
	"errors"
	"fmt"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/pushpool/pushpool/dispatch/prefect"
	"github.com/pushpool/pushpool/internal/localstack"
)

// srv is the package's real Prefect server, started once by TestMain.
var srv *localstack.Prefect

func TestMain(m *testing.M) {
	os.Exit(localstack.RunTestsWithPrefect(m, localstack.PrefectOptions{}, func(p *localstack.Prefect) {
		srv = p
		// The in-package OpenAPI conformance tests read the same server.
		os.Setenv("PUSHPOOL_TEST_PREFECT_URL", p.URL)
		os.Setenv("PUSHPOOL_TEST_PREFECT_VERSION", p.Version)
	}))
}

func newClient(t *testing.T) *prefect.Client {
	t.Helper()
	// Generous retries: the test server's SQLite database answers 503
	// (SQLITE_BUSY_SNAPSHOT, at once, no busy wait) in bursts when a test
	// creates hundreds of runs while Prefect's services write too.
	c, err := prefect.New(prefect.Config{URL: srv.URL, MaxRetries: 10})
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// unique returns a name no other test uses on the shared server.
func unique(t *testing.T, prefix string) string {
	return fmt.Sprintf("%s-%s-%d", prefix, strings.NewReplacer("/", "-", "_", "-").Replace(strings.ToLower(t.Name())), time.Now().UnixNano())
}

// fixture is a pool, a queue, a flow and a deployment on the real server.
type fixture struct {
	pool       prefect.WorkPool
	queue      prefect.WorkQueue
	flow       prefect.Flow
	deployment prefect.Deployment
}

func newFixture(t *testing.T, ctx context.Context, c *prefect.Client) fixture {
	t.Helper()
	var f fixture
	var err error
	f.pool, err = c.CreateWorkPool(ctx, prefect.WorkPoolCreate{Name: unique(t, "pool"), Type: "process"})
	if err != nil {
		t.Fatalf("create work pool: %v", err)
	}
	t.Cleanup(func() { _ = c.DeleteWorkPool(context.Background(), f.pool.Name) })
	f.queue, err = c.CreateWorkQueue(ctx, f.pool.Name, prefect.WorkQueueCreate{Name: "critical", Priority: ptr(1)})
	if err != nil {
		t.Fatalf("create work queue: %v", err)
	}
	f.flow, err = c.CreateFlow(ctx, unique(t, "flow"), nil)
	if err != nil {
		t.Fatalf("create flow: %v", err)
	}
	f.deployment, err = c.CreateDeployment(ctx, prefect.DeploymentCreate{
		Name: "dep", FlowID: f.flow.ID, WorkPoolName: f.pool.Name, WorkQueueName: f.queue.Name,
		Entrypoint: ptr("flows/hello.py:hello"), JobVariables: map[string]any{"env": map[string]any{"A": "1"}},
	})
	if err != nil {
		t.Fatalf("create deployment: %v", err)
	}
	return f
}

func ptr[T any](v T) *T { return &v }

func TestClient_WorkPoolQueueFlowDeploymentLifecycle(t *testing.T) {
	t.Parallel()
	ctx := t.Context()
	c := newClient(t)
	f := newFixture(t, ctx, c)

	pool, err := c.ReadWorkPool(ctx, f.pool.Name)
	if err != nil {
		t.Fatalf("read work pool: %v", err)
	}
	if pool.Type != "process" || pool.ID != f.pool.ID {
		t.Errorf("read pool = %+v, want type process id %s", pool, f.pool.ID)
	}
	if err := c.UpdateWorkPool(ctx, f.pool.Name, prefect.WorkPoolUpdate{ConcurrencyLimit: ptr(3), Description: ptr("d")}); err != nil {
		t.Fatalf("update work pool: %v", err)
	}
	pool, _ = c.ReadWorkPool(ctx, f.pool.Name)
	if pool.ConcurrencyLimit == nil || *pool.ConcurrencyLimit != 3 || pool.Description == nil || *pool.Description != "d" {
		t.Errorf("after update: limit %v description %v, want 3 and d", pool.ConcurrencyLimit, pool.Description)
	}
	queues, err := c.ListWorkQueues(ctx, f.pool.Name)
	if err != nil || len(queues) != 2 { // the pool's default queue and ours
		t.Fatalf("list queues = %d, %v; want 2", len(queues), err)
	}
	got, err := c.ReadDeploymentByName(ctx, f.flow.Name, "dep")
	if err != nil || got.ID != f.deployment.ID || *got.WorkPoolName != f.pool.Name {
		t.Fatalf("read deployment by name = %+v, %v", got, err)
	}
	if err := c.DeleteDeployment(ctx, got.ID); err != nil {
		t.Fatalf("delete deployment: %v", err)
	}
	_, err = c.ReadDeployment(ctx, got.ID)
	if !prefect.IsNotFound(err) {
		t.Fatalf("read deleted deployment: err = %v, want a typed not-found", err)
	}
	var apiErr *prefect.APIError
	if !errors.As(err, &apiErr) || apiErr.Method != "GET" || !strings.Contains(apiErr.Path, got.ID) {
		t.Errorf("APIError = %+v, want method GET and the deployment id in the path", apiErr)
	}
}

func TestClient_GetScheduledFlowRuns(t *testing.T) {
	t.Parallel()
	ctx := t.Context()
	c := newClient(t)
	f := newFixture(t, ctx, c)

	run, err := c.CreateFlowRunFromDeployment(ctx, f.deployment.ID, prefect.DeploymentFlowRunCreate{})
	if err != nil {
		t.Fatalf("create flow run: %v", err)
	}
	later := time.Now().Add(time.Hour)
	future, err := c.CreateFlowRunFromDeployment(ctx, f.deployment.ID, prefect.DeploymentFlowRunCreate{
		State: &prefect.StateCreate{Type: prefect.StateScheduled, StateDetails: prefect.StateDetails{ScheduledTime: &later}},
	})
	if err != nil {
		t.Fatalf("create future flow run: %v", err)
	}
	before := time.Now().Add(10 * time.Second)
	due, err := c.GetScheduledFlowRuns(ctx, f.pool.Name, prefect.ScheduledRunsRequest{ScheduledBefore: &before})
	if err != nil {
		t.Fatalf("get scheduled flow runs: %v", err)
	}
	if len(due) != 1 || due[0].FlowRun.ID != run.ID || due[0].WorkQueueID != f.queue.ID {
		t.Fatalf("due runs = %+v, want just %s in queue %s (not the future run %s)", due, run.ID, f.queue.ID, future.ID)
	}
	if due[0].FlowRun.StateType == nil || *due[0].FlowRun.StateType != prefect.StateScheduled {
		t.Errorf("due run state = %v, want SCHEDULED", due[0].FlowRun.StateType)
	}
	if got := due[0].FlowRun.JobVariables; got != nil && len(got) != 0 {
		t.Errorf("flow run job variables = %v, want none", got)
	}
}

func TestClient_SetFlowRunState_exactlyOneClaimWins(t *testing.T) {
	t.Parallel()
	ctx := t.Context()
	c := newClient(t)
	f := newFixture(t, ctx, c)

	for round := 0; round < 5; round++ {
		run, err := c.CreateFlowRunFromDeployment(ctx, f.deployment.ID, prefect.DeploymentFlowRunCreate{})
		if err != nil {
			t.Fatalf("create flow run: %v", err)
		}
		// Two dispatchers, each with its own client, propose PENDING at once.
		results := make([]prefect.OrchestrationResult, 2)
		errs := make([]error, 2)
		var wg sync.WaitGroup
		start := make(chan struct{})
		for i := range results {
			wg.Go(func() {
				dc := newClient(t)
				<-start
				results[i], errs[i] = dc.SetFlowRunState(ctx, run.ID, prefect.StateCreate{Type: prefect.StatePending}, false)
			})
		}
		close(start)
		wg.Wait()
		counts := map[prefect.OrchestrationStatus]int{}
		for i := range results {
			if errs[i] != nil {
				t.Fatalf("round %d: set state: %v", round, errs[i])
			}
			counts[results[i].Status]++
		}
		if counts[prefect.Accept] != 1 || counts[prefect.Abort] != 1 {
			t.Fatalf("round %d: verdicts %v, want exactly one ACCEPT and one ABORT", round, counts)
		}
		for _, r := range results {
			if r.Status == prefect.Abort && !strings.Contains(r.Details.Reason, "PENDING") {
				t.Errorf("abort reason %q does not say the run is already PENDING", r.Details.Reason)
			}
		}
	}
}

func TestClient_SetFlowRunState_retryOfAcceptedProposalIsAccepted(t *testing.T) {
	t.Parallel()
	ctx := t.Context()
	c := newClient(t)
	f := newFixture(t, ctx, c)
	run, err := c.CreateFlowRunFromDeployment(ctx, f.deployment.ID, prefect.DeploymentFlowRunCreate{})
	if err != nil {
		t.Fatal(err)
	}
	// The same proposal twice, as a retry after a lost response would send it.
	proposal := prefect.StateCreate{Type: prefect.StatePending, StateDetails: prefect.StateDetails{TransitionID: "6f1c5a52-9b7e-4d8e-a3e1-0c2d4f6a8b10"}}
	first, err := c.SetFlowRunState(ctx, run.ID, proposal, false)
	if err != nil || first.Status != prefect.Accept {
		t.Fatalf("first proposal = %s, %v; want ACCEPT", first.Status, err)
	}
	again, err := c.SetFlowRunState(ctx, run.ID, proposal, false)
	if err != nil || again.Status != prefect.Accept {
		t.Fatalf("repeated proposal = %s (%s), %v; want ACCEPT: the run is ours", again.Status, again.Details.Reason, err)
	}
	// A different dispatcher's proposal is still refused.
	other, err := c.SetFlowRunState(ctx, run.ID, prefect.StateCreate{Type: prefect.StatePending}, false)
	if err != nil || other.Status != prefect.Abort {
		t.Fatalf("competing proposal = %s, %v; want ABORT", other.Status, err)
	}
}

func TestClient_FilterFlowRuns_pagesPast200(t *testing.T) {
	t.Parallel()
	ctx := t.Context()
	c := newClient(t)
	f := newFixture(t, ctx, c)
	const n = 230
	var wg sync.WaitGroup
	sem := make(chan struct{}, 1) // one at a time: concurrent creates here starve SQLite into long 503 bursts
	errs := make(chan error, n)
	for i := 0; i < n; i++ {
		wg.Go(func() {
			sem <- struct{}{}
			defer func() { <-sem }()
			if _, err := c.CreateFlowRunFromDeployment(ctx, f.deployment.ID, prefect.DeploymentFlowRunCreate{IdempotencyKey: uuid.NewString()}); err != nil {
				errs <- err
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatalf("create flow run: %v", err)
	}
	runs, err := c.FilterFlowRuns(ctx, prefect.FlowRunFilter{DeploymentIDs: []string{f.deployment.ID}, StateTypes: []prefect.StateType{prefect.StateScheduled}})
	if err != nil {
		t.Fatal(err)
	}
	seen := map[string]bool{}
	for _, r := range runs {
		seen[r.ID] = true
	}
	if len(runs) != n || len(seen) != n {
		t.Fatalf("filter returned %d runs (%d distinct), want %d", len(runs), len(seen), n)
	}
}

func TestClient_UpdateFlowRun_infrastructurePIDAndLogs(t *testing.T) {
	t.Parallel()
	ctx := t.Context()
	c := newClient(t)
	f := newFixture(t, ctx, c)
	run, err := c.CreateFlowRunFromDeployment(ctx, f.deployment.ID, prefect.DeploymentFlowRunCreate{})
	if err != nil {
		t.Fatal(err)
	}
	pid := "my-cluster::arn:aws:ecs:eu-west-1:123456789012:task/my-cluster/abc"
	if err := c.UpdateFlowRun(ctx, run.ID, prefect.FlowRunUpdate{InfrastructurePID: &pid}); err != nil {
		t.Fatalf("update flow run: %v", err)
	}
	if err := c.UpdateFlowRunLabels(ctx, run.ID, map[string]string{"prefect.worker.name": "pushpool"}); err != nil {
		t.Fatalf("update labels: %v", err)
	}
	got, err := c.ReadFlowRun(ctx, run.ID)
	if err != nil {
		t.Fatal(err)
	}
	if got.InfrastructurePID == nil || *got.InfrastructurePID != pid || got.Labels["prefect.worker.name"] != "pushpool" {
		t.Fatalf("flow run pid %v labels %v", got.InfrastructurePID, got.Labels)
	}
	if err := c.CreateLogs(ctx, []prefect.Log{{Name: "pushpool.dispatch", Level: prefect.LogInfo, Message: "submitted", Timestamp: time.Now(), FlowRunID: run.ID}}); err != nil {
		t.Fatalf("create logs: %v", err)
	}
	logs, err := c.ReadFlowRunLogs(ctx, run.ID)
	if err != nil || len(logs) != 1 || logs[0].Message != "submitted" {
		t.Fatalf("logs = %+v, %v", logs, err)
	}
}

func TestClient_Events(t *testing.T) {
	t.Parallel()
	ctx := t.Context()
	c := newClient(t)
	id := newID()
	resource := "prefect.flow-run." + id
	since := time.Now().Add(-time.Minute)
	err := c.EmitEvents(ctx, []prefect.Event{{Event: "prefect.flow-run.heartbeat", Resource: map[string]string{"prefect.resource.id": resource}}})
	if err != nil {
		t.Fatalf("emit: %v", err)
	}
	var events []prefect.Event
	deadline := time.Now().Add(15 * time.Second) // events are persisted asynchronously
	for time.Now().Before(deadline) {
		events, err = c.ReadEvents(ctx, prefect.EventFilter{Since: &since, Names: []string{"prefect.flow-run.heartbeat"}, ResourceIDs: []string{resource}}, 0)
		if err != nil {
			t.Fatalf("read events: %v", err)
		}
		if len(events) > 0 {
			break
		}
		time.Sleep(200 * time.Millisecond)
	}
	if len(events) != 1 || events[0].Resource["prefect.resource.id"] != resource {
		t.Fatalf("events = %+v, want the one heartbeat", events)
	}
}

func TestClient_VariablesBlocksLimitsAutomations(t *testing.T) {
	t.Parallel()
	ctx := t.Context()
	c := newClient(t)

	name := strings.ReplaceAll(unique(t, "var"), "-", "_")
	if _, err := c.CreateVariable(ctx, prefect.Variable{Name: name, Value: map[string]any{"image": "python:3.12"}}); err != nil {
		t.Fatalf("create variable: %v", err)
	}
	v, err := c.ReadVariable(ctx, name)
	if err != nil || v.Value.(map[string]any)["image"] != "python:3.12" {
		t.Fatalf("read variable = %+v, %v", v, err)
	}
	if err := c.DeleteVariable(ctx, name); err != nil {
		t.Fatal(err)
	}
	if _, err := c.ReadVariable(ctx, name); !prefect.IsNotFound(err) {
		t.Fatalf("read deleted variable: %v, want not found", err)
	}

	if err := c.InstallSystemBlockTypes(ctx); err != nil {
		t.Fatalf("install system block types: %v", err)
	}
	bt, err := c.ReadBlockType(ctx, "secret")
	if err != nil {
		t.Fatal(err)
	}
	schema, err := c.LatestBlockSchema(ctx, bt.ID)
	if err != nil {
		t.Fatal(err)
	}
	blockName := unique(t, "tok")
	doc, err := c.CreateBlockDocument(ctx, prefect.BlockDocument{Name: &blockName, Data: map[string]any{"value": "s3cr3t"}, BlockSchemaID: schema.ID, BlockTypeID: bt.ID})
	if err != nil {
		t.Fatalf("create block: %v", err)
	}
	byName, err := c.ReadBlockDocumentByName(ctx, "secret", blockName)
	if err != nil || byName.ID != doc.ID || byName.Data["value"] != "s3cr3t" {
		t.Fatalf("read block by name = %+v, %v; want the revealed secret", byName, err)
	}
	byID, err := c.ReadBlockDocument(ctx, doc.ID)
	if err != nil || byID.Data["value"] != "s3cr3t" {
		t.Fatalf("read block by id = %+v, %v", byID, err)
	}

	gcl, err := c.CreateGlobalConcurrencyLimit(ctx, prefect.GlobalConcurrencyLimit{Name: unique(t, "gcl"), Limit: 2, Active: true})
	if err != nil {
		t.Fatalf("create global limit: %v", err)
	}
	if got, err := c.ReadGlobalConcurrencyLimit(ctx, gcl.Name); err != nil || got.Limit != 2 {
		t.Fatalf("read global limit = %+v, %v", got, err)
	}
	if err := c.DeleteGlobalConcurrencyLimit(ctx, gcl.ID); err != nil {
		t.Fatal(err)
	}

	auto, err := c.CreateAutomation(ctx, prefect.Automation{
		Name: unique(t, "auto"), Enabled: true,
		Trigger: map[string]any{"type": "event", "posture": "Reactive", "expect": []string{"prefect.flow-run.Failed"}, "threshold": 1, "within": 0},
		Actions: []map[string]any{{"type": "cancel-flow-run"}},
	})
	if err != nil {
		t.Fatalf("create automation: %v", err)
	}
	if got, err := c.ReadAutomation(ctx, auto.ID); err != nil || got.Name != auto.Name || len(got.Actions) != 1 {
		t.Fatalf("read automation = %+v, %v", got, err)
	}
	if err := c.DeleteAutomation(ctx, auto.ID); err != nil {
		t.Fatal(err)
	}
}

func TestClient_BlockReferences(t *testing.T) {
	t.Parallel()
	ctx := t.Context()
	c := newClient(t)

	credsType, credsSchema, err := c.ResolveBlockSchema(ctx, "aws-credentials")
	if err != nil {
		t.Fatal(err)
	}
	credsName := unique(t, "creds")
	creds, err := c.CreateBlockDocument(ctx, prefect.BlockDocument{Name: &credsName, BlockSchemaID: credsSchema.ID, BlockTypeID: credsType.ID,
		Data: map[string]any{"aws_access_key_id": "AKIA", "aws_secret_access_key": "s3cr3t"}})
	if err != nil {
		t.Fatalf("create credentials block: %v", err)
	}
	bucketType, bucketSchema, err := c.ResolveBlockSchema(ctx, "s3-bucket")
	if err != nil {
		t.Fatal(err)
	}
	ref := map[string]any{prefect.RefKey: map[string]any{"block_document_id": creds.ID}}
	bucketName := unique(t, "bucket")
	bucket, err := c.CreateBlockDocument(ctx, prefect.BlockDocument{Name: &bucketName, BlockSchemaID: bucketSchema.ID, BlockTypeID: bucketType.ID,
		Data: map[string]any{"bucket_name": "b", "credentials": ref}})
	if err != nil {
		t.Fatalf("create bucket block: %v", err)
	}

	got, err := c.ReadBlockDocument(ctx, bucket.ID)
	if err != nil {
		t.Fatal(err)
	}
	// The server hydrates the reference with the referenced block's data,
	// secrets revealed.
	if hydrated, _ := got.Data["credentials"].(map[string]any); hydrated["aws_secret_access_key"] != "s3cr3t" {
		t.Errorf("read data = %v; want the credentials hydrated with the secret", got.Data)
	}
	if got.BlockType == nil || got.BlockType.Slug != "s3-bucket" || got.Created == nil {
		t.Errorf("read block = %+v; want its type and times", got)
	}
	saved := got.DataWithReferences()
	if r, _ := saved["credentials"].(map[string]any); fmt.Sprint(r) != fmt.Sprint(ref) || saved["bucket_name"] != "b" {
		t.Errorf("DataWithReferences() = %v; want the reference back", saved)
	}

	// Replacing the data drops the reference.
	if err := c.UpdateBlockDocument(ctx, bucket.ID, prefect.BlockDocumentUpdate{Data: map[string]any{"bucket_name": "c"}}); err != nil {
		t.Fatal(err)
	}
	if got, err = c.ReadBlockDocument(ctx, bucket.ID); err != nil || len(got.BlockDocumentReferences) != 0 || len(got.Data) != 1 {
		t.Errorf("after update = %+v, %v; want only bucket_name", got, err)
	}
	if _, _, err := c.ResolveBlockSchema(ctx, "no-such-block-type"); !prefect.IsNotFound(err) {
		t.Errorf("resolve an unknown slug: %v; want not found", err)
	}
}

func TestClient_TaskRunConcurrencyLimit(t *testing.T) {
	t.Parallel()
	ctx := t.Context()
	c := newClient(t)
	tag := unique(t, "tag")
	l, err := c.CreateTaskRunConcurrencyLimit(ctx, prefect.TaskRunConcurrencyLimit{Tag: tag, ConcurrencyLimit: 2})
	if err != nil {
		t.Fatal(err)
	}
	// Creating again sets the limit in place: same ID.
	again, err := c.CreateTaskRunConcurrencyLimit(ctx, prefect.TaskRunConcurrencyLimit{Tag: tag, ConcurrencyLimit: 5})
	if err != nil || again.ID != l.ID || again.ConcurrencyLimit != 5 {
		t.Fatalf("create again = %+v, %v; want the same ID with limit 5", again, err)
	}
	byID, err := c.ReadTaskRunConcurrencyLimitByID(ctx, l.ID)
	if err != nil || byID.Tag != tag || byID.ConcurrencyLimit != 5 {
		t.Fatalf("read by id = %+v, %v", byID, err)
	}
	// It is the global concurrency limit "tag:<tag>".
	if g, err := c.ReadGlobalConcurrencyLimit(ctx, "tag:"+tag); err != nil || g.ID != l.ID {
		t.Errorf("global limit tag:%s = %+v, %v; want the same ID", tag, g, err)
	}
	if err := c.DeleteTaskRunConcurrencyLimitByID(ctx, l.ID); err != nil {
		t.Fatal(err)
	}
	if _, err := c.ReadTaskRunConcurrencyLimitByID(ctx, l.ID); !prefect.IsNotFound(err) {
		t.Errorf("read deleted limit: %v; want not found", err)
	}
}

func TestClient_versions(t *testing.T) {
	t.Parallel()
	c := newClient(t)
	if err := c.Health(t.Context()); err != nil {
		t.Fatal(err)
	}
	api, err := c.APIVersion(t.Context())
	if err != nil || api != prefect.APIVersion {
		t.Errorf("API version = %q, %v; want %s", api, err, prefect.APIVersion)
	}
	v, err := c.ServerVersion(t.Context())
	if err != nil || v != srv.Version {
		t.Errorf("server version = %q, %v; want %s", v, err, srv.Version)
	}
}

func newID() string {
	return fmt.Sprintf("%08x-0000-4000-8000-%012x", time.Now().Unix()&0xffffffff, time.Now().UnixNano()&0xffffffffffff)
}
