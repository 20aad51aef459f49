package main

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"strings"
	"testing"
	"time"

	"cloud.google.com/go/cloudtasks/apiv2/cloudtaskspb"
	"cloud.google.com/go/pubsub/v2"
	"cloud.google.com/go/pubsub/v2/apiv1/pubsubpb"
	"cloud.google.com/go/pubsub/v2/pstest"

	"github.com/pushpool/pushpool/dispatch"
	"github.com/pushpool/pushpool/dispatch/backend/cloudrun"
	"github.com/pushpool/pushpool/dispatch/backend/cloudrun/cloudrunfake"
	"github.com/pushpool/pushpool/dispatch/invoke"
	"github.com/pushpool/pushpool/dispatch/prefect"
	"github.com/pushpool/pushpool/functions/gcp/internal/gcpfake"
	"github.com/pushpool/pushpool/functions/internal/fnapp"
	"github.com/pushpool/pushpool/internal/localstack"
)

var srv *localstack.Prefect

func TestMain(m *testing.M) {
	os.Exit(localstack.RunTestsWithPrefect(m, localstack.PrefectOptions{}, func(p *localstack.Prefect) { srv = p }))
}

const (
	webhookSecret  = "whsec-0123456789abcdef"
	testProject    = "pushpool-test"
	testRegion     = "us-east1"
	testImage      = "prefecthq/prefect:3-latest"
	tasksAccount   = "pushpool-tasks@pushpool-test.iam.gserviceaccount.com"
	scheduledEvent = "4f5a6b7c-8d9e-4f0a-1b2c-3d4e5f6a7b8c" // the id in prefect-flow-run-scheduled-event.json
)

// stack is a Prefect server with a Cloud Run pool made from pushpool's
// default template, the fakes of the Google APIs the function calls
// (pstest for Pub/Sub, cloudrunfake for Cloud Run, gcpfake for Cloud Tasks
// and Secret Manager), and the function served over HTTP at url, as
// infra/gcp deploys them. Everything reaches the function through its
// environment, so stacks run in parallel.
type stack struct {
	t     *testing.T
	api   *prefect.Client
	run   *cloudrunfake.Server
	gcp   *gcpfake.Server
	ps    *pstest.Server
	psc   *pubsub.Client
	topic string
	sub   string
	queue string
	pool  string
	dep   prefect.Deployment
	env   map[string]string
	// url is the function's address; fn serves it once started.
	url string
	fn  *function
}

