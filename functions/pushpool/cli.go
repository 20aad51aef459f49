package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"runtime"
	"runtime/debug"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/pushpool/pushpool/dispatch"
	"github.com/pushpool/pushpool/dispatch/backend/process"
	"github.com/pushpool/pushpool/dispatch/backends"
	"github.com/pushpool/pushpool/dispatch/prefect"
	"github.com/pushpool/pushpool/dispatch/prefectenv"
	"github.com/pushpool/pushpool/dispatch/template"
)

const usage = `pushpool dispatches the due flow runs of a Prefect work pool, with no worker.

Usage:
  pushpool serve         --pool NAME [flags]   pass after pass until SIGINT/SIGTERM; wakes when a run is due
  pushpool dispatch-once --pool NAME [flags]   one pass, then a summary (for cron and cloud schedulers)
  pushpool render        --flow-run ID         print the job the run would get, secrets redacted
  pushpool version                             print the version

Connection settings are Prefect's own environment variables: PREFECT_API_URL
(or --api-url), PREFECT_API_KEY, PREFECT_API_AUTH_STRING and
PREFECT_CLIENT_CUSTOM_HEADERS. Secrets are read from the environment only.
Run "pushpool <command> -h" for a command's flags.
`

// exit codes
const (
	exitOK       = 0
	exitFailed   = 1 // the command ran and failed
	exitUsage    = 2 // bad flags or environment
	exitCrashing = 3 // dispatch-once: some runs crashed or errored
)

// run is the whole command; main only wires the process to it.
func run(ctx context.Context, hurry <-chan struct{}, args []string, lookup func(string) (string, bool), stdout, stderr io.Writer) int {
	if len(args) == 0 {
		fmt.Fprint(stderr, usage)
		return exitUsage
	}
	cmd, args := args[0], args[1:]
	switch cmd {
	case "version", "--version":
		fmt.Fprintln(stdout, versionLine())
		return exitOK
	case "help", "-h", "--help":
		fmt.Fprint(stdout, usage)
		return exitOK
	case "serve", "dispatch-once", "render":
	default:
		fmt.Fprintf(stderr, "pushpool: unknown command %q\n\n%s", cmd, usage)
		return exitUsage
	}
	opts, err := parseFlags(cmd, args, lookup, stderr)
	if errors.Is(err, flag.ErrHelp) {
		return exitOK
	}
	if err != nil {
		fmt.Fprintf(stderr, "pushpool %s: %v\n", cmd, err)
		return exitUsage
	}
	logger := newLogger(stderr, opts.logLevel, opts.logFormat)
	app, err := newApp(opts, lookup, logger)
	if err != nil {
		fmt.Fprintf(stderr, "pushpool %s: %v\n", cmd, err)
		return exitUsage
	}
	switch cmd {
	case "render":
		err = app.render(ctx, stdout)
	case "dispatch-once":
		var crashed bool
		crashed, err = app.dispatchOnce(ctx, hurry, stdout, stderr)
		if err == nil && crashed {
			return exitCrashing
		}
	case "serve":
		err = app.serve(ctx, hurry, stdout)
	}
	if err != nil {
		fmt.Fprintf(stderr, "pushpool %s: %v\n", cmd, err)
		return exitFailed
	}
	return exitOK
}

// options are the parsed flags of a command.
type options struct {
	apiURL          string
	pool            string
	flowRun         string
	workerName      string
	queues          []string
	prefetch        time.Duration
	readCache       time.Duration
	query           time.Duration
	reconcileEvery  time.Duration
	runLabels       bool
	heartbeat       time.Duration
	maxSubmissions  int
	maxRunsPerPass  int
	processStateDir string
	flowHeartbeat   time.Duration
	submitTimeout   time.Duration
	recordTimeout   time.Duration
	startTimeout    time.Duration
	claimTimeout    time.Duration
	maxRequeues     int
	templateEnv     []string
	wait            bool
	output          string
	logLevel        string
	logFormat       string
}

