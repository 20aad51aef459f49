package ecs

import (
	"context"
	"errors"
	"fmt"
	"regexp"
	"strings"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ecs"
	"github.com/aws/aws-sdk-go-v2/service/ecs/types"
	"github.com/aws/smithy-go"

	"github.com/pushpool/pushpool/dispatch"
)

// StopReason is the reason pushpool gives ECS when it stops a task.
const StopReason = "Stopped by pushpool"

// TaskID is a parsed infrastructure id "<cluster>::<task ARN>".
type TaskID struct {
	// Cluster is the cluster name or ARN, as the worker recorded it.
	Cluster string
	// TaskARN is the task's ARN.
	TaskARN string
	// Region is the region in the task ARN.
	Region string
}

// formatID is the worker's infrastructure_pid: the configured cluster, else
// the task's cluster ARN, "::", the task ARN.
func formatID(configured, clusterARN, taskARN string) string {
	cluster := configured
	if cluster == "" {
		cluster = clusterARN
	}
	return cluster + "::" + taskARN
}

// ParseID parses an infrastructure id of the ECS worker,
// "<cluster>::<task ARN>", where the task ARN is
// arn:<partition>:ecs:<region>:<account>:task/[<cluster>/]<id>.
func ParseID(id string) (TaskID, error) {
	cluster, arn, ok := strings.Cut(id, "::")
	if !ok || cluster == "" {
		return TaskID{}, fmt.Errorf("infrastructure id %q is not an ECS task id <cluster>::<task ARN>", id)
	}
	parts := strings.SplitN(arn, ":", 6)
	if len(parts) != 6 || parts[0] != "arn" || parts[2] != "ecs" || parts[3] == "" || !strings.HasPrefix(parts[5], "task/") || len(parts[5]) == len("task/") {
		return TaskID{}, fmt.Errorf("infrastructure id %q does not end in an ECS task ARN (arn:aws:ecs:<region>:<account>:task/...)", id)
	}
	return TaskID{Cluster: cluster, TaskARN: arn, Region: parts[3]}, nil
}

// Status describes the task with the backend's own credentials in the
// region of its ARN. A task ECS no longer knows (it forgets stopped tasks
// after about an hour), or whose cluster is gone, is StateNotFound.
func (b *Backend) Status(ctx context.Context, infrastructureID string) (dispatch.Status, error) {
	id, err := ParseID(infrastructureID)
	if err != nil {
		return dispatch.Status{}, err
	}
	task, found, err := b.describe(ctx, id)
	if err != nil || !found {
		if err == nil {
			return dispatch.Status{State: dispatch.StateNotFound, Reason: fmt.Sprintf("ECS no longer knows task %s in cluster %s", id.TaskARN, id.Cluster)}, nil
		}
		return dispatch.Status{}, err
	}
	return taskStatus(task), nil
}

// describe returns the task, or found=false when ECS does not know it.
func (b *Backend) describe(ctx context.Context, id TaskID) (types.Task, bool, error) {
	tasks, err := b.describeTasks(ctx, id.Region, id.Cluster, []string{id.TaskARN})
	if err != nil {
		return types.Task{}, false, fmt.Errorf("describe ECS task %s in cluster %s: %w", id.TaskARN, id.Cluster, err)
	}
	t, ok := tasks[taskKey(id.TaskARN)]
	return t, ok, nil
}

// describeTasks describes up to describeBatch tasks of a cluster, by task
// id (taskKey); tasks ECS does not know, or whose cluster is gone, are
// missing from the answer.
func (b *Backend) describeTasks(ctx context.Context, region, cluster string, arns []string) (map[string]types.Task, error) {
	resp, err := b.ownECS(region).DescribeTasks(ctx, &ecs.DescribeTasksInput{Cluster: aws.String(cluster), Tasks: arns})
	if err != nil {
		var api smithy.APIError
		if errors.As(err, &api) && api.ErrorCode() == "ClusterNotFoundException" {
			return nil, nil
		}
		return nil, classify(err, "", apiCall{action: "ecs:DescribeTasks", object: "cluster " + cluster, cluster: cluster})
	}
	found := make(map[string]types.Task, len(resp.Tasks))
	for _, t := range resp.Tasks {
		found[taskKey(aws.ToString(t.TaskArn))] = t
	}
	return found, nil
}

// taskStatus maps an ECS task to a dispatch.Status, with the attempt its
// startedBy names. A STOPPED task's exit code is its orchestration
// container's (-1 when it has none, as for a task that failed to start);
// its reason joins stopCode, stoppedReason and the container's reason.
func taskStatus(t types.Task) dispatch.Status {
	st := taskState(t)
	_, st.Attempt, _ = parseStartedBy(aws.ToString(t.StartedBy))
	return st
}

