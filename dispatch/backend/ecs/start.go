package ecs

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"reflect"
	"slices"
	"strconv"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
	ec2types "github.com/aws/aws-sdk-go-v2/service/ec2/types"
	"github.com/aws/aws-sdk-go-v2/service/ecs"
	"github.com/aws/aws-sdk-go-v2/service/ecs/types"

	"github.com/pushpool/pushpool/dispatch"
)

// Start runs the task of job.Attempt, registering (or reusing) its task
// definition. The attempt's Token is the task's startedBy and RunTask's
// clientToken, which ECS remembers per cluster for 24 hours: a repeated or
// concurrent Start of one attempt, in this process or in another, gets the
// task the first one started, while another attempt of the same flow run
// (a Retry, a resume, a reschedule) gets a task of its own. A repeat whose
// request differs from the first (a revision registered in between, a
// changed variable) is refused by ECS with a ConflictException naming the
// first task, which Start returns. Start makes no ListTasks call: Find is
// the lookup. It returns the infrastructure_pid "<cluster>::<task ARN>",
// with the cluster as configured or, when none is, the task's cluster ARN.
func (b *Backend) Start(ctx context.Context, job dispatch.Job) (string, error) {
	log := b.log.With(slog.String("flow_run_id", job.FlowRunID), slog.String("work_pool", job.WorkPool))
	t, err := b.target(ctx, job)
	if err != nil {
		return "", err
	}
	token := job.Attempt.Token()
	run := runInfo{workPool: job.WorkPool, deploymentID: job.DeploymentID, flowID: job.FlowID,
		region: t.awsCfg.Region, defaultImage: b.cfg.DefaultImage}
	var (
		td         map[string]any
		tdARN      = asString(t.c.taskRunRequest["taskDefinition"])
		registered bool
	)
	if tdARN == "" {
		if td, err = prepareTaskDefinition(t.c, run); err != nil {
			return "", fmt.Errorf("flow run %s: prepare the task definition: %w", job.FlowRunID, err)
		}
		if tdARN, registered, err = b.taskDefinition(ctx, t.api, job.FlowRunID, td, t.c.matchLatest); err != nil {
			return "", err
		}
	} else {
		out, err := t.api.DescribeTaskDefinition(ctx, &ecs.DescribeTaskDefinitionInput{TaskDefinition: aws.String(tdARN)})
		if err != nil {
			return "", classify(err, job.FlowRunID, apiCall{action: "ecs:DescribeTaskDefinition", object: "task definition " + tdARN})
		}
		td = apiToMap(out.TaskDefinition)
	}
	if err := validateTaskDefinition(td, t.c); err != nil {
		return "", fmt.Errorf("flow run %s: task definition %s: %w", job.FlowRunID, tdARN, err)
	}
	req, err := prepareRunTaskRequest(ctx, t.c, td, tdARN, registered, &vpcSubnets{api: b.ec2Client(t.awsCfg)})
	if err != nil {
		return "", fmt.Errorf("flow run %s: prepare the RunTask request: %w", job.FlowRunID, err)
	}
	req["startedBy"] = token
	req["clientToken"] = token
	req["tags"] = withTag(req["tags"], dispatch.LabelAttempt, token)
	var in ecs.RunTaskInput
	if err := decodeStrict(req, &in); err != nil {
		return "", fmt.Errorf("flow run %s: the task_run_request of the job configuration is not a valid RunTask request: %w; fix the pool's base job template", job.FlowRunID, err)
	}
	where := "cluster " + orDefault(t.cluster)
	call := apiCall{action: "ecs:RunTask", object: where + " with task definition " + tdARN, cluster: t.cluster}
	// The SDK retries a throttled or failed RunTask with the same input, so
	// with the same clientToken: a retry of a call that did start the task
	// gets that task back.
	out, err := t.api.RunTask(ctx, &in)
	var conflict *types.ConflictException
	if errors.As(err, &conflict) {
		pid, found, ferr := b.conflicting(ctx, t, job, conflict.ResourceIds)
		if ferr != nil || !found {
			return "", errors.Join(classify(err, job.FlowRunID, call), ferr)
		}
		log.InfoContext(ctx, "found the task an earlier start of the attempt started", slog.String("infrastructure_id", pid), slog.String("attempt", job.Attempt.Key()))
		return pid, nil
	}
	if err != nil {
		return "", classify(err, job.FlowRunID, call)
	}
	if len(out.Failures) > 0 {
		f := out.Failures[0]
		return "", runTaskFailure(job.FlowRunID, orDefault(t.cluster), aws.ToString(f.Reason), aws.ToString(f.Detail))
	}
	if len(out.Tasks) == 0 {
		return "", retryable("flow run %s: RunTask in %s returned neither a task nor a failure; it will be retried", job.FlowRunID, where)
	}
	task := out.Tasks[0]
	pid := formatID(t.c.cluster, aws.ToString(task.ClusterArn), aws.ToString(task.TaskArn))
	log.InfoContext(ctx, "started ECS task", slog.String("infrastructure_id", pid), slog.String("task_definition", tdARN), slog.String("attempt", job.Attempt.Key()))
	return pid, nil
}

