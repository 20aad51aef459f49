package main

import (
	"context"
	"fmt"
	"maps"
	"path/filepath"
	"strconv"
	"time"

	"github.com/pushpool/pushpool/internal/lambdaruntime"
)

// launch is what a contender is started with: its pool, and Prefect and
// AWS as reached through its own counting proxies.
type launch struct {
	fx         fixture
	prefectURL string // ends in /api
	awsURL     string
	// prefetch, when set, is the contender's prefetch
	// (PREFECT_WORKER_PREFETCH_SECONDS); nil leaves its default.
	prefetch *time.Duration
	// label names this run of the contender in file names.
	label string
}

// session is a started contender.
type session struct {
	proc *process
	// drive, when set, invokes the contender until done reports true
	// (the Lambda function's ticks); otherwise it works on its own.
	drive func(ctx context.Context, done func(context.Context) (bool, error)) error
	// close releases what the session holds besides the process.
	close func()
	// notes are said about the run in the report (the ticks it took).
	notes func() string
}

// contender is one way of dispatching a pool.
type contender struct {
	name  string
	start func(ctx context.Context, s *stack, l launch) (*session, error)
}

// workerContender is Prefect's own ECS worker from prefect-aws, as
// `prefect worker start --type ecs` runs it.
func workerContender() contender {
	return contender{name: "prefect worker (ecs)", start: func(ctx context.Context, s *stack, l launch) (*session, error) {
		home := filepath.Join(s.dir, "worker-home-"+l.label)
		env := map[string]string{
			"PREFECT_API_URL": l.prefectURL,
			"PREFECT_HOME":    home,
			// Its own default is on; nothing to tell the user here.
			"PREFECT_SERVER_ANALYTICS_ENABLED": "false",
		}
		for k, v := range awsEnv(l.awsURL) {
			env[k] = v
		}
		if l.prefetch != nil {
			env["PREFECT_WORKER_PREFETCH_SECONDS"] = strconv.FormatFloat(l.prefetch.Seconds(), 'f', -1, 64)
		}
		p, err := startProcess("the Prefect ECS worker", filepath.Join(s.venv, "bin", "prefect"),
			[]string{"worker", "start", "--pool", l.fx.pool, "--type", "ecs", "--name", "pgbench-" + l.label},
			clientEnv(env), s.dir, filepath.Join(s.dir, "worker-"+l.label+".log"))
		if err != nil {
			return nil, err
		}
		return &session{proc: p}, nil
	}}
}

// serveContender is `pushpool serve` of the -pushpool binary with its
// defaults.
func serveContender() contender { return serveContenderOf(nameServe, "", nil) }

// serveContenderOf is `pushpool serve` of binary bin ("" for -pushpool),
// with extra in its environment.
func serveContenderOf(name, bin string, extra map[string]string) contender {
	return contender{name: name, start: func(ctx context.Context, s *stack, l launch) (*session, error) {
		if bin == "" {
			bin = s.pushpool
		}
		args := []string{"serve", "--pool", l.fx.pool, "--name", "pgbench-" + l.label}
		if l.prefetch != nil {
			args = append(args, "--prefetch-seconds", strconv.FormatFloat(l.prefetch.Seconds(), 'f', -1, 64))
		}
		env := awsEnv(l.awsURL)
		env["PREFECT_API_URL"] = l.prefectURL
		env["HOME"] = filepath.Join(s.dir, "serve-home-"+l.label)
		maps.Copy(env, s.serveEnv)
		maps.Copy(env, extra)
		p, err := startProcess(name, bin, args, clientEnv(env), s.dir, filepath.Join(s.dir, "serve-"+l.label+".log"))
		if err != nil {
			return nil, err
		}
		return &session{proc: p}, nil
	}}
}

// lambdaInvocationTimeout is the Lambda function's invocation deadline in
// the bench: 300 s, as infra/aws deploys it.
const lambdaInvocationTimeout = 300 * time.Second

// lambdaContender is the Lambda function's bootstrap, invoked through a
// loopback Lambda Runtime API with scheduler ticks, one after the other,
// until the burst is dispatched. It has no fan-out queue
// (PUSHPOOL_QUEUE_URL unset), so each tick dispatches every due run
// itself and then runs the reconcile pass, as a function with no queue
// does.
func lambdaContender(invocationTimeout time.Duration) contender {
	return contender{name: "Lambda tick handler", start: func(ctx context.Context, s *stack, l launch) (*session, error) {
		rt, err := lambdaruntime.Start(ctx, s.log)
		if err != nil {
			return nil, err
		}
		env := awsEnv(l.awsURL)
		for k, v := range map[string]string{
			"AWS_LAMBDA_RUNTIME_API":          rt.Addr(),
			"_HANDLER":                        "bootstrap",
			"AWS_LAMBDA_FUNCTION_NAME":        "pushpool",
			"AWS_LAMBDA_FUNCTION_VERSION":     "$LATEST",
			"AWS_LAMBDA_FUNCTION_MEMORY_SIZE": "512",
			"PREFECT_API_URL":                 l.prefectURL,
			"PUSHPOOL_POOLS":                  l.fx.pool,
			"HOME":                            filepath.Join(s.dir, "lambda-home-"+l.label),
		} {
			env[k] = v
		}
		if l.prefetch != nil {
			env["PREFECT_WORKER_PREFETCH_SECONDS"] = strconv.FormatFloat(l.prefetch.Seconds(), 'f', -1, 64)
		}
		p, err := startProcess("the Lambda bootstrap", s.bootstrap, nil, clientEnv(env), s.dir, filepath.Join(s.dir, "lambda-"+l.label+".log"))
		if err != nil {
			rt.Close()
			return nil, err
		}
		var ticks []time.Duration
		return &session{
			proc:  p,
			close: rt.Close,
			drive: func(ctx context.Context, done func(context.Context) (bool, error)) error {
				for i := 1; ; i++ {
					began := time.Now()
					reply, err := rt.Invoke(ctx, fmt.Sprintf("pgbench-tick-%04d", i), s.tickEvent, invocationTimeout, p.done)
					if err != nil {
						return fmt.Errorf("tick %d: %w\n--- last lines of the bootstrap's log ---\n%s", i, err, p.logTail(20))
					}
					ticks = append(ticks, time.Since(began))
					if reply.Status != "response" {
						return fmt.Errorf("tick %d: the function answered %s: %s", i, reply.Status, reply.Payload)
					}
					ok, err := done(ctx)
					if err != nil || ok {
						return err
					}
				}
			},
			notes: func() string {
				return fmt.Sprintf("%d ticks back to back (%v), no fan-out queue", len(ticks), roundAll(ticks))
			},
		}, nil
	}}
}

// roundAll rounds durations to 100 ms for display.
func roundAll(ds []time.Duration) []time.Duration {
	out := make([]time.Duration, len(ds))
	for i, d := range ds {
		out[i] = d.Round(100 * time.Millisecond)
	}
	return out
}
