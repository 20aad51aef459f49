package ecs

import (
	"encoding/json"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ecs/types"
	"github.com/aws/smithy-go"

	"github.com/pushpool/pushpool/dispatch"
)

// TestSlugifyTag compares with python-slugify's output for the worker's
// arguments (checked with the pinned venv).
func TestSlugifyTag(t *testing.T) {
	t.Parallel()
	for in, want := range map[string]string{
		"prefect.io/flow-run-id": "prefect.io/flow-run-id",
		"my label":               "my-label",
		"Müller & Co":            "M-ller-Co",
		"it's":                   "it-s",
		"a--b":                   "a-b",
		"--x--":                  "x",
		"1,000 runs":             "1000-runs",
		"&amp;x":                 "x",
		"ﬁle":                    "file",
		"tab\there":              "tab-here",
		"é":                      "",
	} {
		if got := slugifyTag(in); got != want {
			t.Errorf("slugifyTag(%q) = %q, want %q", in, got, want)
		}
	}
}

func TestParseID(t *testing.T) {
	t.Parallel()
	const arn = "arn:aws:ecs:eu-west-1:123456789012:task/prod/0123abcd"
	for _, tc := range []struct {
		id      string
		want    TaskID
		wantErr bool
	}{
		{id: "prod::" + arn, want: TaskID{Cluster: "prod", TaskARN: arn, Region: "eu-west-1"}},
		{id: "arn:aws:ecs:eu-west-1:123456789012:cluster/prod::" + arn, want: TaskID{Cluster: "arn:aws:ecs:eu-west-1:123456789012:cluster/prod", TaskARN: arn, Region: "eu-west-1"}},
		{id: "default::arn:aws:ecs:us-east-1:1:task/abc", want: TaskID{Cluster: "default", TaskARN: "arn:aws:ecs:us-east-1:1:task/abc", Region: "us-east-1"}},
		{id: "not-an-infrastructure-id", wantErr: true},
		{id: "prod:" + arn, wantErr: true},
		{id: "::" + arn, wantErr: true},
		{id: "prod::arn:aws:ecs:eu-west-1:1:cluster/prod", wantErr: true},
		{id: "prod::arn:aws:ecs:eu-west-1:1:task/", wantErr: true},
		{id: "123:4567", wantErr: true},
	} {
		got, err := ParseID(tc.id)
		if (err != nil) != tc.wantErr || got != tc.want {
			t.Errorf("ParseID(%q) = %+v, %v; want %+v, error %v", tc.id, got, err, tc.want, tc.wantErr)
		}
	}
	if got := formatID("", "arn:aws:ecs:us-east-1:1:cluster/default", "arn:t"); got != "arn:aws:ecs:us-east-1:1:cluster/default::arn:t" {
		t.Errorf("formatID without a configured cluster = %q", got)
	}
}

// TestContentHash checks that the normalisation ignores what ECS adds or
// reorders and notices what changes the definition.
func TestContentHash(t *testing.T) {
	t.Parallel()
	base := func() map[string]any {
		return map[string]any{
			"family": "f", "cpu": "1024", "memory": "2048", "networkMode": "awsvpc",
			"containerDefinitions": []any{map[string]any{"name": "prefect", "image": "img",
				"environment": []any{map[string]any{"name": "B", "value": "2"}, map[string]any{"name": "A", "value": "1"}},
				"secrets":     []any{map[string]any{"name": "Y", "valueFrom": "y"}, map[string]any{"name": "X", "valueFrom": "x"}}}},
		}
	}
	h := contentHash(base())
	same := map[string]func(map[string]any){
		"server fields": func(m map[string]any) {
			m["revision"], m["status"], m["taskDefinitionArn"], m["registeredAt"] = 3, "ACTIVE", "arn", "2026-01-01"
			m["compatibilities"] = []any{"EC2", "FARGATE"}
			m["tags"] = []any{map[string]any{"key": ContentHashTag, "value": "x"}}
		},
		"essential default": func(m map[string]any) { asMap(asList(m["containerDefinitions"])[0])["essential"] = true },
		"empty defaults": func(m map[string]any) {
			c := asMap(asList(m["containerDefinitions"])[0])
			c["cpu"], c["portMappings"], c["mountPoints"], c["volumesFrom"] = json.Number("0"), []any{}, []any{}, []any{}
			m["volumes"], m["placementConstraints"] = []any{}, []any{}
		},
		"env order": func(m map[string]any) {
			c := asMap(asList(m["containerDefinitions"])[0])
			c["environment"] = []any{map[string]any{"name": "A", "value": "1"}, map[string]any{"name": "B", "value": "2"}}
		},
	}
	for name, mutate := range same {
		m := base()
		mutate(m)
		if got := contentHash(m); got != h {
			t.Errorf("%s: hash changed", name)
		}
	}
	different := map[string]func(map[string]any){
		"image":        func(m map[string]any) { asMap(asList(m["containerDefinitions"])[0])["image"] = "other" },
		"memory":       func(m map[string]any) { m["memory"] = "4096" },
		"network mode": func(m map[string]any) { delete(m, "networkMode") },
		"not essential": func(m map[string]any) {
			asMap(asList(m["containerDefinitions"])[0])["essential"] = false
		},
	}
	for name, mutate := range different {
		m := base()
		mutate(m)
		if got := contentHash(m); got == h {
			t.Errorf("%s: hash unchanged", name)
		}
	}
}