// stringList is a repeatable flag.
type stringList []string

func (l *stringList) String() string { return strings.Join(*l, ",") }
func (l *stringList) Set(v string) error {
	*l = append(*l, v)
	return nil
}

// envDefaults reads flag defaults from the environment, remembering the
// first bad value so the error names the variable.
type envDefaults struct {
	lookup func(string) (string, bool)
	err    error
}

func (e *envDefaults) str(name, def string) string {
	if v, ok := e.lookup(name); ok && strings.TrimSpace(v) != "" {
		return strings.TrimSpace(v)
	}
	return def
}

func (e *envDefaults) seconds(name string, def time.Duration) time.Duration {
	v := e.str(name, "")
	if v == "" {
		return def
	}
	f, err := strconv.ParseFloat(v, 64)
	if err != nil || f < 0 {
		if e.err == nil {
			e.err = fmt.Errorf("environment variable %s is %q; it must be a number of seconds, like 10 or 2.5", name, v)
		}
		return def
	}
	return time.Duration(f * float64(time.Second))
}

func (e *envDefaults) integer(name string, def int) int {
	v := e.str(name, "")
	if v == "" {
		return def
	}
	n, err := strconv.Atoi(v)
	if err != nil {
		if e.err == nil {
			e.err = fmt.Errorf("environment variable %s is %q; it must be a whole number", name, v)
		}
		return def
	}
	return n
}

func (e *envDefaults) boolean(name string, def bool) bool {
	v := e.str(name, "")
	if v == "" {
		return def
	}
	b, ok := prefectenv.ParseBool(v)
	if !ok {
		if e.err == nil {
			e.err = fmt.Errorf("environment variable %s is %q; it must be true or false", name, v)
		}
		return def
	}
	return b
}

// secondsFlag is a duration flag given in seconds, as Prefect's CLI does.
type secondsFlag struct{ d *time.Duration }

func (s secondsFlag) String() string {
	if s.d == nil {
		return ""
	}
	return strconv.FormatFloat(s.d.Seconds(), 'f', -1, 64)
}

func (s secondsFlag) Set(v string) error {
	f, err := strconv.ParseFloat(v, 64)
	if err != nil || f < 0 {
		return fmt.Errorf("%q is not a number of seconds", v)
	}
	*s.d = time.Duration(f * float64(time.Second))
	return nil
}

func defaultStateDir() string {
	dir, err := os.UserCacheDir()
	if err != nil {
		dir = os.TempDir()
	}
	return filepath.Join(dir, "pushpool", "process")
}