func newStack(t *testing.T, shardSize int) *stack {
	t.Helper()
	ctx := t.Context()
	s := &stack{t: t}
	var err error
	if s.run, err = cloudrunfake.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(s.run.Stop)
	if s.gcp, err = gcpfake.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(s.gcp.Stop)
	s.ps = pstest.NewServer()
	t.Cleanup(func() { s.ps.Close() })
	if s.psc, err = pubsub.NewClient(ctx, testProject, clientOptions(s.ps.Addr)...); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.psc.Close() })
	s.topic = "projects/" + testProject + "/topics/pushpool-fanout"
	s.sub = "projects/" + testProject + "/subscriptions/pushpool-fanout-push"
	if _, err := s.psc.TopicAdminClient.CreateTopic(ctx, &pubsubpb.Topic{Name: s.topic}); err != nil {
		t.Fatal(err)
	}
	if _, err := s.psc.SubscriptionAdminClient.CreateSubscription(ctx, &pubsubpb.Subscription{Name: s.sub, Topic: s.topic, AckDeadlineSeconds: 60}); err != nil {
		t.Fatal(err)
	}
	s.queue = "projects/" + testProject + "/locations/" + testRegion + "/queues/pushpool-wake"
	if err := s.gcp.AddQueue(s.queue); err != nil {
		t.Fatal(err)
	}
	secret, err := s.gcp.AddSecret("projects/"+testProject+"/secrets/pushpool-webhook", webhookSecret+"\n")
	if err != nil {
		t.Fatal(err)
	}

	hs := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if s.fn == nil {
			http.Error(w, "function not started", http.StatusServiceUnavailable)
			return
		}
		s.fn.ServeHTTP(w, r)
	}))
	t.Cleanup(hs.Close)
	s.url = hs.URL

	if s.api, err = prefect.New(prefect.Config{URL: srv.URL}); err != nil {
		t.Fatal(err)
	}
	s.pool = "gcp-" + strings.ToLower(strings.NewReplacer("/", "-", "_", "-").Replace(t.Name())) + "-" + time.Now().Format("150405.000000")
	if _, err := s.api.CreateWorkPool(ctx, prefect.WorkPoolCreate{Name: s.pool, Type: cloudrun.PoolType, BaseJobTemplate: cloudrun.DefaultBaseJobTemplate()}); err != nil {
		t.Fatal(err)
	}
	flow, err := s.api.CreateFlow(ctx, "gcp-hello", nil)
	if err != nil {
		t.Fatal(err)
	}
	entry := "flows/hello.py:hello"
	s.dep, err = s.api.CreateDeployment(ctx, prefect.DeploymentCreate{Name: s.pool, FlowID: flow.ID, WorkPoolName: s.pool, Entrypoint: &entry,
		JobVariables: map[string]any{"region": testRegion, "image": testImage}})
	if err != nil {
		t.Fatal(err)
	}
	s.env = map[string]string{
		"PREFECT_API_URL":               srv.URL,
		"PUSHPOOL_POOLS":                s.pool,
		"PUSHPOOL_SHARD_SIZE":           fmt.Sprint(shardSize),
		"PUSHPOOL_WAKE_HORIZON_SECONDS": "60",
		"PUSHPOOL_GCP_PROJECT":          testProject,
		"PUSHPOOL_CLOUDRUN_ENDPOINT":    s.run.Addr(),
		EnvTopic:                        s.topic,
		EnvTasksQueue:                   s.queue,
		EnvSelfURL:                      s.url,
		EnvTasksServiceAccount:          tasksAccount,
		EnvWebhookSecret:                secret,
		EnvPubSubEndpoint:               s.ps.Addr,
		EnvTasksEndpoint:                s.gcp.Addr(),
		EnvSecretManagerEndpoint:        s.gcp.Addr(),
	}
	return s
}

func (s *stack) lookup(k string) (string, bool) { v, ok := s.env[k]; return v, ok }

// start starts the function behind s.url.
func (s *stack) start() *function {
	s.t.Helper()
	f, err := newFunction(s.t.Context(), linked(), s.lookup, slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn})))
	if err != nil {
		s.t.Fatalf("start the function: %v", err)
	}
	s.t.Cleanup(func() { f.Close() })
	s.fn = f
	return f
}

