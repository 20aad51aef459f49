package ecs

import (
	"context"
	"encoding/json"
	"errors"
	"maps"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
	ec2types "github.com/aws/aws-sdk-go-v2/service/ec2/types"
	"github.com/aws/aws-sdk-go-v2/service/ecs"

	"github.com/pushpool/pushpool/dispatch"
	"github.com/pushpool/pushpool/internal/localstack"
)

// motoEC2 is a plain EC2 client on moto, for test setup.
func motoEC2() *ec2.Client {
	return ec2.NewFromConfig(motoAWS(), func(o *ec2.Options) { o.BaseEndpoint = aws.String(moto.URL) })
}

// createVPC creates a VPC with n subnets in moto and returns their ids.
func createVPC(t *testing.T, cidr string, n int) (string, []string) {
	t.Helper()
	vpc, err := motoEC2().CreateVpc(t.Context(), &ec2.CreateVpcInput{CidrBlock: aws.String(cidr + ".0.0/16")})
	if err != nil {
		t.Fatal(err)
	}
	id := aws.ToString(vpc.Vpc.VpcId)
	// moto's ECS tasks need DNS hostnames in their VPC.
	if _, err := motoEC2().ModifyVpcAttribute(t.Context(), &ec2.ModifyVpcAttributeInput{VpcId: aws.String(id), EnableDnsHostnames: &ec2types.AttributeBooleanValue{Value: aws.Bool(true)}}); err != nil {
		t.Fatal(err)
	}
	var subnets []string
	for i := range n {
		s, err := motoEC2().CreateSubnet(t.Context(), &ec2.CreateSubnetInput{VpcId: aws.String(id), CidrBlock: aws.String(cidr + "." + string(rune('1'+i)) + ".0/24")})
		if err != nil {
			t.Fatal(err)
		}
		subnets = append(subnets, aws.ToString(s.Subnet.SubnetId))
	}
	return id, subnets
}

// lastRunTask decodes the last RunTask request sent through c.
func lastRunTask(t *testing.T, c *countingClient) ecs.RunTaskInput {
	t.Helper()
	c.mu.Lock()
	defer c.mu.Unlock()
	if len(c.runTasks) == 0 {
		t.Fatal("no RunTask was sent")
	}
	var in ecs.RunTaskInput
	if err := json.Unmarshal(c.runTasks[len(c.runTasks)-1], &in); err != nil {
		t.Fatal(err)
	}
	return in
}

// fakeClock is a Backend's clock in tests.
type fakeClock struct {
	mu  sync.Mutex
	now time.Time
}

func (c *fakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *fakeClock) Advance(d time.Duration) {
	c.mu.Lock()
	c.now = c.now.Add(d)
	c.mu.Unlock()
}

// TestBackend_Start_subnetsRemembered: the default VPC's subnets are looked
// up once per Config.SubnetTTL, per region and credentials.
func TestBackend_Start_subnetsRemembered(t *testing.T) {
	t.Parallel()
	cluster := createCluster(t)
	counter := &countingClient{}
	b := newCountingBackend(t, counter)
	clock := &fakeClock{now: time.Now()}
	b.now = clock.Now
	lookups := func() int { c := counter.counts(); return c["DescribeVpcs"] + c["DescribeSubnets"] }
	for _, step := range []struct {
		advance time.Duration
		creds   map[string]any
		want    int
	}{
		{0, nil, 2},
		{9 * time.Minute, nil, 0},
		{2 * time.Minute, nil, 2}, // 11 minutes after the lookup
		{0, map[string]any{"aws_access_key_id": "other", "aws_secret_access_key": "test"}, 2},
		{0, map[string]any{"aws_access_key_id": "other", "aws_secret_access_key": "test"}, 0},
		{0, nil, 0},
	} {
		clock.Advance(step.advance)
		counter.reset()
		vars := map[string]any{"cluster": cluster}
		if step.creds != nil {
			vars["aws_credentials"] = step.creds
		}
		if _, err := b.Start(t.Context(), newJob(t, vars)); err != nil {
			t.Fatal(err)
		}
		if got := lookups(); got != step.want {
			t.Errorf("after %s (credentials %v): %d EC2 calls, want %d", step.advance, step.creds, got, step.want)
		}
	}
}

// TestBackend_Start_deletedSubnet: a RunTask that ECS refuses for a
// remembered subnet that no longer exists forgets the VPC's subnets, looks
// them up again and runs the task with the ones left.
func TestBackend_Start_deletedSubnet(t *testing.T) {
	t.Parallel()
	cluster := createCluster(t)
	vpc, _ := createVPC(t, "10.77", 2)
	vars := map[string]any{"cluster": cluster, "vpc_id": vpc}
	counter := &countingClient{}
	b := newCountingBackend(t, counter)
	if _, err := b.Start(t.Context(), newJob(t, vars)); err != nil {
		t.Fatal(err)
	}
	used := lastRunTask(t, counter).NetworkConfiguration.AwsvpcConfiguration.Subnets
	if len(used) != 2 {
		t.Fatalf("RunTask with subnets %v, want the VPC's two", used)
	}
	if _, err := motoEC2().DeleteSubnet(t.Context(), &ec2.DeleteSubnetInput{SubnetId: aws.String(used[0])}); err != nil {
		t.Fatal(err)
	}
	counter.reset()
	job := newJob(t, vars)
	id, err := b.Start(t.Context(), job)
	if err != nil {
		t.Fatalf("Start after a remembered subnet was deleted: %v", err)
	}
	want := map[string]int{"RunTask": 2, "DescribeVpcs": 1, "DescribeSubnets": 1}
	if got := counter.counts(); !maps.Equal(got, want) {
		t.Errorf("Start after a remembered subnet was deleted made the AWS calls %v, want %v", got, want)
	}
	if got := lastRunTask(t, counter).NetworkConfiguration.AwsvpcConfiguration.Subnets; !slices.Equal(got, used[1:]) {
		t.Errorf("the repeated RunTask ran with subnets %v, want %v", got, used[1:])
	}
	if arns := tasksOfFlowRun(t, job.FlowRunID); len(arns) != 1 || arns[0] != taskARN(t, id) {
		t.Errorf("moto holds tasks %v for flow run %s, want only %s", arns, job.FlowRunID, taskARN(t, id))
	}
}

