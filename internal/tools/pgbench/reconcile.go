package main

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"sync"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
	ec2types "github.com/aws/aws-sdk-go-v2/service/ec2/types"
	"github.com/aws/aws-sdk-go-v2/service/ecs"
	ecstypes "github.com/aws/aws-sdk-go-v2/service/ecs/types"

	"github.com/pushpool/pushpool/dispatch"
	ecsbackend "github.com/pushpool/pushpool/dispatch/backend/ecs"
	"github.com/pushpool/pushpool/dispatch/prefect"
)

// labelStartTimeout is the label pushpool writes with the run's start
// timeout (dispatch's labelStartTimeout, unexported).
const labelStartTimeout = "pushpool.io/start-timeout-seconds"

// reconcileResult is the reconcile scenario's figures.
type reconcileResult struct {
	runs  int
	setup time.Duration
	// single is one pass (RunOnce) of one dispatcher; rotation is that
	// dispatcher's passes until every RUNNING run had been checked once
	// (a pass checks ReconcileConfig.RunningPerPass of them), the first
	// included.
	single, rotation passCost
	// fleetOnce is one RunOnce of each of fleetSize dispatchers at once
	// over the same runs; fleetLeased one RunLeased each (the pool's
	// reconcile lease, as pushpool serve reconciles), at once.
	fleetOnce, fleetLeased passCost
	fleetSize              int
}

// passCost is what reconcile passes cost together.
type passCost struct {
	passes       int // passes made (RunLeased: those that held the lease)
	took         time.Duration
	prefect, aws tally
	checked      int            // runs the passes listed, summed
	actions      map[string]int // what they did, summed
	errs         []error
}

// runReconcile puts runs RUNNING ECS runs in place as pushpool leaves
// them — claimed through orchestration, one task per attempt in moto
// (startedBy and the pushpool.io/attempt tag are the attempt's token),
// RUNNING, infrastructure_pid "<cluster>::<task ARN>" and pushpool's
// labels — then measures through the public API one reconcile pass, the
// passes until every run was checked once, and one pass each of fleet
// dispatchers at once, without and with the pool's reconcile lease.
func runReconcile(ctx context.Context, s *stack, runs, fleet, conc int) (reconcileResult, error) {
	res := reconcileResult{runs: runs, fleetSize: fleet}
	began := time.Now()
	fx, err := s.newFixture(ctx, "reconcile")
	if err != nil {
		return res, err
	}
	ids, err := s.createRuns(ctx, fx, dueNow(runs), conc)
	if err != nil {
		return res, err
	}
	starter, err := newTaskStarter(ctx, s)
	if err != nil {
		return res, err
	}
	errs := make([]error, len(ids))
	sem := make(chan struct{}, conc)
	var wg sync.WaitGroup
	for i, id := range ids {
		sem <- struct{}{}
		wg.Go(func() {
			defer func() { <-sem }()
			errs[i] = s.runningRun(ctx, fx, starter, id)
		})
	}
	wg.Wait()
	if err := errors.Join(errs...); err != nil {
		return res, fmt.Errorf("put the reconcile scenario's runs in place: %w", err)
	}
	res.setup = time.Since(began)
	s.log.Info("reconcile: runs RUNNING with their tasks", "runs", runs, "took", res.setup.Round(time.Second))

	one, err := newReconcilers(ctx, s, 1, "one")
	if err != nil {
		return res, err
	}
	res.single = one.passes(ctx, fx.pool, runOnce)
	res.rotation = res.single
	for res.rotation.checked < runs && res.rotation.passes < 10 && len(res.rotation.errs) == 0 {
		next := one.passes(ctx, fx.pool, runOnce)
		res.rotation.add(next)
	}
	s.log.Info("reconcile: one pass", "took", res.single.took.Round(time.Millisecond), "checked", res.single.checked,
		"aws", res.single.aws.total(), "prefect", res.single.prefect.total(), "rotation_passes", res.rotation.passes)
	for _, f := range []struct {
		cost *passCost
		what string
		pass passFunc
	}{{&res.fleetOnce, "fleet", runOnce}, {&res.fleetLeased, "leased", runLeased}} {
		fleetRecs, err := newReconcilers(ctx, s, fleet, f.what)
		if err != nil {
			return res, err
		}
		*f.cost = fleetRecs.passes(ctx, fx.pool, f.pass)
		s.log.Info("reconcile: concurrent passes", "dispatchers", fleet, "how", f.what, "passes", f.cost.passes,
			"took", f.cost.took.Round(time.Millisecond), "aws", f.cost.aws.total(), "prefect", f.cost.prefect.total())
	}
	return res, nil
}

// taskStarter starts moto tasks as pushpool's ECS backend does for one
// attempt, from one task definition.
type taskStarter struct {
	taskDef string
	subnets []string
}

