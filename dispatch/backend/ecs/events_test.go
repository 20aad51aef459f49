package ecs

import (
	"os"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ecs"

	"github.com/pushpool/pushpool/dispatch"
	"github.com/pushpool/pushpool/dispatch/dispatchtest"
	"github.com/pushpool/pushpool/dispatch/prefect"
)

func readEvent(t *testing.T, name string) []byte {
	t.Helper()
	data, err := os.ReadFile("testdata/" + name)
	if err != nil {
		t.Fatal(err)
	}
	return data
}

func TestParseTaskStateChange(t *testing.T) {
	t.Parallel()
	const run = "7c2d9a4e-5b1f-4e8a-9d3c-2f6b8a1e0c57"
	const key = "3f9c0a7e" // the testdata's startedBy is run + "-" + key
	const id = "arn:aws:ecs:us-west-2:111122223333:cluster/prefect-cluster::arn:aws:ecs:us-west-2:111122223333:task/prefect-cluster/b9a6cd3a4b7b4c7a8d9e0f1a2b3c4d5e"
	legacy := strings.Replace(string(readEvent(t, "task-state-change-stopped.json")), run+"-"+key, run, 1)
	tests := []struct {
		name     string
		data     []byte
		ok       bool
		state    dispatch.InfraState
		code     int
		reason   []string
		exitedAt string
		attempt  string
	}{
		{"stopped by OOM", readEvent(t, "task-state-change-stopped.json"), true, dispatch.StateExited, 137,
			[]string{"EssentialContainerExited", "Essential container in task exited", "OutOfMemoryError"}, "2026-11-25T10:21:45.091Z", key},
		{"failed to start, no containers", readEvent(t, "task-state-change-failed-to-start.json"), true, dispatch.StateExited, -1,
			[]string{"TaskFailedToStart", "CannotPullContainerError", "no containers"}, "2026-11-25T10:21:45.091Z", key},
		{"running", readEvent(t, "task-state-change-running.json"), true, dispatch.StateRunning, 0, nil, "", key},
		{"started before attempts (startedBy the flow run id)", []byte(legacy), true, dispatch.StateExited, 137, []string{"OutOfMemoryError"}, "2026-11-25T10:21:45.091Z", ""},
		{"a service's task, not pushpool's", readEvent(t, "task-state-change-service-task.json"), false, "", 0, nil, "", ""},
		{"another event", []byte(`{"source":"aws.ec2","detail-type":"EC2 Instance State-change Notification","detail":{}}`), false, "", 0, nil, "", ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			ev, ok, err := ParseTaskStateChange(tt.data)
			if err != nil || ok != tt.ok {
				t.Fatalf("ParseTaskStateChange = %+v, %v, %v; want ok %v", ev, ok, err, tt.ok)
			}
			if !ok {
				return
			}
			if ev.FlowRunID != run || ev.InfrastructureID != id {
				t.Errorf("event of flow run %q, infrastructure %q; want %s, %s", ev.FlowRunID, ev.InfrastructureID, run, id)
			}
			if ev.Status.State != tt.state || (tt.state == dispatch.StateExited && ev.Status.ExitCode != tt.code) {
				t.Errorf("status = %+v; want %s with exit code %d", ev.Status, tt.state, tt.code)
			}
			if ev.Status.Attempt != tt.attempt {
				t.Errorf("attempt = %q, want %q", ev.Status.Attempt, tt.attempt)
			}
			for _, w := range tt.reason {
				if !strings.Contains(ev.Status.Reason, w) {
					t.Errorf("reason %q does not contain %q", ev.Status.Reason, w)
				}
			}
			if tt.exitedAt != "" && ev.Status.ExitedAt.Format(time.RFC3339Nano) != tt.exitedAt {
				t.Errorf("exited at %s, want %s", ev.Status.ExitedAt.Format(time.RFC3339Nano), tt.exitedAt)
			}
		})
	}
	if _, _, err := ParseTaskStateChange([]byte("not json")); err == nil {
		t.Error("ParseTaskStateChange of garbage succeeded")
	}
}