// flowRunIDPattern matches a flow run id as Prefect makes them.
var flowRunIDPattern = regexp.MustCompile(`^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$`)

// parseStartedBy reads a task's startedBy as pushpool sets it: an attempt's
// Token "<flow run id>-<key>", or, for a task started before attempts, the
// bare flow run id (key ""). ok is false for tasks pushpool did not start
// (a service's "ecs-svc/...", a worker's task without startedBy).
func parseStartedBy(startedBy string) (flowRunID, key string, ok bool) {
	if run, key, ok := dispatch.ParseToken(startedBy); ok && flowRunIDPattern.MatchString(run) {
		return run, key, true
	}
	if flowRunIDPattern.MatchString(startedBy) {
		return startedBy, "", true
	}
	return "", "", false
}

// taskState is the state, exit code and reason of a task.
func taskState(t types.Task) dispatch.Status {
	switch aws.ToString(t.LastStatus) {
	case "PROVISIONING", "PENDING", "ACTIVATING":
		return dispatch.Status{State: dispatch.StatePending}
	case "STOPPED", "DELETED":
	default: // RUNNING, and DEACTIVATING..DEPROVISIONING: not exited yet
		return dispatch.Status{State: dispatch.StateRunning}
	}
	st := dispatch.Status{State: dispatch.StateExited, ExitCode: -1}
	var reasons []string
	if t.StopCode != "" {
		reasons = append(reasons, string(t.StopCode))
	}
	if r := aws.ToString(t.StoppedReason); r != "" {
		reasons = append(reasons, r)
	}
	if c := orchestrationContainer(t); c != nil {
		if c.ExitCode != nil {
			st.ExitCode = int(*c.ExitCode)
		}
		if r := aws.ToString(c.Reason); r != "" {
			reasons = append(reasons, "container "+aws.ToString(c.Name)+": "+r)
		}
	} else if t.StopCode == types.TaskStopCodeTaskFailedToStart {
		reasons = append(reasons, "the task failed to start and has no containers")
	}
	st.Reason = strings.Join(reasons, ": ")
	switch {
	case t.StoppedAt != nil:
		st.ExitedAt = *t.StoppedAt
	case t.ExecutionStoppedAt != nil:
		st.ExitedAt = *t.ExecutionStoppedAt
	}
	return st
}

// orchestrationContainer is the container running the flow: the one whose
// override sets the command (the worker puts the flow's command there),
// else "prefect", else the first.
func orchestrationContainer(t types.Task) *types.Container {
	if len(t.Containers) == 0 {
		return nil
	}
	byName := func(name string) *types.Container {
		for i := range t.Containers {
			if aws.ToString(t.Containers[i].Name) == name {
				return &t.Containers[i]
			}
		}
		return nil
	}
	if t.Overrides != nil {
		for _, o := range t.Overrides.ContainerOverrides {
			if len(o.Command) > 0 {
				if c := byName(aws.ToString(o.Name)); c != nil {
					return c
				}
			}
		}
	}
	if c := byName(defaultContainerName); c != nil {
		return c
	}
	return &t.Containers[0]
}

// Stop stops the task with the reason "Stopped by pushpool". A task that is
// unknown or already stopped counts as stopped.
func (b *Backend) Stop(ctx context.Context, infrastructureID string) error {
	id, err := ParseID(infrastructureID)
	if err != nil {
		return err
	}
	task, found, err := b.describe(ctx, id)
	if err != nil {
		return err
	}
	if !found || aws.ToString(task.LastStatus) == "STOPPED" {
		return nil
	}
	_, err = b.ownECS(id.Region).StopTask(ctx, &ecs.StopTaskInput{Cluster: aws.String(id.Cluster), Task: aws.String(id.TaskARN), Reason: aws.String(StopReason)})
	if err != nil {
		var api smithy.APIError
		if errors.As(err, &api) && (api.ErrorCode() == "ClusterNotFoundException" ||
			(api.ErrorCode() == "InvalidParameterException" && strings.Contains(strings.ToLower(api.ErrorMessage()), "not found"))) {
			return nil
		}
		return fmt.Errorf("stop ECS task %s in cluster %s: %w", id.TaskARN, id.Cluster, classify(err, "", apiCall{action: "ecs:StopTask", object: "cluster " + id.Cluster, cluster: id.Cluster}))
	}
	return nil
}