func (s *stack) flowRun(due time.Time) prefect.FlowRun {
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

// startedOnce checks that the run has exactly one Cloud Run job and
// execution, and that its infrastructure_pid names that execution.
func (s *stack) startedOnce(id string) {
	s.t.Helper()
	r := s.read(id)
	jobs, execs := s.run.CountJobs(cloudrun.LabelFlowRunID, id), s.run.CountExecutions(cloudrun.LabelFlowRunID, id)
	if r.InfrastructurePID == nil || jobs != 1 || execs != 1 || !strings.HasPrefix(*r.InfrastructurePID, "projects/"+testProject+"/locations/"+testRegion+"/jobs/") {
		s.t.Errorf("flow run %s: state %s, pid %v, %d job(s), %d execution(s); want exactly one execution, recorded", id, *r.StateType, r.InfrastructurePID, jobs, execs)
	}
}

// notStarted checks that the run is still Scheduled with no job.
func (s *stack) notStarted(id string) {
	s.t.Helper()
	r := s.read(id)
	if *r.StateType != prefect.StateScheduled || r.InfrastructurePID != nil || s.run.CountJobs(cloudrun.LabelFlowRunID, id) != 0 {
		s.t.Errorf("flow run %s is %s with pid %v and %d job(s); want it untouched", id, *r.StateType, r.InfrastructurePID, s.run.CountJobs(cloudrun.LabelFlowRunID, id))
	}
}

// sampleRequest is a platform request kept in testdata: the headers the
// platform sends and the body, a JSON value or a string.
type sampleRequest struct {
	Method  string            `json:"method"`
	Path    string            `json:"path"`
	Headers map[string]string `json:"headers"`
	Body    json.RawMessage   `json:"body"`
}

func loadSample(t *testing.T, name string) sampleRequest {
	t.Helper()
	b, err := os.ReadFile("testdata/" + name)
	if err != nil {
		t.Fatal(err)
	}
	var s sampleRequest
	if err := json.Unmarshal(b, &s); err != nil {
		t.Fatalf("testdata/%s: %v", name, err)
	}
	return s
}

func (s sampleRequest) body() []byte {
	var str string
	if json.Unmarshal(s.Body, &str) == nil {
		return []byte(str)
	}
	return s.Body
}

func (s sampleRequest) header() http.Header {
	h := http.Header{}
	for k, v := range s.Headers {
		h.Set(k, v)
	}
	return h
}

// withMessage returns the sample with its Pub/Sub message (in a push
// envelope, or in a CloudEvent's data) carrying data, published at
// published; the CloudEvent's time follows.
func (s sampleRequest) withMessage(t *testing.T, data []byte, published time.Time) sampleRequest {
	t.Helper()
	var body map[string]any
	if err := json.Unmarshal(s.Body, &body); err != nil {
		t.Fatalf("sample body is not an object: %v", err)
	}
	env := body
	if d, ok := body["data"].(map[string]any); ok {
		env = d
		body["time"] = published.UTC().Format(time.RFC3339Nano)
	}
	msg := env["message"].(map[string]any)
	if data != nil {
		msg["data"] = base64.StdEncoding.EncodeToString(data)
	}
	for _, k := range []string{"publishTime", "publish_time"} {
		if _, ok := msg[k]; ok {
			msg[k] = published.UTC().Format(time.RFC3339Nano)
		}
	}
	out := s
	out.Headers = map[string]string{}
	for k, v := range s.Headers {
		out.Headers[k] = v
	}
	if _, ok := out.Headers["Ce-Time"]; ok {
		out.Headers["Ce-Time"] = published.UTC().Format(time.RFC3339Nano)
	}
	out.Body, _ = json.Marshal(body)
	return out
}

// post sends the sample to the function and decodes the JSON reply.
func (s *stack) post(sr sampleRequest) (int, map[string]any) {
	s.t.Helper()
	req, err := http.NewRequestWithContext(s.t.Context(), sr.Method, s.url+sr.Path, bytes.NewReader(sr.body()))
	if err != nil {
		s.t.Fatal(err)
	}
	req.Header = sr.header()
	return s.do(req)
}

func (s *stack) do(req *http.Request) (int, map[string]any) {
	s.t.Helper()
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		s.t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	var out map[string]any
	if err := json.Unmarshal(b, &out); err != nil {
		s.t.Fatalf("%s %s: status %d, body %q is not JSON", req.Method, req.URL, resp.StatusCode, b)
	}
	return resp.StatusCode, out
}

// tick delivers a Cloud Scheduler tick published now in the sample's form.
func (s *stack) tick(sample string) (int, map[string]any) {
	s.t.Helper()
	sr := loadSample(s.t, sample)
	if sr.Body[0] == '{' && (bytes.Contains(sr.Body, []byte(`"message"`))) {
		sr = sr.withMessage(s.t, nil, time.Now())
	}
	return s.post(sr)
}

// pool returns the reply's report of the stack's pool.
func pool(t *testing.T, reply map[string]any) map[string]any {
	t.Helper()
	pools, _ := reply["pools"].([]any)
	if len(pools) != 1 {
		t.Fatalf("tick reply %v; want one pool", reply)
	}
	return pools[0].(map[string]any)
}

func count(p map[string]any, path ...string) int {
	var v any = p
	for _, k := range path {
		m, _ := v.(map[string]any)
		v = m[k]
	}
	n, _ := v.(float64)
	return int(n)
}

// drain pulls what the fan-out subscription holds and pushes each message
// to the function in Pub/Sub's push envelope, acknowledging it on a 2xx
// reply as Pub/Sub does, until the subscription stays empty for idle. It
// returns the replies' status codes.
func (s *stack) drain(idle time.Duration) []int {
	s.t.Helper()
	var codes []int
	quiet := time.Now()
	for time.Since(quiet) < idle {
		resp, err := s.psc.SubscriptionAdminClient.Pull(s.t.Context(), &pubsubpb.PullRequest{Subscription: s.sub, MaxMessages: 10})
		if err != nil {
			s.t.Fatal(err)
		}
		if len(resp.ReceivedMessages) == 0 {
			continue
		}
		quiet = time.Now()
		for _, rm := range resp.ReceivedMessages {
			code, reply := s.post(s.pushEnvelope(rm))
			codes = append(codes, code)
			if code/100 != 2 {
				s.t.Errorf("push of message %s: status %d %v", rm.Message.MessageId, code, reply)
				continue
			}
			if err := s.psc.SubscriptionAdminClient.Acknowledge(s.t.Context(), &pubsubpb.AcknowledgeRequest{Subscription: s.sub, AckIds: []string{rm.AckId}}); err != nil {
				s.t.Fatal(err)
			}
		}
	}
	return codes
}

// pushEnvelope is the push request Pub/Sub sends for a received message.
func (s *stack) pushEnvelope(rm *pubsubpb.ReceivedMessage) sampleRequest {
	s.t.Helper()
	sr := loadSample(s.t, "pubsub-push-shard.json")
	var body map[string]any
	_ = json.Unmarshal(sr.Body, &body)
	pub := rm.Message.PublishTime.AsTime().UTC().Format(time.RFC3339Nano)
	msg := map[string]any{
		"data": base64.StdEncoding.EncodeToString(rm.Message.Data), "attributes": rm.Message.Attributes,
		"messageId": rm.Message.MessageId, "message_id": rm.Message.MessageId, "publishTime": pub, "publish_time": pub,
	}
	body["message"], body["subscription"] = msg, s.sub
	delete(body, "deliveryAttempt") // sent only with a dead-letter policy
	sr.Body, _ = json.Marshal(body)
	return sr
}

// TestFunction_tickFansOutThroughPubSub: a tick with more due runs than its
// shard size dispatches one shard itself and publishes the rest to the
// Pub/Sub topic; pushed back to the function, the shards start them; every
// run is started exactly once.
func TestFunction_tickFansOutThroughPubSub(t *testing.T) {
	t.Parallel()
	s := newStack(t, 2)
	s.start()
	var ids []string
	for range 7 {
		ids = append(ids, s.flowRun(time.Now()).ID)
	}
	code, reply := s.tick("pubsub-push-scheduler-tick.json")
	p := pool(t, reply)
	if code != 200 || count(p, "outcomes", "submitted") != 2 || count(p, "shards") != 3 || count(p, "fanned_out") != 5 {
		t.Fatalf("tick: status %d %v; want 2 runs submitted here and 5 fanned out in 3 shards", code, reply)
	}
	for _, m := range s.ps.Messages() {
		if m.Attributes["pushpool_kind"] != invoke.MessageKind || m.Attributes["work_pool"] != s.pool {
			t.Errorf("published message attributes %v; want the kind and the pool", m.Attributes)
		}
	}
	codes := s.drain(2 * time.Second)
	if len(codes) != 3 {
		t.Errorf("pushed %d message(s) (%v); want the 3 shards", len(codes), codes)
	}
	for _, id := range ids {
		s.startedOnce(id)
	}

	// The next tick, through Eventarc, finds nothing left to start.
	code, reply = s.tick("eventarc-binary-scheduler-tick.json")
	if p := pool(t, reply); code != 200 || count(p, "outcomes", "submitted") != 0 || count(p, "shards") != 0 {
		t.Errorf("second tick: status %d %v; want nothing submitted again", code, reply)
	}
	for _, id := range ids {
		s.startedOnce(id)
	}
}

// TestFunction_webhook: Prefect's flow-run Scheduled event, signed,
// dispatches the run with the event attributed; unsigned, tampered, stale
// or foreign requests are refused with 401 and change nothing; a run
// announced before it is due becomes a Cloud Tasks task at its due time,
// once however often it is announced, and the task starts it.
func TestFunction_webhook(t *testing.T) {
	t.Parallel()
	s := newStack(t, 20)
	// A short lookahead, so a run due in seconds is reliably not due yet
	// on a slow machine.
	s.env[fnapp.EnvLookahead] = "2"
	s.start()
	secret := []byte(webhookSecret)
	event := func(runID string) []byte {
		b, err := os.ReadFile("testdata/prefect-flow-run-scheduled-event.json")
		if err != nil {
			t.Fatal(err)
		}
		return bytes.ReplaceAll(b, []byte("FLOW_RUN_ID"), []byte(runID))
	}
	webhook := func(body []byte, sig string) (int, map[string]any) {
		req, _ := http.NewRequestWithContext(t.Context(), http.MethodPost, s.url+"/webhook", bytes.NewReader(body))
		req.Header.Set("Content-Type", "application/json")
		if sig != "" {
			req.Header.Set(invoke.SignatureHeader, sig)
		}
		return s.do(req)
	}

	run := s.flowRun(time.Now())
	body := event(run.ID)
	for _, tc := range []struct{ name, sig string }{
		{"unsigned", ""},
		{"tampered", invoke.Sign(secret, append([]byte(" "), body...), time.Now())},
		{"other secret", invoke.Sign([]byte("guess"), body, time.Now())},
		{"stale", invoke.Sign(secret, body, time.Now().Add(-10*time.Minute))},
		{"garbage", "sha256=deadbeef"},
	} {
		if code, reply := webhook(body, tc.sig); code != 401 {
			t.Errorf("%s webhook: status %d %v; want 401", tc.name, code, reply)
		}
	}
	s.notStarted(run.ID)

	if code, reply := webhook([]byte(`{"no": "run"}`), invoke.Sign(secret, []byte(`{"no": "run"}`), time.Now())); code != 400 {
		t.Errorf("signed webhook naming no run: status %d %v; want 400", code, reply)
	}
	code, reply := webhook(body, invoke.Sign(secret, body, time.Now()))
	if code != 200 || reply["outcome"] != "submitted" || reply["work_pool"] != s.pool {
		t.Fatalf("signed webhook: status %d %v; want the run submitted", code, reply)
	}
	s.startedOnce(run.ID)
	r := s.read(run.ID)
	if r.Labels[dispatch.LabelTriggerEventID] != scheduledEvent || r.Labels[dispatch.LabelTriggerActor] == nil {
		t.Errorf("run labels = %v; want the triggering event id and actor", r.Labels)
	}
	if env := jobEnv(t, s, *r.InfrastructurePID); env[dispatch.EnvTriggerEventID] != scheduledEvent || env[dispatch.EnvTriggerEvent] != "prefect.flow-run.Scheduled" {
		t.Errorf("Cloud Run job environment = %v; want %s and %s", env, dispatch.EnvTriggerEventID, dispatch.EnvTriggerEvent)
	}

	// Announced before it is due: a Cloud Tasks task at the due time.
	later := s.flowRun(time.Now().Add(12 * time.Second))
	due := later.DueTime()
	body = event(later.ID)
	for range 2 {
		code, reply = webhook(body, invoke.Sign(secret, body, time.Now()))
		if code != 200 || reply["outcome"] != string(dispatch.NotDue) || reply["wake_at"] != due.UTC().Format(time.RFC3339Nano) {
			t.Fatalf("webhook for a later run: status %d %v; want not-due with a wake-up at %s", code, reply, due.UTC().Format(time.RFC3339Nano))
		}
	}
	tasks := s.gcp.Tasks(s.queue)
	if len(tasks) != 1 || s.gcp.Calls("CreateTask") != 2 {
		t.Fatalf("queue holds %d task(s) after %d CreateTask call(s); want the two announcements deduplicated into one", len(tasks), s.gcp.Calls("CreateTask"))
	}
	task := tasks[0]
	if want := s.queue + "/tasks/" + taskID([]string{later.ID}, due); task.Name != want {
		t.Errorf("task name %s; want %s", task.Name, want)
	}
	if !task.ScheduleTime.AsTime().Equal(due) {
		t.Errorf("task schedule_time %s; want the run's due time %s", task.ScheduleTime.AsTime(), due)
	}
	hr := task.GetHttpRequest()
	if hr.Url != s.url || hr.HttpMethod != cloudtaskspb.HttpMethod_POST || hr.Headers["Content-Type"] != "application/json" ||
		hr.GetOidcToken().GetServiceAccountEmail() != tasksAccount || hr.GetOidcToken().GetAudience() != s.url {
		t.Errorf("task request %v; want a POST of JSON to %s with an OIDC token of %s", hr, s.url, tasksAccount)
	}
	m, err := invoke.DecodeMessage(hr.Body)
	if err != nil || m.Pool != s.pool || len(m.FlowRunIDs) != 1 || m.FlowRunIDs[0] != later.ID || m.Trigger == nil || m.Trigger.EventID != scheduledEvent {
		t.Errorf("task body %s (%v); want a wake-up of %s in %s carrying the event", hr.Body, err, later.ID, s.pool)
	}
	s.notStarted(later.ID)

	// Cloud Tasks delivers it at the due time; the run starts.
	time.Sleep(time.Until(due))
	req, err := gcpfake.Request(t.Context(), task, 1)
	if err != nil {
		t.Fatal(err)
	}
	code, reply = s.do(req)
	if code != 200 || count(reply, "outcomes", "submitted") != 1 {
		t.Fatalf("wake-up task: status %d %v; want the run submitted", code, reply)
	}
	s.startedOnce(later.ID)
	if r := s.read(later.ID); r.Labels[dispatch.LabelTriggerEventID] != scheduledEvent {
		t.Errorf("woken run labels = %v; want the announcing event", r.Labels)
	}
}

// jobEnv is the container environment of the Cloud Run job behind an
// execution, as cloudrunfake holds it.
func jobEnv(t *testing.T, s *stack, execution string) map[string]string {
	t.Helper()
	id, err := cloudrun.ParseExecutionID(execution)
	if err != nil {
		t.Fatal(err)
	}
	j := s.run.Job(id.JobResource())
	if j == nil {
		t.Fatalf("no job %s", id.JobResource())
	}
	env := map[string]string{}
	for _, c := range j.GetTemplate().GetTemplate().GetContainers() {
		for _, e := range c.GetEnv() {
			env[e.GetName()] = e.GetValue()
		}
	}
	return env
}

// TestFunction_schedulerTicks: the Cloud Scheduler tick arrives through
// Pub/Sub as an Eventarc CloudEvent (binary and structured content mode)
// or a push envelope, or straight from a Cloud Scheduler HTTP target; each
// form dispatches the due run. A tick redelivered after the wake horizon
// is acknowledged without work.
func TestFunction_schedulerTicks(t *testing.T) {
	t.Parallel()
	s := newStack(t, 20)
	s.start()
	for _, sample := range []string{
		"eventarc-binary-scheduler-tick.json",
		"eventarc-structured-scheduler-tick.json",
		"pubsub-push-scheduler-tick.json",
		"cloud-scheduler-http-tick.json",
	} {
		run := s.flowRun(time.Now())
		code, reply := s.tick(sample)
		if p := pool(t, reply); code != 200 || count(p, "outcomes", "submitted") != 1 {
			t.Errorf("%s: status %d %v; want the due run submitted", sample, code, reply)
		}
		s.startedOnce(run.ID)
	}

	run := s.flowRun(time.Now())
	for _, sample := range []string{"eventarc-binary-scheduler-tick.json", "pubsub-push-scheduler-tick.json"} {
		stale := loadSample(t, sample).withMessage(t, nil, time.Now().Add(-5*time.Minute))
		code, reply := s.post(stale)
		if code != 200 || reply["skipped"] == nil {
			t.Errorf("%s published 5 minutes ago: status %d %v; want it acknowledged and skipped", sample, code, reply)
		}
	}
	s.notStarted(run.ID)
}

// TestFunction_deliveryErrors: what each kind of bad delivery answers, so
// that Pub/Sub and Cloud Tasks retry what may succeed later, dead-letter
// what never will, and acknowledge what is not pushpool's.
func TestFunction_deliveryErrors(t *testing.T) {
	t.Parallel()
	s := newStack(t, 20)
	s.start()
	bad := invoke.Message{Pool: s.pool}.Encode() // names no flow run
	tasksSample := loadSample(t, "cloudtasks-wake-up.json")
	withBody := func(sr sampleRequest, b []byte) sampleRequest { sr.Body, _ = json.Marshal(string(b)); return sr }
	unknownType := loadSample(t, "eventarc-binary-scheduler-tick.json")
	unknownType.Headers["Ce-Type"] = "google.cloud.storage.object.v1.finalized"
	otherPool := invoke.Message{Pool: "not-served", FlowRunIDs: []string{"01972b5e-0c3a-71f2-9d4e-3c8a2f1b6e01"}}.Encode()
	for _, tc := range []struct {
		name string
		req  sampleRequest
		code int
		key  string // in the reply
	}{
		{"malformed pushpool message pushed", loadSample(t, "pubsub-push-shard.json").withMessage(t, bad, time.Now()), 500, "error"},
		{"malformed pushpool message from Cloud Tasks", withBody(tasksSample, bad), 500, "error"},
		{"message for a pool not served", withBody(tasksSample, otherPool), 500, "error"},
		{"foreign Pub/Sub message", loadSample(t, "pubsub-push-shard.json").withMessage(t, []byte(`{"hello":"world"}`), time.Now()), 200, "ignored"},
		{"foreign Cloud Tasks body", withBody(tasksSample, []byte(`hello`)), 400, "error"},
		{"CloudEvent of another type", unknownType, 400, "error"},
	} {
		code, reply := s.post(tc.req)
		if code != tc.code || reply[tc.key] == nil {
			t.Errorf("%s: status %d %v; want %d with %q", tc.name, code, reply, tc.code, tc.key)
		}
	}
	resp, err := http.Get(s.url + "/")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusMethodNotAllowed {
		t.Errorf("GET /: status %d; want 405", resp.StatusCode)
	}
}

// TestFunction_routes: a webhook-only service (the public one, next to a
// private service for events) refuses platform events; an events-only one
// refuses webhooks.
func TestFunction_routes(t *testing.T) {
	t.Parallel()
	s := newStack(t, 20)
	s.env[EnvRoutes] = "webhook"
	s.start()
	if code, reply := s.tick("cloud-scheduler-http-tick.json"); code != 404 {
		t.Errorf("tick on a webhook-only service: status %d %v; want 404", code, reply)
	}
	s.env[EnvRoutes] = "events"
	s.fn.Close()
	s.start()
	req, _ := http.NewRequestWithContext(t.Context(), http.MethodPost, s.url+"/webhook", strings.NewReader(`{}`))
	if code, reply := s.do(req); code != 404 {
		t.Errorf("webhook on an events-only service: status %d %v; want 404", code, reply)
	}
}
