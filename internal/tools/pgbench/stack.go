package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/ecs"
	"github.com/google/uuid"

	ecsbackend "github.com/pushpool/pushpool/dispatch/backend/ecs"
	"github.com/pushpool/pushpool/dispatch/prefect"
	"github.com/pushpool/pushpool/internal/localstack"
)

// awsRegion is the region of every AWS resource in moto.
const awsRegion = "us-east-1"

// stack is what every scenario shares: one Prefect server on PostgreSQL,
// one moto server, the ECS cluster in it, Prefect's own ECS base job
// template, and the harness's clients (which talk to both directly, not
// through the contenders' counting proxies).
type stack struct {
	srv      *localstack.Prefect
	moto     *localstack.Moto
	db       *serverDB
	api      *prefect.Client
	ecs      *ecs.Client
	cluster  string
	template map[string]any
	// pushpool and bootstrap are the binaries of `pushpool serve` and of
	// the Lambda function.
	pushpool, bootstrap string
	// tickEvent is EventBridge Scheduler's input for the function,
	// functions/lambda/testdata/scheduler-tick.json.
	tickEvent []byte
	venv      string
	dir       string // temporary files: logs, homes
	keep      bool   // keep dir after stop
	serveEnv  map[string]string
	log       *slog.Logger

	mu    sync.Mutex
	pools int
}

// startStack starts PostgreSQL, a Prefect server on it and moto, and
// prepares what the scenarios share. Every failure names the dependency
// that could not start. The caller must call stop.
func startStack(ctx context.Context, opts options, log *slog.Logger) (*stack, error) {
	s := &stack{pushpool: opts.pushpool, log: log, cluster: "pgbench", keep: opts.keep, serveEnv: opts.serveEnv}
	var err error
	if s.dir, err = os.MkdirTemp("", "pushpool-pgbench-"); err != nil {
		return nil, fmt.Errorf("create a temporary directory: %w", err)
	}
	if s.venv, err = localstack.Venv(ctx); err != nil {
		return s, fmt.Errorf("the Python virtualenv (Prefect, prefect-aws, moto): %w", err)
	}
	if _, err := os.Stat(filepath.Join(s.venv, "bin", "prefect")); err != nil {
		return s, fmt.Errorf("the Prefect worker cannot start: %w", err)
	}
	if _, err := os.Stat(s.pushpool); err != nil {
		return s, fmt.Errorf("the pushpool binary %s (make bench builds it with go build -o bin/pushpool ./functions/pushpool): %w", s.pushpool, err)
	}
	root, err := localstack.RepoRoot()
	if err != nil {
		return s, err
	}
	if s.tickEvent, err = os.ReadFile(filepath.Join(root, "functions", "lambda", "testdata", "scheduler-tick.json")); err != nil {
		return s, fmt.Errorf("read the scheduler tick event: %w", err)
	}
	log.Info("building the Lambda bootstrap")
	if s.bootstrap, err = buildBootstrap(ctx, root, s.dir); err != nil {
		return s, err
	}

	log.Info("starting PostgreSQL and a Prefect server on it")
	s.srv, err = localstack.StartPrefectOnPostgres(ctx, localstack.PrefectOptions{Env: map[string]string{
		// Runs created before a contender starts would be marked Late
		// (one more state write each) while it dispatches them: server
		// work that depends on when a contender starts, not on it.
		"PREFECT_SERVER_SERVICES_LATE_RUNS_ENABLED": "false",
	}}, localstack.PostgresOptions{Database: "pgbench"})
	if err != nil {
		return s, fmt.Errorf("PostgreSQL and the Prefect server on it could not start (PostgreSQL binaries are looked for in $PUSHPOOL_PG_BIN and /usr/lib/postgresql/*/bin): %w", err)
	}
	s.db = &serverDB{pg: s.srv.Postgres}
	if err := s.db.installPIDTrigger(ctx); err != nil {
		return s, err
	}
	log.Info("starting moto")
	if s.moto, err = localstack.StartMoto(ctx); err != nil {
		return s, fmt.Errorf("the moto server could not start: %w", err)
	}
	if s.api, err = prefect.New(prefect.Config{URL: s.srv.URL, MaxRetries: 10}); err != nil {
		return s, err
	}
	awsCfg := aws.Config{Region: awsRegion, Credentials: credentials.NewStaticCredentialsProvider("test", "test", "")}
	s.ecs = ecs.NewFromConfig(awsCfg, func(o *ecs.Options) { o.BaseEndpoint = aws.String(s.moto.URL) })
	if _, err := s.ecs.CreateCluster(ctx, &ecs.CreateClusterInput{ClusterName: aws.String(s.cluster)}); err != nil {
		return s, fmt.Errorf("create ECS cluster %s in moto: %w", s.cluster, err)
	}
	// prefect-aws's own default, as `prefect work-pool create --type ecs`
	// would store it; pushpool serves it unchanged.
	if s.template, err = localstack.WorkerDefaultTemplate(ctx, "prefect_aws.workers:ECSWorker"); err != nil {
		return s, fmt.Errorf("prefect-aws's ECS worker is not importable, so the worker cannot start: %w", err)
	}
	return s, nil
}