// Find returns the task started for job.Attempt, running or stopped (ECS
// lists a stopped task for about an hour), by its startedBy, the attempt's
// Token, in the cluster the job's RunTask names. A task of an earlier
// attempt of the flow run has another startedBy and is never found.
func (b *Backend) Find(ctx context.Context, job dispatch.Job) (string, bool, error) {
	t, err := b.target(ctx, job)
	if err != nil {
		return "", false, err
	}
	return b.taskStartedBy(ctx, t, job.FlowRunID, job.Attempt.Token())
}

// target is where a job's task runs: its configuration, the ECS client with
// the job's credentials, and the cluster its RunTask names ("" for the
// account's default cluster).
type target struct {
	c       *jobConfig
	awsCfg  aws.Config
	api     ecsAPI
	cluster string
}

// target reads the job's configuration and credentials. A job without an
// attempt is a bug in the caller: the engine sets it from the run's claim.
func (b *Backend) target(ctx context.Context, job dispatch.Job) (target, error) {
	switch {
	case job.Attempt.IsZero():
		return target{}, fmt.Errorf("flow run %s: the ECS backend was given a job without an attempt (a bug in the caller: Job.Attempt must be set from the run's claim)", job.FlowRunID)
	case job.Attempt.FlowRunID != job.FlowRunID:
		return target{}, fmt.Errorf("flow run %s: the job's attempt is of flow run %s (a bug in the caller)", job.FlowRunID, job.Attempt.FlowRunID)
	}
	c, err := parseJobConfig(job.Configuration)
	if err != nil {
		return target{}, fmt.Errorf("flow run %s: invalid ECS job configuration: %w", job.FlowRunID, err)
	}
	awsCfg, err := b.awsConfigFor(ctx, c.credentials)
	if err != nil {
		return target{}, fmt.Errorf("flow run %s: %w", job.FlowRunID, err)
	}
	cluster := asString(c.taskRunRequest["cluster"])
	if cluster == "" {
		cluster = c.cluster
	}
	return target{c: c, awsCfg: awsCfg, api: b.ecsClient(awsCfg), cluster: cluster}, nil
}

func orDefault(cluster string) string {
	if cluster == "" {
		return "default"
	}
	return cluster
}

// conflicting resolves the ConflictException of a RunTask whose clientToken
// an earlier, different request of the attempt used: the exception names
// that request's task; without a name, the task is looked up by startedBy.
func (b *Backend) conflicting(ctx context.Context, t target, job dispatch.Job, taskARNs []string) (string, bool, error) {
	if len(taskARNs) == 0 {
		return b.taskStartedBy(ctx, t, job.FlowRunID, job.Attempt.Token())
	}
	return b.taskID(ctx, t, job.FlowRunID, taskARNs[0])
}

