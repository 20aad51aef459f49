package ecs

import (
	"encoding/json"
	"errors"
	"fmt"
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

func TestStaleCacheErrors(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		code, msg      string
		subnets, tdefs bool
	}{
		{"InvalidParameterException", "Error retrieving subnet information for [subnet-1]: The subnet ID 'subnet-1' does not exist", true, false},
		{"InvalidSubnetID.NotFound", "The subnet ID 'subnet-1' does not exist", true, false},
		{"ClientException", "TaskDefinition is inactive", false, true},
		{"ClientException", "Unable to describe task definition.", false, true},
		{"InvalidParameterException", "TaskDefinition not found.", false, true},
		{"InvalidParameterException", "Task definition does not support launch_type FARGATE.", false, false},
		{"ClusterNotFoundException", "Cluster not found.", false, false},
		{"AccessDeniedException", "not authorized to perform: ec2:DescribeSubnets", false, false},
		{"ThrottlingException", "Rate exceeded", false, false},
	} {
		err := error(&smithy.GenericAPIError{Code: tc.code, Message: tc.msg})
		if got := staleSubnets(err); got != tc.subnets {
			t.Errorf("staleSubnets(%s: %s) = %v, want %v", tc.code, tc.msg, got, tc.subnets)
		}
		if got := staleTaskDefinition(err); got != tc.tdefs {
			t.Errorf("staleTaskDefinition(%s: %s) = %v, want %v", tc.code, tc.msg, got, tc.tdefs)
		}
	}
	if staleSubnets(errors.New("subnet")) || staleTaskDefinition(errors.New("task definition")) {
		t.Error("an error without an AWS error code counts as stale")
	}
}

func TestHasRevision(t *testing.T) {
	t.Parallel()
	for ref, want := range map[string]bool{
		"arn:aws:ecs:us-east-1:123456789012:task-definition/flows:3": true,
		"flows:12": true,
		"arn:aws:ecs:us-east-1:123456789012:task-definition/flows": false,
		"flows":   false,
		"flows:":  false,
		"flows:x": false,
	} {
		if got := hasRevision(ref); got != want {
			t.Errorf("hasRevision(%q) = %v, want %v", ref, got, want)
		}
	}
}

func TestCredentialIdentity(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		block map[string]any
		want  string
	}{
		{nil, ""},
		{map[string]any{"region_name": "eu-west-1"}, ""},
		{map[string]any{"aws_access_key_id": "AKIA1", "aws_secret_access_key": "s"}, "key:AKIA1"},
		{map[string]any{"aws_access_key_id": "AKIA1"}, ""}, // no secret: the backend's own credentials
		{map[string]any{"profile_name": "prod"}, "profile:prod"},
		{map[string]any{"aws_access_key_id": "AKIA1", "aws_secret_access_key": "s", "profile_name": "prod"}, "key:AKIA1"},
	} {
		if got := credentialIdentity(tc.block); got != tc.want {
			t.Errorf("credentialIdentity(%v) = %q, want %q", tc.block, got, tc.want)
		}
	}
}