func newTaskStarter(ctx context.Context, s *stack) (*taskStarter, error) {
	awsCfg := aws.Config{Region: awsRegion, Credentials: credentials.NewStaticCredentialsProvider("test", "test", "")}
	ec2c := ec2.NewFromConfig(awsCfg, func(o *ec2.Options) { o.BaseEndpoint = aws.String(s.moto.URL) })
	vpcs, err := ec2c.DescribeVpcs(ctx, &ec2.DescribeVpcsInput{Filters: []ec2types.Filter{{Name: aws.String("isDefault"), Values: []string{"true"}}}})
	if err != nil {
		return nil, fmt.Errorf("find moto's default VPC: %w", err)
	}
	if len(vpcs.Vpcs) == 0 {
		return nil, errors.New("moto has no default VPC")
	}
	subnets, err := ec2c.DescribeSubnets(ctx, &ec2.DescribeSubnetsInput{Filters: []ec2types.Filter{{Name: aws.String("vpc-id"), Values: []string{aws.ToString(vpcs.Vpcs[0].VpcId)}}}})
	if err != nil {
		return nil, fmt.Errorf("find moto's default subnets: %w", err)
	}
	t := &taskStarter{}
	for _, sn := range subnets.Subnets {
		t.subnets = append(t.subnets, aws.ToString(sn.SubnetId))
	}
	td, err := s.ecs.RegisterTaskDefinition(ctx, &ecs.RegisterTaskDefinitionInput{
		Family: aws.String("pgbench-reconcile"), NetworkMode: ecstypes.NetworkModeAwsvpc,
		RequiresCompatibilities: []ecstypes.Compatibility{ecstypes.CompatibilityFargate},
		Cpu:                     aws.String("1024"), Memory: aws.String("2048"),
		ContainerDefinitions: []ecstypes.ContainerDefinition{{Name: aws.String("prefect"), Image: aws.String(ecsbackend.DefaultImage), Essential: aws.Bool(true)}},
	})
	if err != nil {
		return nil, fmt.Errorf("register the reconcile scenario's task definition in moto: %w", err)
	}
	t.taskDef = aws.ToString(td.TaskDefinition.TaskDefinitionArn)
	return t, nil
}

// runningRun claims one run, starts its attempt's task, sets it RUNNING
// and records the task and pushpool's labels.
func (s *stack) runningRun(ctx context.Context, fx fixture, t *taskStarter, id string) error {
	claim, err := s.api.SetFlowRunState(ctx, id, prefect.StateCreate{Type: prefect.StatePending, Name: "Pending"}, false)
	if err != nil {
		return fmt.Errorf("claim %s: %w", id, err)
	}
	if claim.Status != prefect.Accept || claim.State == nil {
		return fmt.Errorf("claim %s: %s %s", id, claim.Status, claim.Details.Reason)
	}
	attempt := dispatch.Attempt{FlowRunID: id, ClaimID: claim.State.ID}
	out, err := s.ecs.RunTask(ctx, &ecs.RunTaskInput{
		Cluster: aws.String(s.cluster), TaskDefinition: aws.String(t.taskDef), Count: aws.Int32(1),
		LaunchType: ecstypes.LaunchTypeFargate, StartedBy: aws.String(attempt.Token()),
		Tags: []ecstypes.Tag{{Key: aws.String(dispatch.LabelAttempt), Value: aws.String(attempt.Token())}},
		// moto needs securityGroups present, as prefect-aws sends it.
		NetworkConfiguration: &ecstypes.NetworkConfiguration{AwsvpcConfiguration: &ecstypes.AwsVpcConfiguration{
			Subnets: t.subnets, SecurityGroups: []string{}, AssignPublicIp: ecstypes.AssignPublicIpEnabled}},
	})
	if err != nil {
		return fmt.Errorf("start the task of %s in moto: %w", id, err)
	}
	if len(out.Tasks) != 1 {
		return fmt.Errorf("start the task of %s in moto: %d tasks, failures %v", id, len(out.Tasks), out.Failures)
	}
	if _, err := s.api.SetFlowRunState(ctx, id, prefect.StateCreate{Type: prefect.StateRunning, Name: "Running"}, true); err != nil {
		return fmt.Errorf("set %s RUNNING: %w", id, err)
	}
	pid := s.cluster + "::" + aws.ToString(out.Tasks[0].TaskArn)
	if err := s.api.UpdateFlowRun(ctx, id, prefect.FlowRunUpdate{InfrastructurePID: &pid}); err != nil {
		return fmt.Errorf("record the task of %s: %w", id, err)
	}
	return s.api.UpdateFlowRunLabels(ctx, id, map[string]string{
		"prefect.worker.name":    "pgbench-reconcile",
		"prefect.worker.type":    ecsbackend.PoolType,
		"prefect.work-pool.name": fx.pool,
		"prefect.work-pool.id":   fx.poolID,
		dispatch.LabelAttempt:    attempt.Key(),
		labelStartTimeout:        strconv.Itoa(300),
	})
}
