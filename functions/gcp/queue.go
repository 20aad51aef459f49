package main

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"net/url"
	"strconv"
	"strings"
	"time"

	"cloud.google.com/go/cloudtasks/apiv2/cloudtaskspb"
	"cloud.google.com/go/pubsub/v2"
	"github.com/googleapis/gax-go/v2"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/pushpool/pushpool/dispatch/invoke"
)

// tasksMaxDelay is how far ahead Cloud Tasks schedules a task.
const tasksMaxDelay = 30 * 24 * time.Hour

// publisher is the part of *pubsub.Publisher the queue calls.
type publisher interface {
	Publish(ctx context.Context, msg *pubsub.Message) *pubsub.PublishResult
}

// taskCreator is the part of the Cloud Tasks client the queue calls.
type taskCreator interface {
	CreateTask(ctx context.Context, req *cloudtaskspb.CreateTaskRequest, opts ...gax.CallOption) (*cloudtaskspb.Task, error)
}

// gcpQueue is invoke.Queue on Google Cloud: fan-out shards are published
// to a Pub/Sub topic, whose subscription pushes them back to the function;
// delayed wake-ups are Cloud Tasks tasks that POST the message to the
// function's own URL at the due time. Without a topic, shards are tasks
// too, due at once.
type gcpQueue struct {
	pub   publisher // nil without a topic
	topic string

	tasks          taskCreator // nil without a tasks queue
	queue          string
	selfURL        string
	serviceAccount string // for OIDC tokens; "" sends none

	now func() time.Time
}

var _ invoke.Queue = (*gcpQueue)(nil)

// MaxDelay implements invoke.Queue: 30 days with a tasks queue, none
// without.
func (q *gcpQueue) MaxDelay() time.Duration {
	if q.tasks == nil {
		return 0
	}
	return tasksMaxDelay
}

// Send implements invoke.Queue. A wake-up task is named after its runs and
// due time, so the same wake-up sent twice (two ticks, a tick and a
// webhook) is one task: Cloud Tasks answers AlreadyExists, which is
// success. Cloud Tasks keeps the name of an executed task for up to a day,
// so a wake-up re-sent for the same due time after its task ran (an early
// delivery beyond the lookahead) is dropped as well; the next tick, which
// dispatches every due run, starts the run then.
func (q *gcpQueue) Send(ctx context.Context, m invoke.Message, at time.Time) error {
	now := time.Now
	if q.now != nil {
		now = q.now
	}
	if !at.After(now()) {
		if q.pub != nil {
			return q.publish(ctx, m)
		}
		if q.tasks != nil {
			return q.createTask(ctx, m, time.Time{})
		}
		return fmt.Errorf("no queue for fan-out shards: set %s or %s", EnvTopic, EnvTasksQueue)
	}
	if q.tasks == nil {
		return fmt.Errorf("cannot wake flow run %v at %s: no Cloud Tasks queue is configured; set %s to wake runs between ticks", m.FlowRunIDs, at.UTC().Format(time.RFC3339), EnvTasksQueue)
	}
	if d := at.Sub(now()); d > tasksMaxDelay {
		return fmt.Errorf("wake-up for flow run %v is %v ahead; Cloud Tasks schedules at most %v ahead", m.FlowRunIDs, d.Round(time.Second), tasksMaxDelay)
	}
	return q.createTask(ctx, m, at)
}

func (q *gcpQueue) publish(ctx context.Context, m invoke.Message) error {
	res := q.pub.Publish(ctx, &pubsub.Message{Data: m.Encode(), Attributes: map[string]string{"pushpool_kind": invoke.MessageKind, "work_pool": m.Pool}})
	if _, err := res.Get(ctx); err != nil {
		return fmt.Errorf("publish a shard of %d flow run(s) of work pool %q to Pub/Sub topic %s: %w; the function's service account needs roles/pubsub.publisher on the topic", len(m.FlowRunIDs), m.Pool, q.topic, err)
	}
	return nil
}

func (q *gcpQueue) createTask(ctx context.Context, m invoke.Message, at time.Time) error {
	hr := &cloudtaskspb.HttpRequest{
		Url:        q.selfURL,
		HttpMethod: cloudtaskspb.HttpMethod_POST,
		Headers:    map[string]string{"Content-Type": "application/json"},
		Body:       m.Encode(),
	}
	if q.serviceAccount != "" {
		hr.AuthorizationHeader = &cloudtaskspb.HttpRequest_OidcToken{OidcToken: &cloudtaskspb.OidcToken{
			ServiceAccountEmail: q.serviceAccount, Audience: audience(q.selfURL)}}
	}
	task := &cloudtaskspb.Task{MessageType: &cloudtaskspb.Task_HttpRequest{HttpRequest: hr}}
	if !at.IsZero() {
		task.Name = q.queue + "/tasks/" + taskID(m.FlowRunIDs, at)
		task.ScheduleTime = timestamppb.New(at)
	}
	_, err := q.tasks.CreateTask(ctx, &cloudtaskspb.CreateTaskRequest{Parent: q.queue, Task: task})
	if status.Code(err) == codes.AlreadyExists {
		return nil // the same wake-up, sent before
	}
	if err != nil {
		var hint string
		if q.serviceAccount != "" {
			hint = fmt.Sprintf(" and roles/iam.serviceAccountUser on %s", q.serviceAccount)
		}
		return fmt.Errorf("create the Cloud Tasks task waking flow run(s) %s of work pool %q in queue %s: %w; the function's service account needs roles/cloudtasks.enqueuer on the queue%s", strings.Join(m.FlowRunIDs, ", "), m.Pool, q.queue, err, hint)
	}
	return nil
}

// taskID names the wake-up of runs at due time at:
// <hash>-<flow run id>-<unix due>. Flow run ids are UUIDv7s, whose prefix
// is a timestamp, and Cloud Tasks serves sequential task ids slowly; the
// leading hash of the ids spreads them.
func taskID(ids []string, at time.Time) string {
	sum := sha256.Sum256([]byte(strings.Join(ids, ",")))
	h := hex.EncodeToString(sum[:])
	due := strconv.FormatInt(at.Unix(), 10)
	if len(ids) == 1 {
		return h[:8] + "-" + ids[0] + "-" + due
	}
	return h[:32] + "-" + due
}

// audience is the OIDC audience Cloud Run accepts for url: the service URL,
// without a path.
func audience(raw string) string {
	u, err := url.Parse(raw)
	if err != nil {
		return raw
	}
	return u.Scheme + "://" + u.Host
}
