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
	"github.com/aws/smithy-go"

	"github.com/pushpool/pushpool/dispatch"
)

// Start runs the task of job.Attempt, registering (or reusing) its task
// definition, and returns the infrastructure_pid "<cluster>::<task ARN>",
// with the cluster as configured or, when none is, the task's cluster ARN.
//
// The attempt's Token is the task's startedBy and RunTask's clientToken,
// which ECS keeps per cluster for up to 24 hours: a RunTask repeating the
// token gets the task the first one started (the same request), or a
// ConflictException naming it (another request: a revision registered in
// between, other subnets, a changed variable), which Start returns. So a
// repeated or concurrent Start of one attempt, in this process or in
// another, starts one task, while another attempt of the same flow run (a
// Retry, a resume, a reschedule) gets a task of its own.
//
// That makes a lookup before the first RunTask of an attempt pointless, and
// Start makes none: a fresh attempt costs one RunTask when the Backend
// remembers the revision and the subnets. What the Backend remembers only
// ever saves calls:
//   - a Start of an attempt this Backend started returns its id;
//   - a Start of an attempt under way in this process waits for that one;
//   - a Start after a RunTask of this process that went unanswered (an
//     error, a lost response) first looks for the attempt's running task,
//     one ListTasks call, and runs the task only when there is none.
//
// A RunTask that ECS refuses for a remembered revision (deregistered) or
// remembered subnets (deleted) forgets them and is sent once more with
// what AWS says now.
func (b *Backend) Start(ctx context.Context, job dispatch.Job) (string, error) {
	t, err := b.target(ctx, job)
	if err != nil {
		return "", err
	}
	log := b.log.With(slog.String("flow_run_id", job.FlowRunID), slog.String("work_pool", job.WorkPool), slog.String("attempt", job.Attempt.Key()))
	key := attemptKey{region: t.awsCfg.Region, identity: t.identity, cluster: t.cluster, token: job.Attempt.Token()}
	for {
		pid, wait, lookup, end := b.beginAttempt(key)
		switch {
		case pid != "":
			log.DebugContext(ctx, "this dispatcher started the attempt's task before", slog.String("infrastructure_id", pid))
			return pid, nil
		case wait != nil:
			select {
			case <-wait:
				continue // its outcome is remembered, or it failed and this Start tries
			case <-ctx.Done():
				return "", fmt.Errorf("flow run %s: wait for this dispatcher's other start of attempt %s: %w", job.FlowRunID, job.Attempt.Key(), context.Cause(ctx))
			}
		}
		return b.startAttempt(ctx, t, job, lookup, log, end)
	}
}