// TestAttemptMemory: what a Backend remembers of the attempts it starts.
func TestAttemptMemory(t *testing.T) {
	t.Parallel()
	now := time.Date(2026, 12, 1, 0, 0, 0, 0, time.UTC)
	b := &Backend{attempts: map[attemptKey]*attemptMemory{}, now: func() time.Time { return now }}
	k := attemptKey{region: "us-east-1", cluster: "c", token: "run-1-0123abcd"}

	pid, wait, lookup, end := b.beginAttempt(k)
	if pid != "" || wait != nil || lookup || end == nil {
		t.Fatalf("first Start of an attempt: pid %q, wait %v, lookup %v; want to start it without a lookup", pid, wait, lookup)
	}
	if _, wait2, _, end2 := b.beginAttempt(k); wait2 == nil || end2 != nil {
		t.Fatal("a concurrent Start of the attempt does not wait for the first")
	} else {
		end("", false) // failed before RunTask: nothing to remember
		<-wait2
	}
	if len(b.attempts) != 0 {
		t.Errorf("a Start that sent no RunTask left %d attempts remembered", len(b.attempts))
	}

	_, _, _, end = b.beginAttempt(k)
	end("", true) // RunTask went unanswered
	if _, _, lookup, end = b.beginAttempt(k); !lookup {
		t.Error("a Start after an unanswered RunTask does not look the task up")
	}
	end("c::arn:aws:ecs:us-east-1:1:task/c/1", true)
	if pid, _, _, end = b.beginAttempt(k); pid != "c::arn:aws:ecs:us-east-1:1:task/c/1" || end != nil {
		t.Errorf("a Start of a started attempt: pid %q; want the remembered id and no start", pid)
	}
	other := k
	other.cluster = "d"
	if pid, _, _, end = b.beginAttempt(other); pid != "" || end == nil {
		t.Error("the attempt's token in another cluster counts as started")
	} else {
		end("", false)
	}

	now = now.Add(attemptTTL)
	if pid, _, _, end = b.beginAttempt(k); pid != "" || end == nil {
		t.Errorf("an attempt started %s ago is still remembered", attemptTTL)
	} else {
		end("", false)
	}

	// At the bound, idle entries make room; a Start under way keeps its own.
	_, _, _, busyEnd := b.beginAttempt(k)
	for i := range maxAttempts + 10 {
		k := attemptKey{token: fmt.Sprint("run-", i)}
		_, _, _, end := b.beginAttempt(k)
		end("pid", false)
	}
	if len(b.attempts) > maxAttempts {
		t.Errorf("%d attempts remembered, want at most %d", len(b.attempts), maxAttempts)
	}
	if m := b.attempts[k]; m == nil || m.busy == nil {
		t.Error("making room dropped the entry of a Start under way")
	}
	busyEnd("", false)
}

// TestGeneratedFamily: a family named after a pool ECS would refuse is made
// one it takes; a valid one stays as Prefect's worker writes it.
func TestGeneratedFamily(t *testing.T) {
	t.Parallel()
	long := "prefect_" + strings.Repeat("p", 300)
	for _, c := range []struct{ in, want string }{
		{"prefect_ecs-pool_3f9c0a7e-1b2c", "prefect_ecs-pool_3f9c0a7e-1b2c"},
		{"prefect_Prod_ECS_id", "prefect_Prod_ECS_id"},
		{"prefect_prod.ecs_id", "prefect_prod-ecs_id"},
		{"prefect_data team / nightly_id", "prefect_data-team-nightly_id"},
		{"prefect_équipe_id", "prefect_-quipe_id"},
		{long, long[:255]},
	} {
		if got := generatedFamily(c.in); got != c.want {
			t.Errorf("generatedFamily(%q) = %q, want %q", c.in, got, c.want)
		}
	}
}

// TestFamilyFromPoolName: the family pushpool generates for a pool whose
// name ECS would refuse in a family registers; one the template sets is
// left as the user wrote it.
func TestFamilyFromPoolName(t *testing.T) {
	t.Parallel()
	for _, c := range []struct {
		name, templateFamily, want string
	}{
		{"generated", "", "prefect_prod-ecs-nightly_d1"},
		{"from the template", "my.family", "my.family"},
	} {
		t.Run(c.name, func(t *testing.T) {
			cfg := &jobConfig{taskDefinition: map[string]any{}, taskRunRequest: map[string]any{"launchType": "EC2"}}
			if c.templateFamily != "" {
				cfg.taskDefinition["family"] = c.templateFamily
			}
			td, err := prepareTaskDefinition(cfg, runInfo{workPool: "prod.ecs nightly", deploymentID: "d1", region: "us-east-1", defaultImage: "img"})
			if err != nil {
				t.Fatal(err)
			}
			if got := td["family"]; got != c.want {
				t.Errorf("family = %v, want %s", got, c.want)
			}
		})
	}
}