func TestTaskStatus(t *testing.T) {
	t.Parallel()
	at := time.Date(2026, 11, 25, 10, 0, 0, 0, time.UTC)
	one := int32(1)
	for _, tc := range []struct {
		name string
		task types.Task
		want dispatch.Status
	}{
		{"provisioning", types.Task{LastStatus: aws.String("PROVISIONING")}, dispatch.Status{State: dispatch.StatePending}},
		{"running", types.Task{LastStatus: aws.String("RUNNING")}, dispatch.Status{State: dispatch.StateRunning}},
		{"stopping", types.Task{LastStatus: aws.String("DEPROVISIONING")}, dispatch.Status{State: dispatch.StateRunning}},
		{"exited", types.Task{LastStatus: aws.String("STOPPED"), StopCode: types.TaskStopCodeEssentialContainerExited,
			StoppedReason: aws.String("Essential container in task exited"), StoppedAt: &at,
			Containers: []types.Container{{Name: aws.String("sidecar")}, {Name: aws.String("prefect"), ExitCode: &one, Reason: aws.String("OutOfMemoryError")}}},
			dispatch.Status{State: dispatch.StateExited, ExitCode: 1, ExitedAt: at,
				Reason: "EssentialContainerExited: Essential container in task exited: container prefect: OutOfMemoryError"}},
		{"failed to start", types.Task{LastStatus: aws.String("STOPPED"), StopCode: types.TaskStopCodeTaskFailedToStart,
			StoppedReason: aws.String("CannotPullContainerError: pull image manifest has been retried 5 time(s)")},
			dispatch.Status{State: dispatch.StateExited, ExitCode: -1,
				Reason: "TaskFailedToStart: CannotPullContainerError: pull image manifest has been retried 5 time(s): the task failed to start and has no containers"}},
		{"no exit code", types.Task{LastStatus: aws.String("STOPPED"), Containers: []types.Container{{Name: aws.String("prefect")}}},
			dispatch.Status{State: dispatch.StateExited, ExitCode: -1}},
		{"started for an attempt", types.Task{LastStatus: aws.String("RUNNING"), StartedBy: aws.String("7c2d9a4e-5b1f-4e8a-9d3c-2f6b8a1e0c57-3f9c0a7e")},
			dispatch.Status{State: dispatch.StateRunning, Attempt: "3f9c0a7e"}},
		{"an attempt's task exited", types.Task{LastStatus: aws.String("STOPPED"), StartedBy: aws.String("7c2d9a4e-5b1f-4e8a-9d3c-2f6b8a1e0c57-3f9c0a7e")},
			dispatch.Status{State: dispatch.StateExited, ExitCode: -1, Attempt: "3f9c0a7e"}},
		{"started before attempts", types.Task{LastStatus: aws.String("RUNNING"), StartedBy: aws.String("7c2d9a4e-5b1f-4e8a-9d3c-2f6b8a1e0c57")},
			dispatch.Status{State: dispatch.StateRunning}},
		{"started by a service", types.Task{LastStatus: aws.String("RUNNING"), StartedBy: aws.String("ecs-svc/1234567890123456789")},
			dispatch.Status{State: dispatch.StateRunning}},
	} {
		if got := taskStatus(tc.task); got != tc.want {
			t.Errorf("%s: taskStatus = %+v, want %+v", tc.name, got, tc.want)
		}
	}
}

func TestClassify(t *testing.T) {
	t.Parallel()
	call := apiCall{action: "ecs:RunTask", object: "cluster c", cluster: "c"}
	for _, tc := range []struct {
		code, msg string
		retry     bool
		words     []string
	}{
		{"ThrottlingException", "Rate exceeded", true, []string{"throttled", "ecs:RunTask"}},
		{"AccessDeniedException", "not authorized to perform: ecs:RunTask", false, []string{"grant ecs:RunTask"}},
		{"AccessDeniedException", "not authorized to perform: iam:PassRole on resource role/x", false, []string{"grant iam:PassRole"}},
		{"ClusterNotFoundException", "Cluster not found.", false, []string{"create cluster c", "cluster job variable"}},
		{"InvalidParameterException", "Invalid subnet", false, []string{"Invalid subnet"}},
		{"ClientException", "Too many concurrent attempts to create a new revision", true, nil},
		{"LimitExceededException", "limit", true, []string{"quota"}},
		{"ServerException", "boom", true, nil},
	} {
		err := classify(&smithy.GenericAPIError{Code: tc.code, Message: tc.msg}, "run-1", call)
		if errors.Is(err, dispatch.ErrRetryable) != tc.retry {
			t.Errorf("%s: retryable = %v, want %v: %v", tc.code, !tc.retry, tc.retry, err)
		}
		for _, w := range append(tc.words, "run-1") {
			if !contains(err.Error(), w) {
				t.Errorf("%s: %q does not contain %q", tc.code, err, w)
			}
		}
	}
	for reason, retry := range map[string]bool{
		"RESOURCE:MEMORY": true, "Capacity is unavailable at this time": true,
		"You've reached the limit on the number of tasks you can run concurrently": true, "MISSING": false,
	} {
		if got := errors.Is(runTaskFailure("run-1", "c", reason, ""), dispatch.ErrRetryable); got != retry {
			t.Errorf("RunTask failure %q: retryable = %v, want %v", reason, got, retry)
		}
	}
}

func contains(s, sub string) bool { return strings.Contains(s, sub) }
