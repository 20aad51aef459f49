package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"log/slog"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-lambda-go/events"
	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/ecs"
	"github.com/aws/aws-sdk-go-v2/service/secretsmanager"
	"github.com/aws/aws-sdk-go-v2/service/sqs"
	sqstypes "github.com/aws/aws-sdk-go-v2/service/sqs/types"

	"github.com/pushpool/pushpool/dispatch"
	ecsbackend "github.com/pushpool/pushpool/dispatch/backend/ecs"
	"github.com/pushpool/pushpool/dispatch/invoke"
	"github.com/pushpool/pushpool/dispatch/prefect"
	"github.com/pushpool/pushpool/functions/internal/fnapp"
	"github.com/pushpool/pushpool/internal/localstack"
)

var srv *localstack.Prefect

func TestMain(m *testing.M) {
	os.Exit(localstack.RunTestsWithPrefect(m, localstack.PrefectOptions{}, func(p *localstack.Prefect) { srv = p }))
}

const webhookSecret = "whsec-0123456789abcdef"

// stack is a Prefect server, moto (ECS, SQS, Secrets Manager) and an ECS
// pool made from pushpool's default template, as infra/aws deploys them.
type stack struct {
	t        testing.TB
	moto     *localstack.Moto
	api      *prefect.Client
	ecs      *ecs.Client
	sqs      *sqs.Client
	queueURL string
	pool     string
	dep      prefect.Deployment
	env      map[string]string
}

// newStack sets the process's AWS environment (the SDK's default chain
// reads it), so tests using it cannot run in parallel.
func newStack(t testing.TB, shardSize int) *stack {
	t.Setenv("AWS_ACCESS_KEY_ID", "test")
	t.Setenv("AWS_SECRET_ACCESS_KEY", "test")
	t.Setenv("AWS_REGION", "us-east-1")
	moto, err := localstack.StartMoto(t.Context())
	if err != nil {
		t.Fatalf("the Lambda tests need a moto server: %v", err)
	}
	t.Cleanup(func() { moto.Stop() })
	t.Setenv("AWS_ENDPOINT_URL", moto.URL)
	ctx := t.Context()
	cfg := aws.Config{Region: "us-east-1", Credentials: credentials.NewStaticCredentialsProvider("test", "test", ""), BaseEndpoint: aws.String(moto.URL)}
	s := &stack{t: t, moto: moto, ecs: ecs.NewFromConfig(cfg), sqs: sqs.NewFromConfig(cfg)}
	if _, err := s.ecs.CreateCluster(ctx, &ecs.CreateClusterInput{ClusterName: aws.String("pushpool-fn")}); err != nil {
		t.Fatalf("create the cluster in moto: %v", err)
	}
	q, err := s.sqs.CreateQueue(ctx, &sqs.CreateQueueInput{QueueName: aws.String("pushpool-wake")})
	if err != nil {
		t.Fatalf("create the queue in moto: %v", err)
	}
	s.queueURL = *q.QueueUrl
	sec, err := secretsmanager.NewFromConfig(cfg).CreateSecret(ctx, &secretsmanager.CreateSecretInput{Name: aws.String("pushpool/webhook"), SecretString: aws.String(webhookSecret)})
	if err != nil {
		t.Fatalf("create the webhook secret in moto: %v", err)
	}

	s.api, err = prefect.New(prefect.Config{URL: srv.URL})
	if err != nil {
		t.Fatal(err)
	}
	s.pool = "lambda-" + strings.ReplaceAll(t.Name(), "/", "-") + "-" + time.Now().Format("150405.000000")
	if _, err := s.api.CreateWorkPool(ctx, prefect.WorkPoolCreate{Name: s.pool, Type: ecsbackend.PushPoolType, BaseJobTemplate: ecsbackend.DefaultBaseJobTemplate()}); err != nil {
		t.Fatal(err)
	}
	flow, err := s.api.CreateFlow(ctx, "lambda-hello", nil)
	if err != nil {
		t.Fatal(err)
	}
	entry := "flows/hello.py:hello"
	s.dep, err = s.api.CreateDeployment(ctx, prefect.DeploymentCreate{Name: s.pool, FlowID: flow.ID, WorkPoolName: s.pool, Entrypoint: &entry,
		JobVariables: map[string]any{"cluster": "pushpool-fn"}})
	if err != nil {
		t.Fatal(err)
	}
	s.env = map[string]string{
		"PREFECT_API_URL":               srv.URL,
		"PUSHPOOL_POOLS":                s.pool,
		"PUSHPOOL_SHARD_SIZE":           fmt.Sprint(shardSize),
		EnvQueueURL:                     s.queueURL,
		EnvWebhookSecretARN:             *sec.ARN,
		"AWS_ENDPOINT_URL":              moto.URL,
		"PUSHPOOL_WAKE_HORIZON_SECONDS": "60",
	}
	return s
}