// taskStartedBy finds a task with that startedBy, running or stopped.
func (b *Backend) taskStartedBy(ctx context.Context, t target, flowRunID, startedBy string) (string, bool, error) {
	for _, status := range []types.DesiredStatus{types.DesiredStatusRunning, types.DesiredStatusStopped} {
		in := &ecs.ListTasksInput{StartedBy: aws.String(startedBy), DesiredStatus: status}
		if t.cluster != "" {
			in.Cluster = aws.String(t.cluster)
		}
		out, err := t.api.ListTasks(ctx, in)
		if err != nil {
			return "", false, classify(err, flowRunID, apiCall{action: "ecs:ListTasks", object: "cluster " + orDefault(t.cluster), cluster: t.cluster})
		}
		if len(out.TaskArns) == 0 {
			continue
		}
		return b.taskID(ctx, t, flowRunID, out.TaskArns[0])
	}
	return "", false, nil
}

// taskID is the infrastructure id of a task of the target's cluster: with
// the configured cluster, or with the task's cluster ARN, which takes a
// DescribeTasks call. found is false when ECS no longer describes the task.
func (b *Backend) taskID(ctx context.Context, t target, flowRunID, taskARN string) (string, bool, error) {
	if t.c.cluster != "" {
		return formatID(t.c.cluster, "", taskARN), true, nil
	}
	in := &ecs.DescribeTasksInput{Tasks: []string{taskARN}}
	if t.cluster != "" {
		in.Cluster = aws.String(t.cluster)
	}
	desc, err := t.api.DescribeTasks(ctx, in)
	if err != nil {
		return "", false, classify(err, flowRunID, apiCall{action: "ecs:DescribeTasks", object: "task " + taskARN, cluster: t.cluster})
	}
	if len(desc.Tasks) == 0 {
		return "", false, nil
	}
	return formatID("", aws.ToString(desc.Tasks[0].ClusterArn), taskARN), true, nil
}

// withTag returns the RunTask tags with key set to value (both slugified
// as the worker slugifies tags), replacing a tag of that key.
func withTag(tags any, key, value string) []any {
	key = slugifyTag(key)
	out := slices.DeleteFunc(slices.Clone(asList(tags)), func(t any) bool { return asString(asMap(t)["key"]) == key })
	return append(out, map[string]any{"key": key, "value": slugifyTag(value)})
}

// taskDefinition returns the ARN of an ACTIVE revision with td's content,
// registering one only when none exists: first the revision this Backend
// last used for that content, then the family's newest revisions tagged
// with the content hash (registered by any dispatcher), then, with
// match_latest_revision_in_family, the family's latest revision when its
// content is equal. Registrations in a family are serialised.
func (b *Backend) taskDefinition(ctx context.Context, api ecsAPI, flowRunID string, td map[string]any, matchLatest bool) (string, bool, error) {
	family := asString(td["family"])
	hash := contentHash(td)
	unlock, err := b.lockFamily(ctx, family)
	if err != nil {
		return "", false, fmt.Errorf("flow run %s: %w", flowRunID, err)
	}
	defer unlock()

	b.mu.Lock()
	known := b.known[family+"\x00"+hash]
	b.mu.Unlock()
	// The revision this process last used for this content is checked first
	// (one call when it is still ACTIVE); the family's newest revisions,
	// which other dispatchers may have registered, only when it is not.
	if known != "" {
		arn, ok, err := b.reusable(ctx, api, flowRunID, family, hash, known, false, matchLatest)
		if err != nil || ok {
			return arn, false, err
		}
	}
	list, err := api.ListTaskDefinitions(ctx, &ecs.ListTaskDefinitionsInput{FamilyPrefix: aws.String(family),
		Status: types.TaskDefinitionStatusActive, Sort: types.SortOrderDesc, MaxResults: aws.Int32(int32(b.cfg.RevisionScan))})
	if err != nil {
		return "", false, classify(err, flowRunID, apiCall{action: "ecs:ListTaskDefinitions", object: "task definition family " + family})
	}
	newest := newestRevisions(list.TaskDefinitionArns, family, b.cfg.RevisionScan)
	for i, arn := range newest {
		if arn == known {
			continue
		}
		if arn, ok, err := b.reusable(ctx, api, flowRunID, family, hash, arn, i == 0, matchLatest); err != nil || ok {
			return arn, false, err
		}
	}

	var in ecs.RegisterTaskDefinitionInput
	if err := decodeStrict(td, &in); err != nil {
		return "", false, fmt.Errorf("flow run %s: the task_definition of the job configuration is not a valid RegisterTaskDefinition request: %w; fix the pool's base job template", flowRunID, err)
	}
	in.Tags = append(in.Tags, types.Tag{Key: aws.String(ContentHashTag), Value: aws.String(hash)})
	wait := b.cfg.RegisterBackoff
	for attempt := 1; ; attempt++ {
		out, err := api.RegisterTaskDefinition(ctx, &in)
		if err == nil {
			arn := aws.ToString(out.TaskDefinition.TaskDefinitionArn)
			b.remember(family, hash, arn)
			b.log.InfoContext(ctx, "registered task definition", slog.String("flow_run_id", flowRunID), slog.String("task_definition", arn))
			return arn, true, nil
		}
		cerr := classify(err, flowRunID, apiCall{action: "ecs:RegisterTaskDefinition", object: "task definition family " + family})
		if !errors.Is(cerr, dispatch.ErrRetryable) || attempt >= b.cfg.RegisterAttempts || !concurrentRevision(err) {
			return "", false, cerr
		}
		if err := sleep(ctx, wait); err != nil {
			return "", false, fmt.Errorf("%w (while waiting to retry: %w)", cerr, err)
		}
		wait = min(2*wait, 10*time.Second)
	}
}