// startAttempt is Start's work for an attempt no other Start of this
// process is starting; end records its outcome. lookup says that an
// earlier RunTask of the attempt from this process went unanswered.
func (b *Backend) startAttempt(ctx context.Context, t target, job dispatch.Job, lookup bool, log *slog.Logger, end func(pid string, sent bool)) (pid string, err error) {
	sent := false
	defer func() { end(pid, sent) }()
	token := job.Attempt.Token()
	if lookup {
		id, found, err := b.taskWithStatus(ctx, t, job.FlowRunID, token, types.DesiredStatusRunning)
		switch {
		case err != nil:
			// RunTask's clientToken still keeps the attempt to one task.
			log.WarnContext(ctx, "could not look for the task of the attempt's unanswered start; running it with its clientToken", slog.String("error", err.Error()))
		case found:
			log.InfoContext(ctx, "found the task an unanswered start of the attempt started", slog.String("infrastructure_id", id))
			return id, nil
		}
	}
	net := &cachedSubnets{b: b, region: t.awsCfg.Region, identity: t.identity, ec2: func() ec2API { return b.ec2Client(t.awsCfg) }}
	for retried := false; ; retried = true {
		r, err := b.runTaskRequest(ctx, t, job, net)
		if err != nil {
			var outside *subnetsOutsideVPC
			if !retried && errors.As(err, &outside) && net.forget() {
				log.InfoContext(ctx, "the remembered subnets do not hold the configured ones; looking them up again", slog.String("vpc_id", t.c.vpcID))
				continue
			}
			return "", err
		}
		where := "cluster " + orDefault(t.cluster)
		call := apiCall{action: "ecs:RunTask", object: where + " with task definition " + r.tdARN, cluster: t.cluster}
		// The SDK retries a throttled or failed RunTask with the same input,
		// so with the same clientToken: a retry of a call that did start the
		// task gets that task back.
		out, err := t.api.RunTask(ctx, &r.in)
		sent = true
		if err != nil && !retried && b.forgetStale(ctx, err, r, net, log) {
			continue
		}
		var conflict *types.ConflictException
		if errors.As(err, &conflict) {
			pid, found, ferr := b.conflicting(ctx, t, job, conflict.ResourceIds)
			if ferr != nil || !found {
				return "", errors.Join(classify(err, job.FlowRunID, call), ferr)
			}
			log.InfoContext(ctx, "found the task an earlier start of the attempt started", slog.String("infrastructure_id", pid))
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
		pid = formatID(t.c.cluster, aws.ToString(task.ClusterArn), aws.ToString(task.TaskArn))
		log.InfoContext(ctx, "started ECS task", slog.String("infrastructure_id", pid), slog.String("task_definition", r.tdARN))
		return pid, nil
	}
}

// runRequest is the RunTask request of an attempt, and what of it came
// from the Backend's memory.
type runRequest struct {
	in    ecs.RunTaskInput
	tdARN string
	// revision is set when the revision was the remembered one for the
	// content; described when the definition of the job's
	// task_definition_arn was remembered.
	revision  *revisionKey
	described *describedKey
}

// runTaskRequest builds the attempt's RunTask request: the task definition
// (registered or reused, or the job's task_definition_arn), validated, and
// the request as the worker prepares it, with the attempt's startedBy,
// clientToken and tag.
func (b *Backend) runTaskRequest(ctx context.Context, t target, job dispatch.Job, net *cachedSubnets) (runRequest, error) {
	run := runInfo{workPool: job.WorkPool, deploymentID: job.DeploymentID, flowID: job.FlowID,
		region: t.awsCfg.Region, defaultImage: b.cfg.DefaultImage}
	var (
		r          = runRequest{tdARN: asString(t.c.taskRunRequest["taskDefinition"])}
		td         map[string]any
		registered bool
		err        error
	)
	if r.tdARN == "" {
		if td, err = prepareTaskDefinition(t.c, run); err != nil {
			return r, fmt.Errorf("flow run %s: prepare the task definition: %w", job.FlowRunID, err)
		}
		rev, err := b.taskDefinition(ctx, t, job.FlowRunID, td)
		if err != nil {
			return r, err
		}
		r.tdARN, registered = rev.arn, rev.registered
		if rev.remembered {
			r.revision = &rev.key
		}
	} else {
		k := describedKey{region: t.awsCfg.Region, identity: t.identity, arn: r.tdARN}
		if td = b.describedTaskDefinition(k); td != nil {
			r.described = &k
		} else {
			out, err := t.api.DescribeTaskDefinition(ctx, &ecs.DescribeTaskDefinitionInput{TaskDefinition: aws.String(r.tdARN)})
			if err != nil {
				return r, classify(err, job.FlowRunID, apiCall{action: "ecs:DescribeTaskDefinition", object: "task definition " + r.tdARN})
			}
			td = apiToMap(out.TaskDefinition)
			b.rememberDescribed(k, td)
		}
	}
	if err := validateTaskDefinition(td, t.c); err != nil {
		return r, fmt.Errorf("flow run %s: task definition %s: %w", job.FlowRunID, r.tdARN, err)
	}
	req, err := prepareRunTaskRequest(ctx, t.c, td, r.tdARN, registered, net)
	if err != nil {
		return r, fmt.Errorf("flow run %s: prepare the RunTask request: %w", job.FlowRunID, err)
	}
	token := job.Attempt.Token()
	req["startedBy"] = token
	req["clientToken"] = token
	req["tags"] = withTag(req["tags"], dispatch.LabelAttempt, token)
	if err := decodeStrict(req, &r.in); err != nil {
		return r, fmt.Errorf("flow run %s: the task_run_request of the job configuration is not a valid RunTask request: %w; fix the pool's base job template", job.FlowRunID, err)
	}
	return r, nil
}

// forgetStale forgets what of the request came from memory when ECS's
// refusal of the RunTask says it is out of date (a deregistered revision,
// a deleted subnet), and reports whether it did: the request is then built
// again from what AWS says now.
func (b *Backend) forgetStale(ctx context.Context, err error, r runRequest, net *cachedSubnets, log *slog.Logger) bool {
	switch {
	case staleSubnets(err) && net.forget():
		log.InfoContext(ctx, "ECS refused the remembered subnets; looking them up again", slog.String("error", err.Error()))
		return true
	case staleTaskDefinition(err) && r.revision != nil:
		b.forgetRevision(*r.revision, r.tdARN)
		log.InfoContext(ctx, "ECS refused the remembered task definition revision; looking for another", slog.String("task_definition", r.tdARN), slog.String("error", err.Error()))
		return true
	case staleTaskDefinition(err) && r.described != nil:
		b.forgetDescribed(*r.described)
		log.InfoContext(ctx, "ECS refused the task definition described before; describing it again", slog.String("task_definition", r.tdARN), slog.String("error", err.Error()))
		return true
	}
	return false
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
	// identity tells whose credentials the job uses, to key what the
	// Backend remembers: "key:<access key id>" or "profile:<name>" of the
	// job's aws_credentials block, "" for the Backend's own.
	identity string
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
	t := target{c: c, awsCfg: awsCfg, cluster: cluster, identity: credentialIdentity(c.credentials)}
	if t.identity == "" {
		// The backend's own credentials: its client for the region is
		// reused, not built anew for every start.
		t.api = b.ownECS(awsCfg.Region)
	} else {
		t.api = b.ecsClient(awsCfg)
	}
	return t, nil
}

// credentialIdentity is target.identity for an aws_credentials block, as
// awsConfigFor chooses its credentials.
func credentialIdentity(block map[string]any) string {
	key, secret := asString(block["aws_access_key_id"]), asString(block["aws_secret_access_key"])
	switch profile := asString(block["profile_name"]); {
	case key != "" && secret != "":
		return "key:" + key
	case profile != "":
		return "profile:" + profile
	}
	return ""
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
	return b.taskWithStatus(ctx, t, flowRunID, startedBy, types.DesiredStatusRunning, types.DesiredStatusStopped)
}

// taskWithStatus finds a task with that startedBy whose desired status is
// one of statuses, asking ECS once per status, in their order.
func (b *Backend) taskWithStatus(ctx context.Context, t target, flowRunID, startedBy string, statuses ...types.DesiredStatus) (string, bool, error) {
	for _, status := range statuses {
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

// revision is the task definition revision a Start runs.
type revision struct {
	arn string
	// registered: this Start registered it; remembered: it came from the
	// Backend's memory, unchecked.
	registered, remembered bool
	key                    revisionKey
}

// taskDefinition returns an ACTIVE revision with td's content, registering
// one only when none exists. The revision this Backend last used for that
// content is taken as it is, without a call (a RunTask refusing it makes
// Start forget it); otherwise the family's latest revision, then its
// newest revisions are inspected for the content-hash tag (another
// dispatcher may have registered it) or, with
// match_latest_revision_in_family, for equal content. Only registrations
// hold the family's lock, so that concurrent Starts of a deployment in
// this process register one revision.
func (b *Backend) taskDefinition(ctx context.Context, t target, flowRunID string, td map[string]any) (revision, error) {
	family := asString(td["family"])
	k := revisionKey{region: t.awsCfg.Region, identity: t.identity, family: family, hash: contentHash(td)}
	if arn := b.knownRevision(k); arn != "" {
		return revision{arn: arn, remembered: true, key: k}, nil
	}
	type found struct {
		arn string
		ok  bool
	}
	f, err := shared(ctx, &b.lookups, fmt.Sprintf("revision/%v/%t", k, t.c.matchLatest), func(ctx context.Context) (found, error) {
		arn, ok, err := b.findRevision(ctx, t.api, flowRunID, family, k.hash, t.c.matchLatest)
		return found{arn, ok}, err
	})
	if err != nil {
		return revision{}, err
	}
	arn, ok := f.arn, f.ok
	if ok {
		b.remember(k, arn)
		b.log.DebugContext(ctx, "reusing task definition", slog.String("flow_run_id", flowRunID), slog.String("task_definition", arn))
		return revision{arn: arn, key: k}, nil
	}

	unlock, err := b.lockFamily(ctx, family)
	if err != nil {
		return revision{}, fmt.Errorf("flow run %s: %w", flowRunID, err)
	}
	defer unlock()
	// Another Start of this process may have registered it meanwhile.
	if arn := b.knownRevision(k); arn != "" {
		return revision{arn: arn, remembered: true, key: k}, nil
	}
	var in ecs.RegisterTaskDefinitionInput
	if err := decodeStrict(td, &in); err != nil {
		return revision{}, fmt.Errorf("flow run %s: the task_definition of the job configuration is not a valid RegisterTaskDefinition request: %w; fix the pool's base job template", flowRunID, err)
	}
	in.Tags = append(in.Tags, types.Tag{Key: aws.String(ContentHashTag), Value: aws.String(k.hash)})
	wait := b.cfg.RegisterBackoff
	for attempt := 1; ; attempt++ {
		out, err := t.api.RegisterTaskDefinition(ctx, &in)
		if err == nil {
			arn := aws.ToString(out.TaskDefinition.TaskDefinitionArn)
			b.remember(k, arn)
			b.log.InfoContext(ctx, "registered task definition", slog.String("flow_run_id", flowRunID), slog.String("task_definition", arn))
			return revision{arn: arn, registered: true, key: k}, nil
		}
		cerr := classify(err, flowRunID, apiCall{action: "ecs:RegisterTaskDefinition", object: "task definition family " + family})
		if !errors.Is(cerr, dispatch.ErrRetryable) || attempt >= b.cfg.RegisterAttempts || !concurrentRevision(err) {
			return revision{}, cerr
		}
		if err := sleep(ctx, wait); err != nil {
			return revision{}, fmt.Errorf("%w (while waiting to retry: %w)", cerr, err)
		}
		wait = min(2*wait, 10*time.Second)
	}
}

// findRevision looks for an ACTIVE revision of the family holding the
// content with this hash: first the family's latest revision (one call, and
// usually the one), then, when that is not it, the family's newest
// revisions.
func (b *Backend) findRevision(ctx context.Context, api ecsAPI, flowRunID, family, hash string, matchLatest bool) (string, bool, error) {
	latest, ok, err := b.reusable(ctx, api, flowRunID, family, hash, family, true, matchLatest)
	var apiErr smithy.APIError
	switch {
	case errors.As(err, &apiErr) && apiErr.ErrorCode() == "ClientException":
		// "Unable to describe task definition": a family without an ACTIVE
		// revision. The listing below says so for certain.
	case err != nil || ok:
		return latest, ok, err
	}
	list, err := api.ListTaskDefinitions(ctx, &ecs.ListTaskDefinitionsInput{FamilyPrefix: aws.String(family),
		Status: types.TaskDefinitionStatusActive, Sort: types.SortOrderDesc, MaxResults: aws.Int32(int32(b.cfg.RevisionScan))})
	if err != nil {
		return "", false, classify(err, flowRunID, apiCall{action: "ecs:ListTaskDefinitions", object: "task definition family " + family})
	}
	for i, arn := range newestRevisions(list.TaskDefinitionArns, family, b.cfg.RevisionScan) {
		if arn == latest {
			continue
		}
		if arn, ok, err := b.reusable(ctx, api, flowRunID, family, hash, arn, i == 0, matchLatest); err != nil || ok {
			return arn, ok, err
		}
	}
	return "", false, nil
}

// reusable describes the task definition ref (a revision ARN, or a family
// for its latest revision) and reports whether it is ACTIVE and holds the
// content with this hash: tagged with it by a dispatcher, or, with
// match_latest_revision_in_family, the family's latest revision with equal
// content. arn is the revision described, reusable or not.
func (b *Backend) reusable(ctx context.Context, api ecsAPI, flowRunID, family, hash, ref string, latest, matchLatest bool) (arn string, ok bool, err error) {
	out, err := api.DescribeTaskDefinition(ctx, &ecs.DescribeTaskDefinitionInput{TaskDefinition: aws.String(ref), Include: []types.TaskDefinitionField{types.TaskDefinitionFieldTags}})
	if err != nil {
		return "", false, classify(err, flowRunID, apiCall{action: "ecs:DescribeTaskDefinition", object: "task definition family " + family})
	}
	if out.TaskDefinition == nil {
		return "", false, nil
	}
	arn = aws.ToString(out.TaskDefinition.TaskDefinitionArn)
	if out.TaskDefinition.Status != types.TaskDefinitionStatusActive {
		return arn, false, nil
	}
	tagged := slices.ContainsFunc(out.Tags, func(t types.Tag) bool {
		return aws.ToString(t.Key) == ContentHashTag && aws.ToString(t.Value) == hash
	})
	return arn, tagged || (matchLatest && latest && contentHash(apiToMap(out.TaskDefinition)) == hash), nil
}

func concurrentRevision(err error) bool {
	return strings.Contains(strings.ToLower(err.Error()), "too many concurrent attempts")
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