func parseFlags(cmd string, args []string, lookup func(string) (string, bool), stderr io.Writer) (options, error) {
	env := &envDefaults{lookup: lookup}
	o := options{
		apiURL:          env.str(prefect.EnvAPIURL, ""),
		pool:            env.str("PREFECT_DEFAULT_WORK_POOL_NAME", ""),
		workerName:      env.str("PUSHPOOL_WORKER_NAME", "pushpool"),
		prefetch:        env.seconds("PREFECT_WORKER_PREFETCH_SECONDS", dispatch.DefaultLookahead),
		readCache:       env.seconds("PUSHPOOL_READ_CACHE_SECONDS", dispatch.DefaultReadCacheTTL),
		query:           env.seconds("PREFECT_WORKER_QUERY_SECONDS", 10*time.Second),
		reconcileEvery:  env.seconds("PUSHPOOL_RECONCILE_SECONDS", dispatch.DefaultReconcileInterval),
		heartbeat:       env.seconds("PREFECT_WORKER_HEARTBEAT_SECONDS", 30*time.Second),
		maxSubmissions:  env.integer("PUSHPOOL_MAX_CONCURRENT_SUBMISSIONS", 16),
		maxRunsPerPass:  env.integer("PUSHPOOL_MAX_RUNS_PER_PASS", 0),
		processStateDir: env.str("PUSHPOOL_PROCESS_STATE_DIR", defaultStateDir()),
		flowHeartbeat:   env.seconds("PREFECT_FLOWS_HEARTBEAT_FREQUENCY", 180*time.Second),
		submitTimeout:   env.seconds("PUSHPOOL_SUBMIT_TIMEOUT_SECONDS", 0),
		recordTimeout:   env.seconds("PUSHPOOL_RECORD_TIMEOUT_SECONDS", 0),
		startTimeout:    env.seconds("PUSHPOOL_START_TIMEOUT_SECONDS", 0),
		claimTimeout:    env.seconds("PUSHPOOL_CLAIM_TIMEOUT_SECONDS", 0),
		maxRequeues:     env.integer("PUSHPOOL_MAX_REQUEUES", 5),
		runLabels:       env.boolean(dispatch.EnvRunLabels, true),
		logLevel:        env.str("PREFECT_LOGGING_LEVEL", "INFO"),
		logFormat:       env.str("PUSHPOOL_LOG_FORMAT", "text"),
		output:          "table",
	}
	if env.err != nil {
		return o, env.err
	}
	if v, ok := lookup(dispatch.EnvTemplateEnv); ok {
		list, err := dispatch.ParseTemplateEnv(v)
		if err != nil {
			return o, err
		}
		o.templateEnv = list
	}
	var queues stringList
	fs := flag.NewFlagSet("pushpool "+cmd, flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.StringVar(&o.apiURL, "api-url", o.apiURL, "Prefect API URL, e.g. http://127.0.0.1:4200/api [PREFECT_API_URL]")
	fs.StringVar(&o.logLevel, "log-level", o.logLevel, "DEBUG, INFO, WARNING or ERROR [PREFECT_LOGGING_LEVEL]")
	fs.StringVar(&o.logFormat, "log-format", o.logFormat, "text or json [PUSHPOOL_LOG_FORMAT]")
	fs.StringVar(&o.workerName, "name", o.workerName, "worker name shown in the pool and on every run [PUSHPOOL_WORKER_NAME]")
	if cmd == "render" {
		fs.StringVar(&o.flowRun, "flow-run", "", "id of the flow run to render")
	} else {
		fs.StringVar(&o.pool, "pool", o.pool, "work pool to dispatch [PREFECT_DEFAULT_WORK_POOL_NAME]")
		fs.StringVar(&o.pool, "p", o.pool, "shorthand for --pool")
		fs.Var(&queues, "work-queue", "only these queues of the pool (repeatable); default all, in priority order")
		fs.Var(&queues, "q", "shorthand for --work-queue")
		fs.Var(secondsFlag{&o.prefetch}, "prefetch-seconds", "claim runs due within this many seconds; 0 claims them once due [PREFECT_WORKER_PREFETCH_SECONDS]")
		fs.Var(secondsFlag{&o.readCache}, "read-cache-seconds", "reuse pool, deployment, flow, variable and block reads this long across passes; 0 reads them every pass [PUSHPOOL_READ_CACHE_SECONDS]")
		fs.Var(secondsFlag{&o.heartbeat}, "heartbeat-seconds", "worker heartbeat interval announced to Prefect [PREFECT_WORKER_HEARTBEAT_SECONDS]")
		fs.IntVar(&o.maxSubmissions, "max-concurrent-submissions", o.maxSubmissions, "runs submitted at once in one pass [PUSHPOOL_MAX_CONCURRENT_SUBMISSIONS]")
		fs.IntVar(&o.maxRunsPerPass, "max-runs-per-pass", o.maxRunsPerPass, "runs claimed by one pass, 0 for no bound [PUSHPOOL_MAX_RUNS_PER_PASS]")
		fs.Var(secondsFlag{&o.flowHeartbeat}, "flow-heartbeat-seconds", "how often flow runs send heartbeats; a RUNNING run silent for 3 times this is crashed [PREFECT_FLOWS_HEARTBEAT_FREQUENCY]")
		fs.Var(secondsFlag{&o.submitTimeout}, "submit-timeout-seconds", "longest a claimed run's job may take to start (render and submit); 0 for 120 [PUSHPOOL_SUBMIT_TIMEOUT_SECONDS]")
		fs.Var(secondsFlag{&o.recordTimeout}, "record-timeout-seconds", "longest a claim, and then recording its outcome, may take; 0 for 60 [PUSHPOOL_RECORD_TIMEOUT_SECONDS]")
		fs.Var(secondsFlag{&o.startTimeout}, "start-timeout-seconds", "a run whose infrastructure is still pending after this long is crashed, unless its job sets task_start_timeout_seconds; 0 for 300 [PUSHPOOL_START_TIMEOUT_SECONDS]")
		fs.Var(secondsFlag{&o.claimTimeout}, "claim-timeout-seconds", "a claim with no infrastructure recorded after this long is recovered (its dispatcher died); must exceed 2 record timeouts and a submit timeout; 0 for 300 [PUSHPOOL_CLAIM_TIMEOUT_SECONDS]")
		fs.IntVar(&o.maxRequeues, "max-requeues", o.maxRequeues, "times in a row a run whose job cannot start yet (throttling, quota) goes back to the schedule before it is crashed; 0 crashes it at once [PUSHPOOL_MAX_REQUEUES]")
		fs.BoolVar(&o.runLabels, "run-labels", o.runLabels, "label each claimed run as Prefect's workers do (prefect.worker.*, prefect.work-pool.*) and with its attempt; false saves one Prefect request per run [PUSHPOOL_RUN_LABELS]")
		fs.StringVar(&o.processStateDir, "process-state-dir", o.processStateDir, "process pools: where run records, output and exit codes are kept [PUSHPOOL_PROCESS_STATE_DIR]")
		if cmd == "serve" {
			fs.Var(secondsFlag{&o.query}, "query-seconds", "longest wait between passes [PREFECT_WORKER_QUERY_SECONDS]")
			fs.Var(secondsFlag{&o.reconcileEvery}, "reconcile-seconds", "wait between reconcile passes, which run beside dispatch passes [PUSHPOOL_RECONCILE_SECONDS]")
		} else {
			fs.BoolVar(&o.wait, "wait", false, "process pools: wait for the started processes to exit")
			fs.StringVar(&o.output, "output", o.output, "summary format: table or json")
		}
	}
	if err := fs.Parse(args); err != nil {
		return o, err
	}
	o.queues = queues
	if fs.NArg() > 0 {
		return o, fmt.Errorf("unexpected argument %q; every option is a flag", fs.Arg(0))
	}
	switch {
	case o.apiURL == "":
		return o, errors.New("no Prefect API URL: set PREFECT_API_URL or --api-url (e.g. http://127.0.0.1:4200/api)")
	case cmd == "render" && o.flowRun == "":
		return o, errors.New("--flow-run is required: the id of the flow run to render")
	case cmd != "render" && o.pool == "":
		return o, errors.New("no work pool: set --pool or PREFECT_DEFAULT_WORK_POOL_NAME")
	case o.output != "table" && o.output != "json":
		return o, fmt.Errorf("--output is %q; it must be table or json", o.output)
	case o.logFormat != "text" && o.logFormat != "json":
		return o, fmt.Errorf("--log-format is %q; it must be text or json", o.logFormat)
	}
	if _, err := parseLevel(o.logLevel); err != nil {
		return o, err
	}
	return o, nil
}

func parseLevel(s string) (slog.Level, error) {
	switch strings.ToUpper(s) {
	case "DEBUG":
		return slog.LevelDebug, nil
	case "INFO":
		return slog.LevelInfo, nil
	case "WARNING", "WARN":
		return slog.LevelWarn, nil
	case "ERROR", "CRITICAL":
		return slog.LevelError, nil
	}
	return 0, fmt.Errorf("log level %q is not one of DEBUG, INFO, WARNING, ERROR", s)
}

func newLogger(w io.Writer, level, format string) *slog.Logger {
	lvl, _ := parseLevel(level)
	hopts := &slog.HandlerOptions{Level: lvl}
	if format == "json" {
		return slog.New(slog.NewJSONHandler(w, hopts))
	}
	return slog.New(slog.NewTextHandler(w, hopts))
}

// app is a connected command: the Prefect client and the settings.
type app struct {
	opts   options
	conn   prefect.Config // as read from the environment, for the jobs' settings
	api    *prefect.Client
	lookup func(string) (string, bool)
	log    *slog.Logger
}

func newApp(opts options, lookup func(string) (string, bool), logger *slog.Logger) (*app, error) {
	cfg, err := prefect.ConfigFromEnv(lookup)
	if err != nil {
		return nil, err
	}
	cfg.URL = opts.apiURL
	cfg.UserAgent = "pushpool/" + moduleVersion()
	cfg.Logger = logger
	api, err := prefect.New(cfg)
	if err != nil {
		return nil, err
	}
	return &app{opts: opts, conn: cfg, api: api, lookup: lookup, log: logger}, nil
}

// settingsEnv is what a worker passes its jobs of its own Prefect settings:
// every setting in the environment (prefectenv), and the API URL, key and
// auth string the command connects with.
func (a *app) settingsEnv() map[string]string {
	env := prefectenv.ForJobs(a.lookup)
	env[prefect.EnvAPIURL] = a.conn.URL
	if a.conn.APIKey != "" {
		env[prefect.EnvAPIKey] = a.conn.APIKey
	}
	if a.conn.AuthString != "" {
		env[prefect.EnvAuthString] = a.conn.AuthString
	}
	return env
}

func (a *app) dispatcher(backend dispatch.Backend) (*dispatch.Dispatcher, error) {
	return dispatch.New(dispatch.Config{
		WorkerName:               a.opts.workerName,
		WorkQueues:               a.opts.queues,
		Lookahead:                a.opts.prefetch,
		ReadCacheTTL:             a.opts.readCache,
		NoRunLabels:              !a.opts.runLabels,
		MaxConcurrentSubmissions: a.opts.maxSubmissions,
		MaxRunsPerPass:           a.opts.maxRunsPerPass,
		HeartbeatInterval:        a.opts.heartbeat,
		SubmitTimeout:            a.opts.submitTimeout,
		RecordTimeout:            a.opts.recordTimeout,
		StartTimeout:             a.opts.startTimeout,
		MaxRequeues:              requeues(a.opts.maxRequeues),
		SettingsEnv:              a.settingsEnv(),
		LookupEnv:                a.lookup,
		TemplateEnv:              a.opts.templateEnv,
	}, a.api, backend, a.log)
}

// backend builds the Backend for a pool by its type, from the backends
// the build links (backends.go).
// stream receives the output of process jobs; local is the process backend,
// when it is one, whose children serve waits for on shutdown.
func (a *app) backend(ctx context.Context, pool prefect.WorkPool, stream io.Writer) (b dispatch.Backend, local *process.Backend, err error) {
	b, err = linked().For(ctx, pool, backends.Settings{Lookup: a.lookup, ProcessStateDir: a.opts.processStateDir, Output: stream, Logger: a.log})
	if err != nil {
		return nil, nil, err
	}
	local, _ = b.(*process.Backend)
	return b, local, nil
}

// connect reads the pool (one clear error for a wrong URL, credentials or
// pool name) and builds its dispatcher.
func (a *app) connect(ctx context.Context, stream io.Writer) (*dispatch.Dispatcher, *process.Backend, error) {
	pool, err := a.api.ReadWorkPool(ctx, a.opts.pool)
	if err != nil {
		if prefect.IsNotFound(err) {
			return nil, nil, fmt.Errorf("work pool %q does not exist at %s: create it (prefect work-pool create, or the prefect_work_pool Terraform resource) or fix --pool", a.opts.pool, a.api.URL())
		}
		return nil, nil, fmt.Errorf("read work pool %q: %w", a.opts.pool, err)
	}
	backend, local, err := a.backend(ctx, pool, stream)
	if err != nil {
		return nil, nil, err
	}
	d, err := a.dispatcher(backend)
	return d, local, err
}

func (a *app) reconciler(d *dispatch.Dispatcher) (*dispatch.Reconciler, error) {
	return dispatch.NewReconciler(d, dispatch.ReconcileConfig{FlowHeartbeatFrequency: a.opts.flowHeartbeat, ClaimTimeout: a.opts.claimTimeout})
}

// logReconcile logs what a reconcile pass did, when it did anything.
func (a *app) logReconcile(res dispatch.ReconcileResult) {
	for _, c := range res.Runs {
		a.log.Info("flow run reconciled", slog.String("flow_run_id", c.FlowRunID), slog.String("action", string(c.Action)), slog.String("message", c.Message))
	}
}

func (a *app) render(ctx context.Context, stdout io.Writer) error {
	// Rendering starts nothing, so any pool type can be shown.
	d, err := a.dispatcher(nil)
	if err != nil {
		return err
	}
	job, err := d.Render(ctx, a.opts.flowRun)
	if err != nil {
		return err
	}
	enc := json.NewEncoder(stdout)
	enc.SetIndent("", "  ")
	return enc.Encode(map[string]any{
		"flow_run_id": job.FlowRunID, "flow_run_name": job.FlowRunName, "flow_name": job.FlowName,
		"work_pool": job.WorkPool, "work_pool_type": job.WorkPoolType,
		"job_configuration": job.Configuration,
	})
}

func (a *app) dispatchOnce(ctx context.Context, hurry <-chan struct{}, stdout, stderr io.Writer) (crashed bool, err error) {
	var stream io.Writer
	if a.opts.wait {
		stream = stderr
	}
	d, local, err := a.connect(ctx, stream)
	if err != nil {
		return false, err
	}
	rec, err := a.reconciler(d)
	if err != nil {
		return false, err
	}
	res, err := d.RunOnce(ctx, a.opts.pool)
	if err != nil {
		return false, err
	}
	rres, err := rec.RunOnce(ctx, a.opts.pool)
	if err != nil {
		return false, err
	}
	a.logReconcile(rres)
	if err := writeSummary(stdout, res, a.opts.output); err != nil {
		return false, err
	}
	if a.opts.wait && local != nil {
		a.waitLocal(hurry, local)
	}
	return res.Count(dispatch.Crashed)+res.Count(dispatch.Errored) > 0, nil
}

func (a *app) serve(ctx context.Context, hurry <-chan struct{}, stdout io.Writer) error {
	d, local, err := a.connect(ctx, stdout)
	if err != nil {
		return err
	}
	rec, err := a.reconciler(d)
	if err != nil {
		return err
	}
	a.log.Info("serving work pool", slog.String("work_pool", a.opts.pool), slog.String("api_url", a.api.URL()),
		slog.Duration("prefetch", a.opts.prefetch), slog.Duration("poll_interval", a.opts.query))
	total := map[dispatch.Outcome]int{}
	err = d.Serve(ctx, a.opts.pool, dispatch.ServeConfig{
		PollInterval:      a.opts.query,
		ReconcileInterval: a.opts.reconcileEvery,
		Reconciler:        rec,
		OnReconcile:       a.logReconcile,
		OnPass: func(res dispatch.PassResult) {
			if len(res.Runs) == 0 {
				return
			}
			attrs := []any{slog.Int("due", res.Polled)}
			for _, o := range dispatch.Outcomes() {
				if n := res.Count(o); n > 0 {
					total[o] += n
					attrs = append(attrs, slog.Int(string(o), n))
				}
			}
			a.log.Info("dispatch pass", attrs...)
		},
	})
	attrs := []any{}
	for _, o := range dispatch.Outcomes() {
		attrs = append(attrs, slog.Int(string(o), total[o]))
	}
	a.log.Info("stopped dispatching", attrs...)
	if local != nil {
		a.waitLocal(hurry, local)
	}
	return err
}

// waitLocal waits for the flow-run processes this command started; hurry
// (a second SIGINT/SIGTERM) stops them instead.
func (a *app) waitLocal(hurry <-chan struct{}, local *process.Backend) {
	if n := len(local.Running()); n > 0 {
		a.log.Info("waiting for flow-run processes to exit; signal again to stop them", slog.Int("processes", n))
	}
	done := make(chan struct{})
	go func() { local.Wait(); close(done) }()
	select {
	case <-done:
	case <-hurry:
		a.log.Warn("stopping flow-run processes", slog.Int("processes", len(local.Running())))
		if err := local.StopAll(context.Background()); err != nil {
			a.log.Error("could not stop every flow-run process", slog.String("error", err.Error()))
		}
		<-done
	}
}

// summaryRow is one run of a dispatch-once summary.
type summaryRow struct {
	FlowRunID        string  `json:"flow_run_id"`
	FlowRunName      string  `json:"flow_run_name"`
	Outcome          string  `json:"outcome"`
	DueAt            string  `json:"due_at,omitempty"`
	SubmittedVsDue   float64 `json:"submitted_vs_due_seconds,omitempty"`
	InfrastructureID string  `json:"infrastructure_id,omitempty"`
	Error            string  `json:"error,omitempty"`
}

func writeSummary(w io.Writer, res dispatch.PassResult, format string) error {
	rows := make([]summaryRow, 0, len(res.Runs))
	for _, r := range res.Runs {
		row := summaryRow{FlowRunID: r.FlowRunID, FlowRunName: r.FlowRunName, Outcome: string(r.Outcome), InfrastructureID: r.InfrastructureID}
		if !r.DueAt.IsZero() {
			row.DueAt = r.DueAt.UTC().Format(time.RFC3339)
		}
		if !r.SubmittedAt.IsZero() && !r.DueAt.IsZero() {
			row.SubmittedVsDue = r.SubmittedAt.Sub(r.DueAt).Seconds()
		}
		if r.Err != nil {
			row.Error = r.Err.Error()
		}
		rows = append(rows, row)
	}
	if format == "json" {
		return json.NewEncoder(w).Encode(map[string]any{"work_pool": res.Pool, "polled": res.Polled, "runs": rows})
	}
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintf(tw, "work pool %q: %d due run(s)\n", res.Pool, res.Polled)
	if len(rows) > 0 {
		fmt.Fprintln(tw, "FLOW RUN\tID\tOUTCOME\tDUE\tSUBMITTED VS DUE\tINFRASTRUCTURE / ERROR")
	}
	for _, r := range rows {
		detail := r.InfrastructureID
		if r.Error != "" {
			detail = r.Error
		}
		delta := "-"
		if r.Outcome == string(dispatch.Submitted) {
			delta = fmt.Sprintf("%+.2fs", r.SubmittedVsDue)
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\n", r.FlowRunName, r.FlowRunID, r.Outcome, r.DueAt, delta, detail)
	}
	return tw.Flush()
}

// moduleVersion is the version the binary was built at: a release tag, or
// "devel" with the commit when built from a checkout.
func moduleVersion() string {
	info, ok := debug.ReadBuildInfo()
	if !ok {
		return "unknown"
	}
	v := info.Main.Version
	if v == "" || v == "(devel)" {
		v = "devel"
		for _, s := range info.Settings {
			if s.Key == "vcs.revision" && len(s.Value) >= 12 {
				v += "+" + s.Value[:12]
			}
		}
	}
	return v
}

func versionLine() string {
	return fmt.Sprintf("pushpool %s (%s, %s/%s); jobs rendered as by Prefect %s workers; pool types: %s",
		moduleVersion(), runtime.Version(), runtime.GOOS, runtime.GOARCH, template.PrefectVersion, strings.Join(linked().Types(), ", "))
}

// requeues maps the --max-requeues count, where 0 means none, to
// dispatch.Config.MaxRequeues, where 0 means the default and a negative
// value none.
func requeues(n int) int {
	if n <= 0 {
		return -1
	}
	return n
}
