package main

import (
	"context"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	cloudtasks "cloud.google.com/go/cloudtasks/apiv2"
	"cloud.google.com/go/pubsub/v2"
	"cloud.google.com/go/pubsub/v2/apiv1/pubsubpb"
	"cloud.google.com/go/pubsub/v2/pstest"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/pushpool/pushpool/dispatch/invoke"
	"github.com/pushpool/pushpool/functions/gcp/internal/gcpfake"
)

// newTestQueue returns a queue on fresh fakes: topic and tasks queue as
// asked, with the clients the function uses.
func newTestQueue(t *testing.T, topic, tasks bool) (*gcpQueue, *pstest.Server, *gcpfake.Server) {
	t.Helper()
	ctx := t.Context()
	q := &gcpQueue{selfURL: "https://pushpool-abc123-ue.a.run.app/", serviceAccount: tasksAccount}
	ps := pstest.NewServer()
	t.Cleanup(func() { ps.Close() })
	fake, err := gcpfake.Start()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(fake.Stop)
	if topic {
		q.topic = "projects/" + testProject + "/topics/pushpool-fanout"
		c, err := pubsub.NewClient(ctx, testProject, clientOptions(ps.Addr)...)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { c.Close() })
		if _, err := c.TopicAdminClient.CreateTopic(ctx, &pubsubpb.Topic{Name: q.topic}); err != nil {
			t.Fatal(err)
		}
		p := c.Publisher(q.topic)
		t.Cleanup(p.Stop)
		q.pub = p
	}
	if tasks {
		q.queue = "projects/" + testProject + "/locations/" + testRegion + "/queues/pushpool-wake"
		if err := fake.AddQueue(q.queue); err != nil {
			t.Fatal(err)
		}
		c, err := cloudtasks.NewClient(context.WithoutCancel(ctx), clientOptions(fake.Addr())...)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { c.Close() })
		q.tasks = c
	}
	return q, ps, fake
}

const testRunID = "01972b5e-0c3a-71f2-9d4e-3c8a2f1b6e01"

// TestGCPQueue_Send: shards go to the topic at once; wake-ups become named
// tasks at their due time, deduplicated by name; what cannot be queued is
// an error naming the setting or the limit.
func TestGCPQueue_Send(t *testing.T) {
	t.Parallel()
	m := invoke.Message{Pool: "cloud-run-push", FlowRunIDs: []string{testRunID}}
	due := time.Now().Add(10 * time.Minute).Truncate(time.Microsecond)

	t.Run("shard to the topic", func(t *testing.T) {
		t.Parallel()
		q, ps, fake := newTestQueue(t, true, true)
		if err := q.Send(t.Context(), m, time.Time{}); err != nil {
			t.Fatal(err)
		}
		msgs := ps.Messages()
		if len(msgs) != 1 || string(msgs[0].Data) != string(m.Encode()) || fake.Calls("CreateTask") != 0 {
			t.Errorf("published %d message(s) and created %d task(s); want the shard on the topic only", len(msgs), fake.Calls("CreateTask"))
		}
	})
	t.Run("wake-up as a named task", func(t *testing.T) {
		t.Parallel()
		q, ps, fake := newTestQueue(t, true, true)
		for range 2 {
			if err := q.Send(t.Context(), m, due); err != nil {
				t.Fatalf("send (a duplicate is no error): %v", err)
			}
		}
		tasks := fake.Tasks(q.queue)
		if len(tasks) != 1 || len(ps.Messages()) != 0 {
			t.Fatalf("%d task(s), %d message(s); want one task", len(tasks), len(ps.Messages()))
		}
		task := tasks[0]
		id := task.Name[strings.LastIndex(task.Name, "/")+1:]
		if !regexp.MustCompile(`^[0-9a-f]{8}-` + testRunID + `-` + strconv.FormatInt(due.Unix(), 10) + `$`).MatchString(id) {
			t.Errorf("task id %s; want <hash>-%s-%d", id, testRunID, due.Unix())
		}
		if !task.ScheduleTime.AsTime().Equal(due) || string(task.GetHttpRequest().GetBody()) != string(m.Encode()) ||
			task.GetHttpRequest().GetUrl() != q.selfURL || task.GetHttpRequest().GetOidcToken().GetAudience() != "https://pushpool-abc123-ue.a.run.app" {
			t.Errorf("task = %v; want the message POSTed to %s at %s with the service URL as audience", task, q.selfURL, due)
		}
	})
	t.Run("shard as a task without a topic", func(t *testing.T) {
		t.Parallel()
		q, _, fake := newTestQueue(t, false, true)
		if err := q.Send(t.Context(), invoke.Message{Pool: "p", FlowRunIDs: []string{"a", "b"}}, time.Time{}); err != nil {
			t.Fatal(err)
		}
		if tasks := fake.Tasks(q.queue); len(tasks) != 1 || tasks[0].ScheduleTime.AsTime().After(time.Now()) {
			t.Errorf("tasks = %v; want one, due at once", tasks)
		}
	})
	for _, tc := range []struct {
		name         string
		topic, tasks bool
		at           time.Time
		fault        *status.Status
		want         []string
		wantMaxDelay time.Duration
	}{
		{name: "wake-up without a tasks queue", topic: true, at: due, want: []string{EnvTasksQueue}},
		{name: "wake-up beyond 30 days", topic: true, tasks: true, at: time.Now().Add(31 * 24 * time.Hour), want: []string{"720h0m0s"}, wantMaxDelay: tasksMaxDelay},
		{name: "shard without any queue", want: []string{EnvTopic, EnvTasksQueue}},
		{name: "enqueue denied", tasks: true, at: due, wantMaxDelay: tasksMaxDelay,
			fault: status.New(codes.PermissionDenied, "The principal lacks IAM permission \"cloudtasks.tasks.create\""),
			want:  []string{"roles/cloudtasks.enqueuer", "roles/iam.serviceAccountUser", tasksAccount, "pushpool-wake", "cloudtasks.tasks.create"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			q, _, fake := newTestQueue(t, tc.topic, tc.tasks)
			if tc.fault != nil {
				fake.Inject("CreateTask", tc.fault, -1)
			}
			if q.MaxDelay() != tc.wantMaxDelay {
				t.Errorf("MaxDelay = %v; want %v", q.MaxDelay(), tc.wantMaxDelay)
			}
			err := q.Send(t.Context(), m, tc.at)
			for _, w := range tc.want {
				if err == nil || !strings.Contains(err.Error(), w) {
					t.Errorf("error %v; want it to name %q", err, w)
				}
			}
		})
	}
}