// TestBackend_Start_staleSubnetsOnlyRetriedWhenRemembered: ECS refusing
// subnets that were just looked up is the job's error: Start returns it
// after one RunTask. It injects faults, so it does not run in parallel.
func TestBackend_Start_staleSubnetsOnlyRetriedWhenRemembered(t *testing.T) {
	cluster := createCluster(t)
	counter := &countingClient{}
	b := newCountingBackend(t, counter)
	if err := moto.InjectFault(t.Context(), localstack.MotoFault{Action: "RunTask", Times: 1, Type: "InvalidParameterException",
		Message: "Error retrieving subnet information for [subnet-0123]: The subnet ID 'subnet-0123' does not exist"}); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { moto.ClearFaults(context.Background()) })
	if _, err := b.Start(t.Context(), newJob(t, map[string]any{"cluster": cluster})); err == nil || errors.Is(err, dispatch.ErrRetryable) {
		t.Errorf("Start refused for subnets just looked up: %v, want a permanent error", err)
	}
	if n := counter.counts()["RunTask"]; n != 1 {
		t.Errorf("RunTask sent %d times, want once", n)
	}
}

// TestBackend_Start_deletedRevision: a RunTask that ECS refuses for the
// remembered revision (deregistered and deleted behind the Backend's back)
// forgets it, and Start registers a new revision and runs the task.
func TestBackend_Start_deletedRevision(t *testing.T) {
	t.Parallel()
	cluster := createCluster(t)
	vars := map[string]any{"cluster": cluster, "family": "deleted-" + cluster}
	counter := &countingClient{}
	b := newCountingBackend(t, counter)
	first, err := b.Start(t.Context(), newJob(t, vars))
	if err != nil {
		t.Fatal(err)
	}
	old := taskDefinitionOf(t, first)
	if _, err := motoECS().DeregisterTaskDefinition(t.Context(), &ecs.DeregisterTaskDefinitionInput{TaskDefinition: aws.String(old)}); err != nil {
		t.Fatal(err)
	}
	if _, err := motoECS().DeleteTaskDefinitions(t.Context(), &ecs.DeleteTaskDefinitionsInput{TaskDefinitions: []string{old}}); err != nil {
		t.Fatal(err)
	}
	counter.reset()
	id, err := b.Start(t.Context(), newJob(t, vars))
	if err != nil {
		t.Fatalf("Start after the remembered revision was deleted: %v", err)
	}
	// moto numbers the new revision as the deleted one; ECS would not.
	desc, err := motoECS().DescribeTaskDefinition(t.Context(), &ecs.DescribeTaskDefinitionInput{TaskDefinition: aws.String(taskDefinitionOf(t, id))})
	if err != nil || desc.TaskDefinition.Status != "ACTIVE" {
		t.Errorf("the task ran with task definition %s, which is not ACTIVE: %v", taskDefinitionOf(t, id), err)
	}
	want := map[string]int{"RunTask": 2, "DescribeTaskDefinition": 1, "ListTaskDefinitions": 1, "RegisterTaskDefinition": 1}
	if got := counter.counts(); !maps.Equal(got, want) {
		t.Errorf("Start after the remembered revision was deleted made the AWS calls %v, want %v", got, want)
	}
	counter.reset()
	if _, err := b.Start(t.Context(), newJob(t, vars)); err != nil {
		t.Fatal(err)
	}
	if got, want := counter.counts(), map[string]int{"RunTask": 1}; !maps.Equal(got, want) {
		t.Errorf("the next Start made the AWS calls %v, want %v", got, want)
	}
}

// TestBackend_Start_taskDefinitionARN: a job naming its task definition by
// revision ARN has it described once per Backend.
func TestBackend_Start_taskDefinitionARN(t *testing.T) {
	t.Parallel()
	cluster := createCluster(t)
	counter := &countingClient{}
	b := newCountingBackend(t, counter)
	first, err := b.Start(t.Context(), newJob(t, map[string]any{"cluster": cluster, "family": "arn-" + cluster}))
	if err != nil {
		t.Fatal(err)
	}
	vars := map[string]any{"cluster": cluster, "task_definition_arn": taskDefinitionOf(t, first)}
	for i, want := range []map[string]int{{"DescribeTaskDefinition": 1, "RunTask": 1}, {"RunTask": 1}} {
		counter.reset()
		id, err := b.Start(t.Context(), newJob(t, vars))
		if err != nil {
			t.Fatal(err)
		}
		if got := taskDefinitionOf(t, id); got != vars["task_definition_arn"] {
			t.Errorf("Start %d ran task definition %s, want %s", i, got, vars["task_definition_arn"])
		}
		if got := counter.counts(); !maps.Equal(got, want) {
			t.Errorf("Start %d with a task_definition_arn made the AWS calls %v, want %v", i, got, want)
		}
	}
}
