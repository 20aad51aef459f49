package ecs

import (
	"encoding/json"
	"fmt"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ecs/types"

	"github.com/pushpool/pushpool/dispatch"
)

// taskStateChange is the envelope of an EventBridge "ECS Task State Change"
// event; its detail has the shape of a DescribeTasks task.
type taskStateChange struct {
	DetailType string          `json:"detail-type"`
	Source     string          `json:"source"`
	Detail     json.RawMessage `json:"detail"`
}

// ParseTaskStateChange decodes an ECS "Task State Change" event, as
// EventBridge delivers it to a Lambda target or as the body of an SQS
// message, into the infrastructure event of the flow run whose task it is,
// for dispatch.Reconciler.Observe. The task's startedBy, the attempt's
// Token, names the flow run and the attempt (Status.Attempt), so that the
// reconciler ignores events about an earlier attempt's task; a task started
// before attempts (startedBy the bare flow run id) gives no attempt. ok is
// false, with no error, for other events and for tasks pushpool did not
// start. The infrastructure id uses the cluster ARN; SameInfrastructure
// matches it with an id recorded with the cluster's name.
func ParseTaskStateChange(data []byte) (ev dispatch.InfraEvent, ok bool, err error) {
	var env taskStateChange
	if err := json.Unmarshal(data, &env); err != nil {
		return ev, false, fmt.Errorf("decode an ECS task state change event: %w", err)
	}
	if env.Source != "aws.ecs" || env.DetailType != "ECS Task State Change" {
		return ev, false, nil
	}
	var task types.Task
	if err := json.Unmarshal(env.Detail, &task); err != nil {
		return ev, false, fmt.Errorf("decode the detail of an ECS task state change event: %w", err)
	}
	run, _, ours := parseStartedBy(aws.ToString(task.StartedBy))
	if !ours {
		return ev, false, nil
	}
	taskARN := aws.ToString(task.TaskArn)
	if _, err := ParseID("x::" + taskARN); err != nil || aws.ToString(task.ClusterArn) == "" {
		return ev, false, fmt.Errorf("ECS task state change event of flow run %s has no valid taskArn/clusterArn (%q)", run, taskARN)
	}
	return dispatch.InfraEvent{
		FlowRunID:        run,
		InfrastructureID: formatID("", aws.ToString(task.ClusterArn), taskARN),
		Status:           taskStatus(task),
	}, true, nil
}

// SameInfrastructure reports whether two infrastructure ids name the same
// task, however each spells its cluster (name or ARN).
func (b *Backend) SameInfrastructure(a, c string) bool {
	x, err1 := ParseID(a)
	y, err2 := ParseID(c)
	return err1 == nil && err2 == nil && x.TaskARN == y.TaskARN
}