// reusable reports whether the revision arn is ACTIVE and holds the content
// with this hash: tagged with it by a dispatcher, or, with
// match_latest_revision_in_family, the family's latest revision with equal
// content.
func (b *Backend) reusable(ctx context.Context, api ecsAPI, flowRunID, family, hash, arn string, latest, matchLatest bool) (string, bool, error) {
	out, err := api.DescribeTaskDefinition(ctx, &ecs.DescribeTaskDefinitionInput{TaskDefinition: aws.String(arn), Include: []types.TaskDefinitionField{types.TaskDefinitionFieldTags}})
	if err != nil {
		return "", false, classify(err, flowRunID, apiCall{action: "ecs:DescribeTaskDefinition", object: "task definition family " + family})
	}
	if out.TaskDefinition == nil || out.TaskDefinition.Status != types.TaskDefinitionStatusActive {
		return "", false, nil
	}
	tagged := slices.ContainsFunc(out.Tags, func(t types.Tag) bool {
		return aws.ToString(t.Key) == ContentHashTag && aws.ToString(t.Value) == hash
	})
	if !tagged && !(matchLatest && latest && contentHash(apiToMap(out.TaskDefinition)) == hash) {
		return "", false, nil
	}
	b.remember(family, hash, arn)
	b.log.DebugContext(ctx, "reusing task definition", slog.String("flow_run_id", flowRunID), slog.String("task_definition", arn))
	return arn, true, nil
}

func concurrentRevision(err error) bool {
	return strings.Contains(strings.ToLower(err.Error()), "too many concurrent attempts")
}

func (b *Backend) remember(family, hash, arn string) {
	b.mu.Lock()
	b.known[family+"\x00"+hash] = arn
	b.mu.Unlock()
}

// newestRevisions keeps the ARNs of family itself (familyPrefix also matches
// longer families), newest revision first, at most n.
func newestRevisions(arns []string, family string, n int) []string {
	type rev struct {
		arn string
		n   int
	}
	var revs []rev
	for _, a := range arns {
		_, tail, ok := strings.Cut(a, ":task-definition/")
		if !ok {
			continue
		}
		fam, num, ok := strings.Cut(tail, ":")
		r, err := strconv.Atoi(num)
		if !ok || err != nil || fam != family {
			continue
		}
		revs = append(revs, rev{a, r})
	}
	slices.SortFunc(revs, func(a, b rev) int { return b.n - a.n })
	out := []string{}
	for i := 0; i < len(revs) && i < n; i++ {
		out = append(out, revs[i].arn)
	}
	return out
}