// stop stops the servers and removes the temporary files.
func (s *stack) stop() error {
	var errs []error
	if s.moto != nil {
		errs = append(errs, s.moto.Stop())
	}
	if s.srv != nil {
		errs = append(errs, s.srv.Stop())
	}
	switch {
	case s.dir != "" && s.keep:
		s.log.Info("kept the contenders' logs", "dir", s.dir)
	case s.dir != "":
		errs = append(errs, os.RemoveAll(s.dir))
	}
	return errors.Join(errs...)
}

// describe is the line naming what the figures were measured against.
func (s *stack) describe() string {
	return fmt.Sprintf("Prefect %s on %s; moto; 127.0.0.1", s.srv.Version, s.srv.Postgres.Version)
}

// fixture is one contender's pool, with one deployment on the shared
// cluster.
type fixture struct {
	pool, poolID string
	dep          prefect.Deployment
}

// newFixture creates an ECS pool named after what (with Prefect's ECS
// template) and a deployment on it.
func (s *stack) newFixture(ctx context.Context, what string) (fixture, error) {
	s.mu.Lock()
	s.pools++
	name := fmt.Sprintf("pgbench-%02d-%s", s.pools, what)
	s.mu.Unlock()
	wp, err := s.api.CreateWorkPool(ctx, prefect.WorkPoolCreate{Name: name, Type: ecsbackend.PoolType, BaseJobTemplate: s.template})
	if err != nil {
		return fixture{}, fmt.Errorf("create work pool %s: %w", name, err)
	}
	flow, err := s.api.CreateFlow(ctx, "pgbench", nil)
	if err != nil {
		return fixture{}, fmt.Errorf("create flow: %w", err)
	}
	entrypoint := "flows/hello.py:hello"
	dep, err := s.api.CreateDeployment(ctx, prefect.DeploymentCreate{Name: name, FlowID: flow.ID, WorkPoolName: name,
		Entrypoint: &entrypoint, JobVariables: map[string]any{"cluster": s.cluster}})
	if err != nil {
		return fixture{}, fmt.Errorf("create deployment %s: %w", name, err)
	}
	return fixture{pool: name, poolID: wp.ID, dep: dep}, nil
}

// createRuns creates one run of the fixture's deployment per due time
// (nil: due at once), concurrency at a time, and returns their ids.
func (s *stack) createRuns(ctx context.Context, fx fixture, dues []*time.Time, concurrency int) ([]string, error) {
	started := time.Now()
	ids := make([]string, len(dues))
	errs := make([]error, len(dues))
	sem := make(chan struct{}, concurrency)
	var wg sync.WaitGroup
	for i, due := range dues {
		sem <- struct{}{}
		wg.Go(func() {
			defer func() { <-sem }()
			in := prefect.DeploymentFlowRunCreate{IdempotencyKey: uuid.NewString()}
			if due != nil {
				at := due.UTC()
				in.State = &prefect.StateCreate{Type: prefect.StateScheduled, Name: "Scheduled", StateDetails: prefect.StateDetails{ScheduledTime: &at}}
			}
			r, err := s.api.CreateFlowRunFromDeployment(ctx, fx.dep.ID, in)
			ids[i], errs[i] = r.ID, err
		})
	}
	wg.Wait()
	if err := errors.Join(errs...); err != nil {
		return nil, fmt.Errorf("create flow runs of %s: %w", fx.pool, err)
	}
	s.log.Info("created runs", "pool", fx.pool, "runs", len(dues), "took", time.Since(started).Round(time.Millisecond),
		"per_second", fmt.Sprintf("%.1f", rate(len(dues), time.Since(started))))
	return ids, nil
}

// dueNow is n nil due times: runs due at once.
func dueNow(n int) []*time.Time { return make([]*time.Time, n) }

// buildBootstrap builds functions/lambda as Lambda runs it (linux,
// -tags lambda.norpc, a static binary named bootstrap) into dir.
func buildBootstrap(ctx context.Context, root, dir string) (string, error) {
	bin := filepath.Join(dir, "bootstrap")
	cmd := exec.CommandContext(ctx, "go", "build", "-tags", "lambda.norpc", "-trimpath", "-o", bin, "./functions/lambda")
	cmd.Dir = root
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
	if out, err := cmd.CombinedOutput(); err != nil {
		return "", fmt.Errorf("build the Lambda bootstrap: %w\n%s", err, strings.TrimSpace(string(out)))
	}
	return bin, nil
}

// clientEnv is the environment of a contender process: the harness's own
// without any Prefect or AWS setting, plus the contender's.
func clientEnv(extra map[string]string) []string {
	var env []string
	for _, kv := range os.Environ() {
		if strings.HasPrefix(kv, "PREFECT_") || strings.HasPrefix(kv, "AWS_") || strings.HasPrefix(kv, "PUSHPOOL_") {
			continue
		}
		env = append(env, kv)
	}
	for k, v := range extra {
		env = append(env, k+"="+v)
	}
	return env
}

// awsEnv is the AWS part of a contender's environment: moto through the
// contender's counting proxy, with fake credentials.
func awsEnv(endpoint string) map[string]string {
	return map[string]string{
		"AWS_ENDPOINT_URL":          endpoint,
		"AWS_ACCESS_KEY_ID":         "test",
		"AWS_SECRET_ACCESS_KEY":     "test",
		"AWS_REGION":                awsRegion,
		"AWS_DEFAULT_REGION":        awsRegion,
		"AWS_EC2_METADATA_DISABLED": "true",
	}
}