func (s *stack) function() *function {
	s.t.Helper()
	lookup := func(k string) (string, bool) {
		if v, ok := s.env[k]; ok {
			return v, true
		}
		return os.LookupEnv(k)
	}
	f, err := newFunction(s.t.Context(), linked(), lookup, slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn})))
	if err != nil {
		s.t.Fatalf("init the function: %v", err)
	}
	return f
}

func (s *stack) run(due time.Time) prefect.FlowRun {
	s.t.Helper()
	due = due.UTC()
	r, err := s.api.CreateFlowRunFromDeployment(s.t.Context(), s.dep.ID, prefect.DeploymentFlowRunCreate{
		State: &prefect.StateCreate{Type: prefect.StateScheduled, Name: "Scheduled", StateDetails: prefect.StateDetails{ScheduledTime: &due}},
	})
	if err != nil {
		s.t.Fatalf("create flow run: %v", err)
	}
	return r
}

func (s *stack) read(id string) prefect.FlowRun {
	s.t.Helper()
	r, err := s.api.ReadFlowRun(s.t.Context(), id)
	if err != nil {
		s.t.Fatal(err)
	}
	return r
}

// tasks are the ECS tasks moto holds for a flow run.
func (s *stack) tasks(id string) []string {
	s.t.Helper()
	arns, err := s.moto.TasksStartedByPrefix(s.t.Context(), id)
	if err != nil {
		s.t.Fatal(err)
	}
	return arns
}

