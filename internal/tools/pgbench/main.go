// Command pgbench is the PostgreSQL half of make bench: in one run it
// starts a throwaway PostgreSQL with a Prefect server on it and moto, and
// measures side by side, on the same server, how fast and at what cost a
// burst of due ECS runs is dispatched by
//
//   - the server's ceiling: a trivial client that only claims each run
//     (PENDING through orchestration) and records its infrastructure_pid,
//     at several concurrencies;
//   - Prefect's own ECS worker (prefect-aws), `prefect worker start`;
//   - `pushpool serve`;
//   - pushpool's Lambda function, its real bootstrap driven by a loopback
//     Lambda Runtime API with scheduler ticks;
//
// then the due-time lateness of the worker and of pushpool serve, with
// their default prefetch and with none, and the cost of reconcile passes
// over 1,000 RUNNING ECS runs. It prints the report and writes it to -o,
// which internal/tools/benchreport puts in bench/results.txt. Figures are
// reported, never asserted.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"log/slog"
	"os"
	"os/signal"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// options are pgbench's flags.
type options struct {
	pushpool     string
	pushpoolAll  string
	out          string
	scenarios    []string
	burstRuns    int
	ceiling      []ceilingVariant
	createConc   int
	burstTimeout time.Duration
	lateness     latenessConfig
	reconcile    int
	fleet        int
	keep         bool
	rounds       int
	// serveEnv is added to the environment of every `pushpool serve`.
	serveEnv map[string]string
}

// allScenarios returns the parts of a run, in the order they run.
func allScenarios() []string {
	return []string{"ceiling", "worker", "serve", "lambda", "lateness", "reconcile"}
}

func main() { os.Exit(run()) }

func run() int {
	logger := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelInfo}))
	opts, err := parseOptions(os.Args[1:])
	if err != nil {
		fmt.Fprintln(os.Stderr, "pgbench:", err)
		return 2
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	rep, err := measure(ctx, opts, logger)
	if rep != nil {
		var b strings.Builder
		if werr := rep.write(&b); werr != nil {
			err = errors.Join(err, werr)
		}
		fmt.Print(b.String())
		if err == nil && opts.out != "" {
			if werr := os.WriteFile(opts.out, []byte(b.String()), 0o644); werr != nil {
				err = fmt.Errorf("write %s: %w", opts.out, werr)
			}
		}
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "pgbench: FAILED:", err)
		return 1
	}
	return 0
}

// parseOptions reads the flags.
func parseOptions(args []string) (options, error) {
	o := options{lateness: latenessConfig{}}
	fs := flag.NewFlagSet("pgbench", flag.ContinueOnError)
	fs.StringVar(&o.pushpool, "pushpool", "bin/pushpool", "the pushpool binary `pushpool serve` runs from")
	fs.StringVar(&o.pushpoolAll, "pushpool-all", "", "a second pushpool binary (e.g. the all-backends build beside an ECS-only -pushpool) whose serve also takes the serve burst, reported apart")
	fs.StringVar(&o.out, "o", "", "also write the report to this file (for benchreport -pg)")
	only := fs.String("only", strings.Join(allScenarios(), ","), "comma-separated scenarios to run: "+strings.Join(allScenarios(), ", "))
	fs.IntVar(&o.burstRuns, "runs", 300, "runs per burst (each ceiling concurrency and each contender)")
	fs.IntVar(&o.rounds, "rounds", 3, "rounds of bursts: each round runs every ceiling variant and contender once, in turn; a row reports its median round")
	conc := fs.String("ceiling", "1,4,16,32", "concurrencies of the ceiling client")
	labelled := fs.String("ceiling-labels", "16", "concurrencies of the ceiling client that also labels each run as Prefect's workers do (empty: none)")
	readLabelled := fs.String("ceiling-read-labels", "16", "concurrencies of the ceiling client that also reads the due runs from the pool and labels each run (empty: none)")
	fs.IntVar(&o.createConc, "create-concurrency", 16, "concurrent API requests creating runs")
	fs.DurationVar(&o.burstTimeout, "burst-timeout", 8*time.Minute, "longest a contender may take to record a burst")
	fs.IntVar(&o.lateness.runs, "lateness-runs", 36, "runs per lateness variant")
	fs.DurationVar(&o.lateness.spread, "lateness-spread", 60*time.Second, "the lateness runs' due times scatter over this long")
	fs.DurationVar(&o.lateness.lead, "lateness-lead", 30*time.Second, "from the contenders' first poll to the earliest due time")
	fs.DurationVar(&o.lateness.tail, "lateness-tail", 45*time.Second, "how long after the last due time runs may still be claimed")
	fs.Uint64Var(&o.lateness.seed, "seed", 13, "seed of the lateness runs' due times")
	fs.IntVar(&o.reconcile, "reconcile-runs", 1000, "RUNNING runs of the reconcile scenario")
	fs.IntVar(&o.fleet, "reconcile-dispatchers", 8, "dispatchers reconciling at once")
	fs.Func("serve-env", "`NAME=VALUE` added to the environment of every pushpool serve (repeatable), e.g. to compare a setting", func(v string) error {
		name, value, ok := strings.Cut(v, "=")
		if !ok || name == "" {
			return fmt.Errorf("%q is not NAME=VALUE", v)
		}
		if o.serveEnv == nil {
			o.serveEnv = map[string]string{}
		}
		o.serveEnv[name] = value
		return nil
	})
	fs.BoolVar(&o.keep, "keep", false, "keep the contenders' logs (the temporary directory is printed)")
	if err := fs.Parse(args); err != nil {
		return o, err
	}
	for _, s := range strings.Split(*only, ",") {
		s = strings.TrimSpace(s)
		if !slices.Contains(allScenarios(), s) {
			return o, fmt.Errorf("-only: unknown scenario %q; want some of %s", s, strings.Join(allScenarios(), ", "))
		}
		o.scenarios = append(o.scenarios, s)
	}
	for _, list := range []struct {
		flag, value  string
		labels, read bool
	}{{"-ceiling", *conc, false, false}, {"-ceiling-labels", *labelled, true, false}, {"-ceiling-read-labels", *readLabelled, true, true}} {
		if strings.TrimSpace(list.value) == "" {
			continue
		}
		for _, s := range strings.Split(list.value, ",") {
			n, err := strconv.Atoi(strings.TrimSpace(s))
			if err != nil || n < 1 {
				return o, fmt.Errorf("%s: %q is not a positive concurrency", list.flag, s)
			}
			o.ceiling = append(o.ceiling, ceilingVariant{conc: n, labels: list.labels, read: list.read})
		}
	}
	if o.rounds < 1 {
		return o, errors.New("-rounds must be at least 1")
	}
	if o.burstRuns < 1 || o.lateness.runs < 1 || o.reconcile < 1 || o.fleet < 1 || o.createConc < 1 {
		return o, errors.New("-runs, -lateness-runs, -reconcile-runs, -reconcile-dispatchers and -create-concurrency must be positive")
	}
	abs, err := filepath.Abs(o.pushpool)
	if err != nil {
		return o, fmt.Errorf("-pushpool: %w", err)
	}
	o.pushpool = abs
	if o.pushpoolAll != "" {
		if o.pushpoolAll, err = filepath.Abs(o.pushpoolAll); err != nil {
			return o, fmt.Errorf("-pushpool-all: %w", err)
		}
	}
	return o, nil
}