func TestParseStartedBy(t *testing.T) {
	t.Parallel()
	const run = "7c2d9a4e-5b1f-4e8a-9d3c-2f6b8a1e0c57"
	for _, tc := range []struct {
		startedBy, run, key string
		ok                  bool
	}{
		{run + "-3f9c0a7e", run, "3f9c0a7e", true},
		{run, run, "", true},
		{"", "", "", false},
		{"ecs-svc/1234567890123456789", "", "", false},
		{"nightly-backup-3f9c0a7e", "", "", false}, // a token's shape, not a flow run's
		{run + "-3F9C0A7E", "", "", false},
	} {
		gotRun, gotKey, ok := parseStartedBy(tc.startedBy)
		if gotRun != tc.run || gotKey != tc.key || ok != tc.ok {
			t.Errorf("parseStartedBy(%q) = %q, %q, %v; want %q, %q, %v", tc.startedBy, gotRun, gotKey, ok, tc.run, tc.key, tc.ok)
		}
	}
}

// TestObserve_taskStateChange feeds the reconciler an EventBridge event
// about a task pushpool started on moto: the pid Prefect recorded names the
// cluster by name, the event by ARN, and the run still ends CRASHED with
// the event's explanation.
func TestObserve_taskStateChange(t *testing.T) {
	cluster := createCluster(t)
	api, err := prefect.New(prefect.Config{URL: srv.URL})
	if err != nil {
		t.Fatal(err)
	}
	b := newTestBackend(t)
	h := motoHarness(t, b, cluster)
	res := dispatchtest.RunEndToEnd(t, dispatchtest.EndToEnd{
		API: api, PoolType: PoolType, BaseJobTemplate: DefaultBaseJobTemplate(),
		JobVariables: map[string]any{"cluster": cluster},
		Backend:      h.Backend, Count: h.Count,
		PIDPattern: regexp.MustCompile(`^` + cluster + `::`),
	})
	if t.Failed() {
		return
	}
	task := taskARN(t, res.InfrastructureID)
	desc, err := motoECS().DescribeTasks(t.Context(), &ecs.DescribeTasksInput{Cluster: aws.String(cluster), Tasks: []string{task}})
	if err != nil || len(desc.Tasks) != 1 {
		t.Fatalf("describe task %s: %v", task, err)
	}
	startedBy := aws.ToString(desc.Tasks[0].StartedBy)
	if !strings.HasPrefix(startedBy, res.FlowRunID+"-") {
		t.Fatalf("task %s was started by %q, want the attempt token of flow run %s", task, startedBy, res.FlowRunID)
	}
	clusterARN := "arn:aws:ecs:us-east-1:123456789012:cluster/" + cluster
	eventOf := func(startedBy string) dispatch.InfraEvent {
		t.Helper()
		event := strings.NewReplacer(
			"arn:aws:ecs:us-west-2:111122223333:task/prefect-cluster/b9a6cd3a4b7b4c7a8d9e0f1a2b3c4d5e", task,
			"arn:aws:ecs:us-west-2:111122223333:cluster/prefect-cluster", clusterARN,
			"7c2d9a4e-5b1f-4e8a-9d3c-2f6b8a1e0c57-3f9c0a7e", startedBy,
		).Replace(string(readEvent(t, "task-state-change-stopped.json")))
		ev, ok, err := ParseTaskStateChange([]byte(event))
		if err != nil || !ok {
			t.Fatalf("ParseTaskStateChange = %v, %v", ok, err)
		}
		return ev
	}
	rec, err := dispatch.NewReconciler(res.Dispatcher, dispatch.ReconcileConfig{})
	if err != nil {
		t.Fatal(err)
	}
	// An event about another attempt's task (an earlier run of the flow
	// run) leaves the run alone.
	other := dispatchtest.NewAttempt(res.FlowRunID).Token()
	if c, acted, err := rec.Observe(t.Context(), eventOf(other)); err != nil || acted {
		t.Fatalf("Observe of another attempt's task = %+v, %v, %v; want it ignored", c, acted, err)
	}
	c, acted, err := rec.Observe(t.Context(), eventOf(startedBy))
	if err != nil || !acted || c.Action != dispatch.ActionCrashed {
		t.Fatalf("Observe = %+v, %v, %v; want flow run %s crashed", c, acted, err, res.FlowRunID)
	}
	run, err := api.ReadFlowRun(t.Context(), res.FlowRunID)
	if err != nil {
		t.Fatal(err)
	}
	if run.State.Type != prefect.StateCrashed || run.State.Message == nil ||
		!strings.Contains(*run.State.Message, "137") || !strings.Contains(*run.State.Message, "OutOfMemoryError") {
		t.Errorf("flow run %s is %s %v; want CRASHED explaining exit 137 and the OOM", res.FlowRunID, run.State.Type, run.State.Message)
	}
	if run.InfrastructurePID == nil || *run.InfrastructurePID != res.InfrastructureID {
		t.Errorf("infrastructure_pid changed to %v", run.InfrastructurePID)
	}
}