// decodeStrict decodes a JSON-shaped request into an SDK input. Field names
// match case-insensitively (the SDK's are the API's, capitalised); unknown
// fields are an error, as botocore's parameter validation makes them.
func decodeStrict(v map[string]any, into any) error {
	data, err := json.Marshal(v)
	if err != nil {
		return err
	}
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	return dec.Decode(into)
}

// apiToMap turns an SDK output structure into the JSON-shaped map the API
// returned (camelCase keys, unset fields absent), for the code shared with
// prepared task definitions.
func apiToMap(v any) map[string]any {
	m, _ := toJSONValue(reflect.ValueOf(v)).(map[string]any)
	if m == nil {
		m = map[string]any{}
	}
	return m
}

func toJSONValue(v reflect.Value) any {
	switch v.Kind() {
	case reflect.Pointer, reflect.Interface:
		if v.IsNil() {
			return nil
		}
		return toJSONValue(v.Elem())
	case reflect.Struct:
		if t, ok := v.Interface().(time.Time); ok {
			return t.UTC().Format(time.RFC3339Nano)
		}
		out := map[string]any{}
		for i := 0; i < v.NumField(); i++ {
			f := v.Type().Field(i)
			if !f.IsExported() {
				continue
			}
			if e := toJSONValue(v.Field(i)); e != nil {
				r, size := utf8.DecodeRuneInString(f.Name)
				out[string(unicode.ToLower(r))+f.Name[size:]] = e
			}
		}
		return out
	case reflect.Slice:
		if v.IsNil() {
			return nil
		}
		out := make([]any, v.Len())
		for i := range out {
			out[i] = toJSONValue(v.Index(i))
		}
		return out
	case reflect.Map:
		if v.IsNil() {
			return nil
		}
		out := map[string]any{}
		for _, k := range v.MapKeys() {
			out[fmt.Sprint(k.Interface())] = toJSONValue(v.MapIndex(k))
		}
		return out
	case reflect.String:
		if v.String() == "" {
			return nil
		}
		return v.String()
	case reflect.Bool:
		return v.Bool()
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64:
		return float64(v.Int())
	case reflect.Float32, reflect.Float64:
		return v.Float()
	}
	return nil
}

// vpcSubnets is the networkLoader of the worker: EC2's subnets of a VPC.
type vpcSubnets struct{ api ec2API }

func (v *vpcSubnets) subnets(ctx context.Context, vpcID string) ([]string, error) {
	in := &ec2.DescribeVpcsInput{}
	what := "the default VPC"
	if vpcID == "" {
		in.Filters = []ec2types.Filter{{Name: aws.String("isDefault"), Values: []string{"true"}}}
	} else {
		in.VpcIds = []string{vpcID}
		what = "VPC " + vpcID
	}
	vpcs, err := v.api.DescribeVpcs(ctx, in)
	if err != nil {
		return nil, classify(err, "", apiCall{action: "ec2:DescribeVpcs", object: what})
	}
	if len(vpcs.Vpcs) == 0 {
		fix := "set the vpc_id job variable or create a default VPC"
		if vpcID != "" {
			fix = "check that the VPC exists in this region"
		}
		return nil, fmt.Errorf("%s not found, so the task's network configuration cannot be inferred; %s", what, fix)
	}
	id := aws.ToString(vpcs.Vpcs[0].VpcId)
	var subnets []string
	p := ec2.NewDescribeSubnetsPaginator(v.api, &ec2.DescribeSubnetsInput{Filters: []ec2types.Filter{{Name: aws.String("vpc-id"), Values: []string{id}}}})
	for p.HasMorePages() {
		page, err := p.NextPage(ctx)
		if err != nil {
			return nil, classify(err, "", apiCall{action: "ec2:DescribeSubnets", object: what})
		}
		for _, s := range page.Subnets {
			subnets = append(subnets, aws.ToString(s.SubnetId))
		}
	}
	if len(subnets) == 0 {
		return nil, fmt.Errorf("%s has no subnets, so the task's network configuration cannot be inferred; create subnets or set network_configuration", what)
	}
	return subnets, nil
}