// measure starts the stack and runs the chosen scenarios in order. The
// report holds what was measured even when a scenario failed.
func measure(ctx context.Context, opts options, log *slog.Logger) (*report, error) {
	began := time.Now()
	s, err := startStack(ctx, opts, log)
	defer func() {
		if s != nil {
			if err := s.stop(); err != nil {
				log.Warn("stopping the servers", "error", err)
			}
		}
	}()
	if err != nil {
		return nil, err
	}
	rep := &report{when: time.Now(), environment: s.describe(), burstRuns: opts.burstRuns, latenessCfg: opts.lateness}
	burst := burstConfig{runs: opts.burstRuns, createConc: opts.createConc, timeout: opts.burstTimeout, quietFor: 3 * time.Second, maxQuietFor: time.Minute}
	jobs := burstJobs(s, opts, burst)
	if len(jobs) > 0 {
		stepBegan := time.Now()
		ceiling, contenders, err := runRounds(ctx, jobs, opts.rounds, log)
		rep.ceiling, rep.contenders, rep.rounds = ceiling, contenders, opts.rounds
		if err != nil {
			return rep, err
		}
		log.Info("bursts done", "rounds", opts.rounds, "took", time.Since(stepBegan).Round(time.Second), "elapsed", time.Since(began).Round(time.Second))
	}
	for _, sc := range opts.scenarios {
		stepBegan := time.Now()
		switch sc {
		case "lateness":
			zero := time.Duration(0)
			variants := []latenessVariant{
				{name: "prefect worker, prefetch default (10 s)", contender: workerContender(), label: "late-worker"},
				{name: "prefect worker, prefetch 0", contender: workerContender(), prefetch: &zero, label: "late-worker-0"},
				{name: "pushpool serve, prefetch default (10 s)", contender: serveContender(), label: "late-serve"},
				{name: "pushpool serve, prefetch 0", contender: serveContender(), prefetch: &zero, label: "late-serve-0"},
			}
			res, err := runLateness(ctx, s, variants, opts.lateness)
			if err != nil {
				return rep, fmt.Errorf("lateness: %w", err)
			}
			rep.lateness = res
		case "reconcile":
			res, err := runReconcile(ctx, s, opts.reconcile, opts.fleet, opts.createConc)
			if err != nil {
				return rep, fmt.Errorf("reconcile: %w", err)
			}
			rep.reconcile = &res
		}
		log.Info("scenario done", "scenario", sc, "took", time.Since(stepBegan).Round(time.Second), "elapsed", time.Since(began).Round(time.Second))
	}
	return rep, nil
}