func testdata(t testing.TB, name string) []byte {
	t.Helper()
	b, err := os.ReadFile("testdata/" + name)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// withBody puts body into a sample whose body field is "BODY".
func withBody(t testing.TB, sample string, body []byte) json.RawMessage {
	t.Helper()
	quoted, _ := json.Marshal(string(body))
	return bytes.Replace(testdata(t, sample), []byte(`"BODY"`), quoted, 1)
}

// drain receives what the queue holds now and hands it to the function as
// Lambda's SQS event source would, until the queue stays empty for idle.
func (s *stack) drain(f *function, idle time.Duration) (batches int, failures []events.SQSBatchItemFailure) {
	s.t.Helper()
	quiet := time.Now()
	for time.Since(quiet) < idle {
		out, err := s.sqs.ReceiveMessage(s.t.Context(), &sqs.ReceiveMessageInput{QueueUrl: &s.queueURL, MaxNumberOfMessages: 10, WaitTimeSeconds: 1})
		if err != nil {
			s.t.Fatal(err)
		}
		if len(out.Messages) == 0 {
			continue
		}
		quiet = time.Now()
		resp := s.deliver(f, out.Messages)
		batches++
		failures = append(failures, resp.BatchItemFailures...)
		for _, m := range out.Messages {
			if _, err := s.sqs.DeleteMessage(s.t.Context(), &sqs.DeleteMessageInput{QueueUrl: &s.queueURL, ReceiptHandle: m.ReceiptHandle}); err != nil {
				s.t.Fatal(err)
			}
		}
	}
	return batches, failures
}

// deliver hands SQS messages to the function in Lambda's event format.
func (s *stack) deliver(f *function, msgs []sqsMessage) events.SQSEventResponse {
	s.t.Helper()
	var ev events.SQSEvent
	if err := json.Unmarshal(testdata(s.t, "sqs-batch.json"), &ev); err != nil {
		s.t.Fatal(err)
	}
	tmpl := ev.Records[0]
	ev.Records = nil
	for _, m := range msgs {
		r := tmpl
		r.MessageId, r.Body = *m.MessageId, *m.Body
		ev.Records = append(ev.Records, r)
	}
	raw, _ := json.Marshal(ev)
	out, err := f.Handle(s.t.Context(), raw)
	if err != nil {
		s.t.Fatalf("SQS batch: %v", err)
	}
	return out.(events.SQSEventResponse)
}

// TestHandle_tickFansOutThroughSQS: a tick with more due runs than its shard
// size dispatches one shard itself and sends the rest to SQS; invocations
// fed from the queue start them; every run is started exactly once.
func TestHandle_tickFansOutThroughSQS(t *testing.T) {
	s := newStack(t, 2)
	f := s.function()
	var ids []string
	for range 7 {
		ids = append(ids, s.run(time.Now()).ID)
	}
	out, err := f.Handle(t.Context(), testdata(t, "scheduled-event.json"))
	if err != nil {
		t.Fatalf("tick: %v", err)
	}
	reply := out.(fnapp.TickReply)
	if len(reply.Pools) != 1 || reply.Pools[0].Outcomes["submitted"] != 2 || reply.Pools[0].Shards != 3 || reply.Pools[0].Fanned != 5 {
		t.Fatalf("tick reply = %+v; want 2 runs submitted here and 5 fanned out in 3 shards", reply)
	}
	batches, failures := s.drain(f, 3*time.Second)
	if len(failures) != 0 {
		t.Errorf("queue messages failed: %+v", failures)
	}
	for _, id := range ids {
		r := s.read(id)
		tasks := s.tasks(id)
		if r.InfrastructurePID == nil || len(tasks) != 1 || !strings.HasSuffix(*r.InfrastructurePID, tasks[0]) {
			t.Errorf("flow run %s: state %s, pid %v, tasks %v; want exactly one task, recorded", id, *r.StateType, r.InfrastructurePID, tasks)
		}
	}
	t.Logf("7 due runs, shard size 2: 2 in the tick, 5 through %d SQS batch(es)", batches)

	// The EventBridge Scheduler form of the tick finds nothing left to do.
	out, err = f.Handle(t.Context(), testdata(t, "scheduler-tick.json"))
	if err != nil || out.(fnapp.TickReply).Pools[0].Outcomes["submitted"] != 0 {
		t.Errorf("second tick = %+v, %v; want nothing submitted again", out, err)
	}
}

// TestHandle_tickWakesRunsDueBeforeTheNextTick: a run due in a few seconds
// becomes an SQS message delayed until its due time; delivered, it starts
// on time, not at the next tick.
func TestHandle_tickWakesRunsDueBeforeTheNextTick(t *testing.T) {
	s := newStack(t, 20)
	f := s.function()
	due := time.Now().Add(15 * time.Second)
	run := s.run(due)
	out, err := f.Handle(t.Context(), testdata(t, "scheduler-tick.json"))
	if err != nil {
		t.Fatal(err)
	}
	if p := out.(fnapp.TickReply).Pools[0]; p.Woken != 1 || p.Outcomes["submitted"] != 0 {
		t.Fatalf("tick = %+v; want the run left for a wake-up", p)
	}
	// Nothing is visible before the delay: the message is not delivered early.
	early, err := s.sqs.ReceiveMessage(t.Context(), &sqs.ReceiveMessageInput{QueueUrl: &s.queueURL, MaxNumberOfMessages: 10})
	if err != nil || len(early.Messages) != 0 {
		t.Fatalf("queue delivered %d message(s) long before the due time (%v)", len(early.Messages), err)
	}
	s.drain(f, 5*time.Second+time.Until(due))
	r := s.read(run.ID)
	if r.InfrastructurePID == nil {
		t.Fatalf("run %s is %s with no infrastructure after its wake-up", run.ID, *r.StateType)
	}
	claimed := claimTime(t, s.api, run.ID)
	lag := claimed.Sub(due)
	t.Logf("due → claim %v through a delayed SQS message", lag.Round(time.Millisecond))
	if lag < -11*time.Second {
		t.Errorf("claimed %v before its due time, more than the lookahead", -lag)
	}
}

func claimTime(t testing.TB, api *prefect.Client, id string) time.Time {
	t.Helper()
	states, err := api.ReadFlowRunStates(t.Context(), id)
	if err != nil {
		t.Fatal(err)
	}
	for _, s := range states {
		if s.Type == prefect.StatePending && s.Timestamp != nil {
			return *s.Timestamp
		}
	}
	t.Fatalf("flow run %s was never claimed", id)
	return time.Time{}
}

// webhook posts body through a Function URL request with the signature.
func (s *stack) webhook(f *function, body []byte, sig string) (int, map[string]any) {
	s.t.Helper()
	req := withBody(s.t, "function-url-request.json", body)
	if sig != "" {
		var m map[string]any
		_ = json.Unmarshal(req, &m)
		m["headers"].(map[string]any)["x-pushpool-signature"] = sig
		req, _ = json.Marshal(m)
	}
	out, err := f.Handle(s.t.Context(), req)
	if err != nil {
		s.t.Fatalf("webhook: %v", err)
	}
	resp := out.(events.LambdaFunctionURLResponse)
	var reply map[string]any
	_ = json.Unmarshal([]byte(resp.Body), &reply)
	return resp.StatusCode, reply
}

// TestHandle_webhook: Prefect's flow-run Scheduled event, signed, dispatches
// the run with the event attributed; unsigned, tampered, stale or foreign
// requests are refused with 401 and change nothing; a run announced before
// it is due gets a wake-up at its due time.
func TestHandle_webhook(t *testing.T) {
	s := newStack(t, 20)
	f := s.function()
	secret := []byte(webhookSecret)
	event := func(runID string) []byte {
		return bytes.ReplaceAll(testdata(t, "prefect-flow-run-scheduled-event.json"), []byte("FLOW_RUN_ID"), []byte(runID))
	}

	refused := s.run(time.Now())
	body := event(refused.ID)
	for _, tc := range []struct{ name, sig string }{
		{"unsigned", ""},
		{"tampered", invoke.Sign(secret, append([]byte(" "), body...), time.Now())},
		{"other secret", invoke.Sign([]byte("guess"), body, time.Now())},
		{"stale", invoke.Sign(secret, body, time.Now().Add(-10*time.Minute))},
		{"garbage", "sha256=deadbeef"},
	} {
		code, reply := s.webhook(f, body, tc.sig)
		if code != 401 {
			t.Errorf("%s webhook: status %d %v; want 401", tc.name, code, reply)
		}
	}
	if r := s.read(refused.ID); *r.StateType != prefect.StateScheduled || len(s.tasks(refused.ID)) != 0 {
		t.Errorf("after refused webhooks the run is %s with tasks %v; want it untouched", *r.StateType, s.tasks(refused.ID))
	}

	code, reply := s.webhook(f, body, invoke.Sign(secret, body, time.Now()))
	if code != 200 || reply["outcome"] != "submitted" {
		t.Fatalf("signed webhook: status %d %v; want the run submitted", code, reply)
	}
	r := s.read(refused.ID)
	if r.Labels[dispatch.LabelTriggerEventID] != "4f5a6b7c-8d9e-4f0a-1b2c-3d4e5f6a7b8c" || r.Labels[dispatch.LabelTriggerActor] == nil {
		t.Errorf("run labels = %v; want the triggering event id and actor", r.Labels)
	}
	env := taskEnv(t, s, refused.ID)
	if env[dispatch.EnvTriggerEventID] != "4f5a6b7c-8d9e-4f0a-1b2c-3d4e5f6a7b8c" || env[dispatch.EnvTriggerEvent] != "prefect.flow-run.Scheduled" {
		t.Errorf("task environment = %v; want %s and %s", env, dispatch.EnvTriggerEventID, dispatch.EnvTriggerEvent)
	}

	// Announced before it is due: woken at its due time through SQS.
	later := s.run(time.Now().Add(5 * time.Minute))
	body = event(later.ID)
	code, reply = s.webhook(f, body, invoke.Sign(secret, body, time.Now()))
	if code != 200 || reply["outcome"] != string(dispatch.NotDue) || reply["wake_at"] == nil {
		t.Fatalf("webhook for a later run: status %d %v; want not-due with a wake-up time", code, reply)
	}
	attrs, err := s.sqs.GetQueueAttributes(t.Context(), &sqs.GetQueueAttributesInput{QueueUrl: &s.queueURL, AttributeNames: []sqstypes.QueueAttributeName{"ApproximateNumberOfMessagesDelayed"}})
	if err != nil || attrs.Attributes["ApproximateNumberOfMessagesDelayed"] != "1" {
		t.Errorf("queue attributes = %v (%v); want one delayed wake-up", attrs.Attributes, err)
	}
}

// taskEnv is the environment of the flow run's task as moto holds it
// (task definition environment overridden by the task's overrides).
func taskEnv(t *testing.T, s *stack, runID string) map[string]string {
	t.Helper()
	arns := s.tasks(runID)
	if len(arns) != 1 {
		t.Fatalf("flow run %s has tasks %v", runID, arns)
	}
	out, err := s.ecs.DescribeTasks(t.Context(), &ecs.DescribeTasksInput{Cluster: aws.String("pushpool-fn"), Tasks: arns})
	if err != nil || len(out.Tasks) != 1 {
		t.Fatalf("describe task: %v", err)
	}
	env := map[string]string{}
	td, err := s.ecs.DescribeTaskDefinition(t.Context(), &ecs.DescribeTaskDefinitionInput{TaskDefinition: out.Tasks[0].TaskDefinitionArn})
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range td.TaskDefinition.ContainerDefinitions {
		for _, kv := range c.Environment {
			env[*kv.Name] = *kv.Value
		}
	}
	if o := out.Tasks[0].Overrides; o != nil {
		for _, c := range o.ContainerOverrides {
			for _, kv := range c.Environment {
				env[*kv.Name] = *kv.Value
			}
		}
	}
	return env
}

// TestHandle_ecsTaskStateChange: the task of a dispatched run stops with
// exit code 1 (and OOM reason); the event, from EventBridge directly or
// through SQS, crashes the run with the reason. Events about other tasks are
// ignored, and a malformed pushpool message in the same batch is the only
// failure reported.
func TestHandle_ecsTaskStateChange(t *testing.T) {
	s := newStack(t, 20)
	f := s.function()
	direct, viaSQS := s.run(time.Now()), s.run(time.Now())
	if _, err := f.Handle(t.Context(), testdata(t, "scheduler-tick.json")); err != nil {
		t.Fatal(err)
	}
	stopped := func(run prefect.FlowRun) []byte {
		r := s.read(run.ID)
		if r.InfrastructurePID == nil {
			t.Fatalf("run %s was not submitted", run.ID)
		}
		_, taskARN, _ := strings.Cut(*r.InfrastructurePID, "::")
		if err := s.moto.SetTaskStopped(t.Context(), taskARN, localstack.MotoTaskStop{ExitCode: ptr(1)}); err != nil {
			t.Fatal(err)
		}
		var ev map[string]any
		_ = json.Unmarshal(testdata(t, "ecs-task-state-change.json"), &ev)
		d := ev["detail"].(map[string]any)
		d["taskArn"], d["startedBy"], d["clusterArn"] = taskARN, run.ID, "arn:aws:ecs:us-east-1:123456789012:cluster/pushpool-fn"
		d["containers"].([]any)[0].(map[string]any)["exitCode"] = 1
		d["containers"].([]any)[0].(map[string]any)["taskArn"] = taskARN
		ev["resources"] = []string{taskARN}
		b, _ := json.Marshal(ev)
		return b
	}

	if _, err := f.Handle(t.Context(), stopped(direct)); err != nil {
		t.Fatalf("direct ECS event: %v", err)
	}
	bad := invoke.Message{Pool: s.pool}.Encode() // names no flow run
	foreign := bytes.ReplaceAll(testdata(t, "ecs-task-state-change.json"), []byte(`"startedBy"`), []byte(`"x-startedBy"`))
	msgs := []sqsMessage{
		{MessageId: aws.String("ecs"), Body: aws.String(string(stopped(viaSQS)))},
		{MessageId: aws.String("bad"), Body: aws.String(string(bad))},
		{MessageId: aws.String("foreign"), Body: aws.String(string(foreign))},
	}
	resp := s.deliver(f, msgs)
	if len(resp.BatchItemFailures) != 1 || resp.BatchItemFailures[0].ItemIdentifier != "bad" {
		t.Errorf("batch failures = %+v; want only the malformed message", resp.BatchItemFailures)
	}
	for _, run := range []prefect.FlowRun{direct, viaSQS} {
		r := s.read(run.ID)
		if *r.StateType != prefect.StateCrashed || r.State == nil || r.State.Message == nil || !strings.Contains(*r.State.Message, "status code 1") {
			t.Errorf("run %s is %s (%v); want CRASHED naming status code 1", run.ID, *r.StateType, r.State)
		}
	}
}

// TestNewFunction_secretErrorsNameTheFix: a missing secret fails the init
// naming the variable and the permission, not the value.
func TestNewFunction_secretErrorsNameTheFix(t *testing.T) {
	s := newStack(t, 20)
	s.env[EnvAPIKeySecretARN] = "arn:aws:secretsmanager:us-east-1:123456789012:secret:pushpool/missing-AbCdEf"
	_, err := newFunction(t.Context(), linked(), func(k string) (string, bool) { v, ok := s.env[k]; return v, ok }, nil)
	if err == nil || !strings.Contains(err.Error(), EnvAPIKeySecretARN) || !strings.Contains(err.Error(), "secretsmanager:GetSecretValue") {
		t.Errorf("init with a missing secret: %v; want the variable and the permission named", err)
	}
}

func ptr[T any](v T) *T { return &v }

// sqsMessage is a received SQS message.
type sqsMessage = sqstypes.Message
