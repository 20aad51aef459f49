package main

import (
	"bufio"
	"bytes"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/Azure/azure-sdk-for-go/sdk/storage/azqueue/v2"
	"github.com/google/uuid"

	"github.com/pushpool/pushpool/dispatch"
	"github.com/pushpool/pushpool/dispatch/backend/process"
	"github.com/pushpool/pushpool/dispatch/backends"
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

// stack is a Prefect server, Azurite with the function's queue, and a
// process pool whose runs record their start in a file, with the app
// settings infra/azure gives the function.
type stack struct {
	t       *testing.T
	azurite *localstack.Azurite
	api     *prefect.Client
	queue   *azqueue.QueueClient
	pool    string
	dep     prefect.Deployment
	// starts is appended "<flow run id> <trigger event id>" by every
	// process a run starts.
	starts string
	env    map[string]string
}

func newStack(t *testing.T, shardSize int) *stack {
	ctx := t.Context()
	az, err := localstack.StartAzurite(ctx)
	if err != nil {
		t.Fatalf("the Azure function tests need Azurite: %v", err)
	}
	t.Cleanup(func() { az.Stop() })
	s := &stack{t: t, azurite: az, starts: filepath.Join(t.TempDir(), "starts")}
	name := "pushpool-wake-" + strconv.FormatInt(time.Now().UnixNano()%1e9, 10)
	svc, err := azqueue.NewServiceClientFromConnectionString(az.ConnectionString, nil)
	if err != nil {
		t.Fatal(err)
	}
	s.queue = svc.NewQueueClient(name)
	if _, err := s.queue.Create(ctx, nil); err != nil {
		t.Fatalf("create the queue in Azurite: %v", err)
	}

	s.api, err = prefect.New(prefect.Config{URL: srv.URL})
	if err != nil {
		t.Fatal(err)
	}
	s.pool = "azure-" + strings.ReplaceAll(t.Name(), "/", "-") + "-" + time.Now().Format("150405.000000")
	if _, err := s.api.CreateWorkPool(ctx, prefect.WorkPoolCreate{Name: s.pool, Type: process.PoolType, BaseJobTemplate: process.DefaultBaseJobTemplate()}); err != nil {
		t.Fatal(err)
	}
	flow, err := s.api.CreateFlow(ctx, "azure-hello", nil)
	if err != nil {
		t.Fatal(err)
	}
	command := `sh -c 'echo "$PREFECT__FLOW_RUN_ID ${PREFECT_TRIGGER_EVENT_ID:-}" >> ` + s.starts + `'`
	s.dep, err = s.api.CreateDeployment(ctx, prefect.DeploymentCreate{Name: s.pool, FlowID: flow.ID, WorkPoolName: s.pool,
		JobVariables: map[string]any{"command": command, "stream_output": false}})
	if err != nil {
		t.Fatal(err)
	}
	appRoot, _ := filepath.Abs("app")
	s.env = map[string]string{
		"PREFECT_API_URL":               srv.URL,
		"PUSHPOOL_POOLS":                s.pool,
		"PUSHPOOL_SHARD_SIZE":           strconv.Itoa(shardSize),
		"PUSHPOOL_WAKE_HORIZON_SECONDS": "60",
		"PUSHPOOL_PROCESS_STATE_DIR":    t.TempDir(),
		EnvQueue:                        name,
		EnvStorage:                      az.ConnectionString,
		EnvWebhookSecret:                webhookSecret,
		EnvAppRoot:                      appRoot,
	}
	return s
}

func (s *stack) lookup(k string) (string, bool) {
	v, ok := s.env[k]
	return v, ok
}

func (s *stack) function() *function {
	s.t.Helper()
	f, err := newFunction(testBackends(), s.lookup, slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn})))
	if err != nil {
		s.t.Fatalf("start the function: %v", err)
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

// started returns what the runs' processes recorded: flow run id →
// trigger event ids, one per start. Processes start asynchronously, so it
// waits up to wait for every id in want to appear.
func (s *stack) started(wait time.Duration, want ...string) map[string][]string {
	s.t.Helper()
	deadline := time.Now().Add(wait)
	for {
		got := map[string][]string{}
		if f, err := os.Open(s.starts); err == nil {
			sc := bufio.NewScanner(f)
			for sc.Scan() {
				id, event, _ := strings.Cut(sc.Text(), " ")
				got[id] = append(got[id], event)
			}
			f.Close()
		}
		missing := 0
		for _, id := range want {
			if len(got[id]) == 0 {
				missing++
			}
		}
		if missing == 0 || time.Now().After(deadline) {
			return got
		}
		time.Sleep(100 * time.Millisecond)
	}
}

func testdata(t *testing.T, name string) []byte {
	t.Helper()
	b, err := os.ReadFile("testdata/" + name)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// reply is the handler's answer to the host.
type reply struct {
	Outputs     map[string]json.RawMessage
	Logs        []string
	ReturnValue json.RawMessage
}

// invoke posts a payload to a function as the Functions host does.
func invokeFunction(t *testing.T, f *function, name string, payload []byte) (int, reply) {
	t.Helper()
	req := httptest.NewRequest(http.MethodPost, "/"+name, bytes.NewReader(payload))
	req.Header.Set("Content-Type", "application/json; charset=utf-8")
	req.Header.Set("X-Azure-Functions-InvocationId", uuid.NewString())
	req.Header.Set("X-Azure-Functions-HostVersion", "4.1037.0.0")
	req.Header.Set("User-Agent", "Azure-Functions-Host/4.1037.0.0")
	rec := httptest.NewRecorder()
	f.routes().ServeHTTP(rec, req)
	var r reply
	if err := json.Unmarshal(rec.Body.Bytes(), &r); err != nil {
		t.Fatalf("%s answered %d with a body that is not an invocation result: %q", name, rec.Code, rec.Body.String())
	}
	return rec.Code, r
}

func tickOf(t *testing.T, r reply) fnapp.TickReply {
	t.Helper()
	var sum fnapp.TickReply
	if err := json.Unmarshal(r.Outputs[outSummary], &sum); err != nil || len(sum.Pools) != 1 {
		t.Fatalf("tick outputs %s (%v); want one pool's summary", r.Outputs[outSummary], err)
	}
	return sum
}

// hostString is how the host puts a string it cannot make a JSON object
// into the payload: as JSON text (JsonConvert.SerializeObject).
func hostString(s string) string {
	b, _ := json.Marshal(s)
	return string(b)
}

// queuePayload is the invocation the host makes of a dequeued message: its
// text base64-decoded (messageEncoding "base64"), with the trigger's
// metadata, in the format of testdata/queue-trigger.json.
func (s *stack) queuePayload(text string, id, popReceipt string, dequeueCount int64, inserted, expires, nextVisible time.Time) []byte {
	s.t.Helper()
	decoded, err := base64.StdEncoding.DecodeString(text)
	if err != nil {
		s.t.Fatalf("queue message %s is not base64, which the trigger expects: %q", id, text)
	}
	var p map[string]map[string]any
	if err := json.Unmarshal(testdata(s.t, "queue-trigger.json"), &p); err != nil {
		s.t.Fatal(err)
	}
	offset := func(t time.Time) string { return t.UTC().Format("2006-01-02T15:04:05-07:00") }
	p["Data"][bindMessage] = hostString(string(decoded))
	md := p["Metadata"]
	md["DequeueCount"] = strconv.FormatInt(dequeueCount, 10) // a number, serialized as text
	md["Id"], md["PopReceipt"] = hostString(id), hostString(popReceipt)
	md["InsertionTime"], md["ExpirationTime"], md["NextVisibleTime"] = offset(inserted), offset(expires), offset(nextVisible)
	md["sys"].(map[string]any)["UtcNow"] = time.Now().UTC().Format(time.RFC3339Nano)
	b, _ := json.Marshal(p)
	return b
}

// drain does what the queue trigger does: it dequeues the visible
// messages, invokes fanout with each and deletes the ones it succeeded
// with, until the queue stays empty for idle. It returns the failures.
func (s *stack) drain(f *function, idle time.Duration) (delivered int, failures []string) {
	s.t.Helper()
	quiet := time.Now()
	for time.Since(quiet) < idle {
		out, err := s.queue.DequeueMessages(s.t.Context(), &azqueue.DequeueMessagesOptions{NumberOfMessages: ptr[int32](16), VisibilityTimeout: ptr[int32](60)})
		if err != nil {
			s.t.Fatal(err)
		}
		if len(out.Messages) == 0 {
			time.Sleep(250 * time.Millisecond)
			continue
		}
		quiet = time.Now()
		for _, m := range out.Messages {
			payload := s.queuePayload(*m.MessageText, *m.MessageID, *m.PopReceipt, *m.DequeueCount, *m.InsertionTime, *m.ExpirationTime, *m.TimeNextVisible)
			code, r := invokeFunction(s.t, f, fnFanout, payload)
			delivered++
			if code != http.StatusOK {
				failures = append(failures, fmt.Sprintf("%s: %d %v", *m.MessageID, code, r.Logs))
				continue
			}
			if _, err := s.queue.DeleteMessage(s.t.Context(), *m.MessageID, *m.PopReceipt, nil); err != nil {
				s.t.Fatal(err)
			}
		}
	}
	return delivered, failures
}

// TestFunction_tickFansOutThroughTheStorageQueue: a timer invocation with
// more due runs than the shard size dispatches one shard itself and sends
// the rest to the storage queue; queue-trigger invocations of those
// messages start them; every run is started exactly once. A malformed
// message fails its invocation so the host retries it.
func TestFunction_tickFansOutThroughTheStorageQueue(t *testing.T) {
	s := newStack(t, 2)
	f := s.function()
	var ids []string
	for range 7 {
		ids = append(ids, s.run(time.Now()).ID)
	}
	code, r := invokeFunction(t, f, fnTick, testdata(t, "timer-trigger.json"))
	if code != http.StatusOK {
		t.Fatalf("tick: status %d, logs %v", code, r.Logs)
	}
	if p := tickOf(t, r).Pools[0]; p.Outcomes["submitted"] != 2 || p.Shards != 3 || p.Fanned != 5 || p.Error != "" {
		t.Fatalf("tick = %+v; want 2 runs submitted here and 5 fanned out in 3 shards", p)
	}
	props, err := s.queue.GetProperties(t.Context(), nil)
	if err != nil || props.ApproximateMessagesCount == nil || *props.ApproximateMessagesCount != 3 {
		t.Errorf("queue holds %v messages (%v); want the 3 shards", props.ApproximateMessagesCount, err)
	}
	delivered, failures := s.drain(f, 3*time.Second)
	if delivered != 3 || len(failures) != 0 {
		t.Errorf("delivered %d queue messages, failures %v; want 3 shards, all dispatched", delivered, failures)
	}
	starts := s.started(30*time.Second, ids...)
	for _, id := range ids {
		r := s.read(id)
		if r.InfrastructurePID == nil || len(starts[id]) != 1 {
			t.Errorf("flow run %s: state %s, pid %v, started %d time(s); want exactly one process, recorded", id, *r.StateType, r.InfrastructurePID, len(starts[id]))
		}
	}

	// The next tick finds nothing left to do.
	code, r = invokeFunction(t, f, fnTick, testdata(t, "timer-trigger.json"))
	if p := tickOf(t, r).Pools[0]; code != http.StatusOK || p.Outcomes["submitted"] != 0 || p.Shards != 0 {
		t.Errorf("second tick: %d %+v; want nothing submitted or fanned out again", code, p)
	}

	// A pushpool message naming no flow run fails its invocation: the host
	// delivers it again and, after maxDequeueCount, poisons it.
	bad := base64.StdEncoding.EncodeToString(invoke.Message{Pool: s.pool}.Encode())
	now := time.Now()
	code, r = invokeFunction(t, f, fnFanout, s.queuePayload(bad, uuid.NewString(), "AgAAAAMAAAAAAAAA", 5, now, now.Add(7*24*time.Hour), now.Add(10*time.Second)))
	if code != http.StatusInternalServerError || len(r.Logs) == 0 || !strings.Contains(r.Logs[0], "names no flow run") {
		t.Errorf("malformed message: %d %v; want 500 saying why", code, r.Logs)
	}
}

// TestFunction_tickWakesRunsDueBeforeTheNextTick: a run due in a few
// seconds becomes a queue message hidden until its due time; the queue
// trigger sees it then, and the run starts on time, not at the next tick.
func TestFunction_tickWakesRunsDueBeforeTheNextTick(t *testing.T) {
	s := newStack(t, 20)
	f := s.function()
	due := time.Now().Add(12 * time.Second)
	run := s.run(due)
	code, r := invokeFunction(t, f, fnTick, testdata(t, "timer-trigger.json"))
	if p := tickOf(t, r).Pools[0]; code != http.StatusOK || p.Woken != 1 || p.Outcomes["submitted"] != 0 {
		t.Fatalf("tick: %d %+v; want the run left for a wake-up", code, p)
	}
	// Hidden until the due time: the trigger cannot take it early.
	early, err := s.queue.DequeueMessages(t.Context(), &azqueue.DequeueMessagesOptions{NumberOfMessages: ptr[int32](32)})
	if err != nil || len(early.Messages) != 0 {
		t.Fatalf("the queue gave %d message(s) long before the due time (%v)", len(early.Messages), err)
	}
	if _, failures := s.drain(f, 4*time.Second+time.Until(due)); len(failures) != 0 {
		t.Errorf("wake-up failed: %v", failures)
	}
	if r := s.read(run.ID); r.InfrastructurePID == nil || len(s.started(30*time.Second, run.ID)[run.ID]) != 1 {
		t.Fatalf("run %s is %s with no process after its wake-up", run.ID, *r.StateType)
	}
	states, err := s.api.ReadFlowRunStates(t.Context(), run.ID)
	if err != nil {
		t.Fatal(err)
	}
	for _, st := range states {
		if st.Type == prefect.StatePending && st.Timestamp != nil {
			lag := st.Timestamp.Sub(due)
			t.Logf("due → claim %v through a hidden storage queue message", lag.Round(time.Millisecond))
			if lag < -11*time.Second {
				t.Errorf("claimed %v before its due time, more than the lookahead", -lag)
			}
			break
		}
	}
}

// webhook posts body through an HTTP trigger invocation, with the
// signature header when sig is set.
func (s *stack) webhook(f *function, body []byte, sig string) (int, map[string]any) {
	s.t.Helper()
	var p map[string]map[string]map[string]any
	if err := json.Unmarshal(testdata(s.t, "http-trigger.json"), &p); err != nil {
		s.t.Fatal(err)
	}
	req := p["Data"][bindRequest]
	req["Body"] = string(body)
	headers := req["Headers"].(map[string]any)
	headers["Content-Length"] = []string{strconv.Itoa(len(body))}
	if sig == "" {
		delete(headers, invoke.SignatureHeader)
	} else {
		headers[invoke.SignatureHeader] = []string{sig}
	}
	payload, _ := json.Marshal(p)
	code, r := invokeFunction(s.t, f, fnWebhook, payload)
	if code != http.StatusOK {
		s.t.Fatalf("webhook invocation: status %d, logs %v; want 200 with the response in Outputs.res", code, r.Logs)
	}
	var res httpResponse
	if err := json.Unmarshal(r.Outputs[bindResponse], &res); err != nil {
		s.t.Fatalf("webhook outputs %s: %v", r.Outputs[bindResponse], err)
	}
	var out map[string]any
	_ = json.Unmarshal([]byte(res.Body), &out)
	return res.StatusCode, out
}

// TestFunction_webhook: Prefect's flow-run Scheduled event, signed,
// dispatches the run with the event attributed; unsigned, tampered, stale
// or foreign requests get 401 and change nothing; a run announced before
// it is due becomes a queue message hidden until its due time.
func TestFunction_webhook(t *testing.T) {
	s := newStack(t, 20)
	f := s.function()
	secret := []byte(webhookSecret)
	event := func(runID string) []byte {
		return bytes.ReplaceAll(testdata(t, "prefect-flow-run-scheduled-event.json"), []byte("FLOW_RUN_ID"), []byte(runID))
	}

	run := s.run(time.Now())
	body := event(run.ID)
	for _, tc := range []struct{ name, sig string }{
		{"unsigned", ""},
		{"tampered", invoke.Sign(secret, append([]byte(" "), body...), time.Now())},
		{"other secret", invoke.Sign([]byte("guess"), body, time.Now())},
		{"stale", invoke.Sign(secret, body, time.Now().Add(-10*time.Minute))},
		{"garbage", "sha256=deadbeef"},
	} {
		if code, out := s.webhook(f, body, tc.sig); code != http.StatusUnauthorized {
			t.Errorf("%s webhook: status %d %v; want 401", tc.name, code, out)
		}
	}
	if r := s.read(run.ID); *r.StateType != prefect.StateScheduled || len(s.started(0)[run.ID]) != 0 {
		t.Errorf("after refused webhooks the run is %s; want it untouched", *r.StateType)
	}

	code, out := s.webhook(f, body, invoke.Sign(secret, body, time.Now()))
	if code != http.StatusOK || out["outcome"] != string(dispatch.Submitted) {
		t.Fatalf("signed webhook: status %d %v; want the run submitted", code, out)
	}
	if r := s.read(run.ID); r.Labels[dispatch.LabelTriggerEventID] != "4f5a6b7c-8d9e-4f0a-1b2c-3d4e5f6a7b8c" || r.Labels[dispatch.LabelTriggerActor] == nil {
		t.Errorf("run labels = %v; want the triggering event id and actor", r.Labels)
	}
	if got := s.started(30*time.Second, run.ID)[run.ID]; len(got) != 1 || got[0] != "4f5a6b7c-8d9e-4f0a-1b2c-3d4e5f6a7b8c" {
		t.Errorf("the run's process recorded %q; want one start with %s set to the event id", got, dispatch.EnvTriggerEventID)
	}

	// Announced before it is due: a queue message hidden until then.
	later := s.run(time.Now().Add(5 * time.Minute))
	body = event(later.ID)
	code, out = s.webhook(f, body, invoke.Sign(secret, body, time.Now()))
	if code != http.StatusOK || out["outcome"] != string(dispatch.NotDue) || out["wake_at"] == nil {
		t.Fatalf("webhook for a later run: status %d %v; want not-due with a wake-up time", code, out)
	}
	peek, err := s.queue.PeekMessages(t.Context(), &azqueue.PeekMessagesOptions{NumberOfMessages: ptr[int32](32)})
	if err != nil || len(peek.Messages) != 0 {
		t.Errorf("peek shows %d visible message(s) (%v); want the wake-up hidden until its due time", len(peek.Messages), err)
	}
	props, err := s.queue.GetProperties(t.Context(), nil)
	if err != nil || props.ApproximateMessagesCount == nil || *props.ApproximateMessagesCount != 1 {
		t.Errorf("queue holds %v messages (%v); want the one wake-up", props.ApproximateMessagesCount, err)
	}
	if r := s.read(later.ID); *r.StateType != prefect.StateScheduled {
		t.Errorf("the later run is %s; want it Scheduled until its wake-up", *r.StateType)
	}
}

func ptr[T any](v T) *T { return &v }

// testBackends links the process backend beside ACI: the tests dispatch
// real runs of process pools, since nothing answers ACI's API outside the
// SDK's in-process fakes. The artifact links ACI only (backends.go).
func testBackends() backends.Set { return append(linked(), process.Kind()) }
