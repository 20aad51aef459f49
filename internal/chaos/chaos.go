// Package chaos proves pushpool's attempt contract under kills and faults:
// several `pushpool serve` processes dispatch one ECS pool of a real Prefect
// server on PostgreSQL onto moto, both reached through fault-injecting
// proxies (5xx answers, resets after the request was applied, delays),
// while dispatchers are SIGKILLed and restarted at random. At the end every
// flow run must have started exactly once (one ECS task) and none may be
// lost (Scheduled past due, or Pending without infrastructure).
package chaos

import (
	"context"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/ecs"
	"github.com/google/uuid"

	ecsbackend "github.com/pushpool/pushpool/dispatch/backend/ecs"
	"github.com/pushpool/pushpool/dispatch/prefect"
	"github.com/pushpool/pushpool/internal/faultproxy"
	"github.com/pushpool/pushpool/internal/localstack"
)

// Config sizes a chaos run.
type Config struct {
	// Pushpool is the path of the pushpool binary the dispatchers run.
	Pushpool string
	// Runs is how many flow runs are dispatched; Dispatchers how many
	// `pushpool serve` processes share the pool.
	Runs, Dispatchers int
	// Spread spreads the runs' due times over this long from the start.
	Spread time.Duration
	// FaultRate is the share of requests (to Prefect and to AWS) that get a
	// fault: split evenly between a 503 answer, a reset after the request
	// was applied, and a delay of up to MaxDelay.
	FaultRate float64
	MaxDelay  time.Duration
	// KillEvery is the mean time between SIGKILLs of a random dispatcher
	// while runs are being dispatched; a killed dispatcher is restarted
	// after up to a second.
	KillEvery time.Duration
	// RecordTimeout, SubmitTimeout and ClaimTimeout are the dispatchers'
	// (short, so abandoned claims are recovered within the run).
	RecordTimeout, SubmitTimeout, ClaimTimeout time.Duration
	// Deadline bounds the whole run after the runs were created.
	Deadline time.Duration
	// Seed seeds the faults and the kills.
	Seed uint64
	// Log receives progress lines; nil discards them.
	Log io.Writer
}

// Defaults of the full form (make chaos).
func (c *Config) fillDefaults() {
	if c.Runs == 0 {
		c.Runs = 1000
	}
	if c.Dispatchers == 0 {
		c.Dispatchers = 8
	}
	if c.FaultRate == 0 {
		c.FaultRate = 0.12
	}
	if c.MaxDelay == 0 {
		c.MaxDelay = 400 * time.Millisecond
	}
	if c.KillEvery == 0 {
		c.KillEvery = 3 * time.Second
	}
	if c.RecordTimeout == 0 {
		c.RecordTimeout = 8 * time.Second
	}
	if c.SubmitTimeout == 0 {
		c.SubmitTimeout = 10 * time.Second
	}
	if c.ClaimTimeout == 0 {
		c.ClaimTimeout = 2*c.RecordTimeout + c.SubmitTimeout + 5*time.Second
	}
	if c.Deadline == 0 {
		c.Deadline = 15 * time.Minute
	}
	if c.Seed == 0 {
		c.Seed = uint64(time.Now().UnixNano())
	}
	if c.Log == nil {
		c.Log = io.Discard
	}
}

// Report is what a chaos run found.
type Report struct {
	// Seed is the seed of the faults and kills, to repeat the run.
	Seed              uint64
	Runs, Dispatchers int
	Kills             int
	// PrefectFaults and AWSFaults are the proxies' counters while faults
	// were on (until every run had been claimed).
	PrefectFaults, AWSFaults faultproxy.Stats
	// Submitted runs have their task recorded; Crashed ended Crashed.
	Submitted, Crashed int
	CrashReasons       map[string]int
	// Duplicates are runs with more than one ECS task (started twice); Lost
	// are runs left Scheduled past due or Pending/Running without
	// infrastructure; Mismatched runs record a task that is not theirs.
	Duplicates, Lost, Mismatched []string
	// Rescheduled and Requeued count what the dispatchers did: abandoned
	// claims put back to the schedule, and starts put back after retryable
	// errors. RecoveryLocks counts the PENDING states recoveries of
	// abandoned claims proposed (the winners', and those that lost a race or
	// came late). DoubleRecoveries counts a claim rescheduled twice (must be
	// none).
	Rescheduled, Requeued, RecoveryLocks, DoubleRecoveries int
	// Tasks is how many ECS tasks moto holds for the runs.
	Tasks int
	// Details shows the state histories of up to five failing runs.
	Details []string
	// Dispatched is how long it took from the first run's due time until
	// every run was settled.
	Dispatched time.Duration
}

// OK reports whether every run started exactly once and none was lost.
func (r Report) OK() bool {
	return len(r.Duplicates) == 0 && len(r.Lost) == 0 && len(r.Mismatched) == 0 && r.DoubleRecoveries == 0
}

// String is the report as printed by make chaos.
func (r Report) String() string {
	var b strings.Builder
	verdict := "OK: every run started exactly once, none lost"
	if !r.OK() {
		verdict = "FAILED"
	}
	fmt.Fprintf(&b, "chaos: %s (seed %d)\n", verdict, r.Seed)
	fmt.Fprintf(&b, "  runs            %d (submitted %d, crashed %d) in %s\n", r.Runs, r.Submitted, r.Crashed, r.Dispatched.Round(time.Second))
	fmt.Fprintf(&b, "  dispatchers     %d, SIGKILLed %d times\n", r.Dispatchers, r.Kills)
	fmt.Fprintf(&b, "  prefect faults  %s\n", r.PrefectFaults)
	fmt.Fprintf(&b, "  aws faults      %s\n", r.AWSFaults)
	fmt.Fprintf(&b, "  ecs tasks       %d\n", r.Tasks)
	fmt.Fprintf(&b, "  duplicates      %d %s\n", len(r.Duplicates), short(r.Duplicates))
	fmt.Fprintf(&b, "  lost            %d %s\n", len(r.Lost), short(r.Lost))
	fmt.Fprintf(&b, "  mismatched      %d %s\n", len(r.Mismatched), short(r.Mismatched))
	fmt.Fprintf(&b, "  recoveries      %d abandoned claims rescheduled (%d rescheduled twice), %d recovery locks proposed\n", r.Rescheduled, r.DoubleRecoveries, r.RecoveryLocks)
	fmt.Fprintf(&b, "  requeued        %d\n", r.Requeued)
	for _, d := range r.Details {
		fmt.Fprintf(&b, "  %s\n", d)
	}
	reasons := make([]string, 0, len(r.CrashReasons))
	for k := range r.CrashReasons {
		reasons = append(reasons, k)
	}
	sort.Strings(reasons)
	for _, k := range reasons {
		fmt.Fprintf(&b, "  crashed %4d×   %s\n", r.CrashReasons[k], k)
	}
	return b.String()
}

func short(ids []string) string {
	if len(ids) == 0 {
		return ""
	}
	if len(ids) > 5 {
		return fmt.Sprintf("%v …", ids[:5])
	}
	return fmt.Sprint(ids)
}

// Run runs the chaos test: it starts PostgreSQL, a Prefect server on it,
// moto and two fault proxies, creates a pool, a deployment and the runs,
// serves the pool with Dispatchers processes while killing them, then
// stops the faults, lets every run settle and checks the outcome.
func Run(ctx context.Context, cfg Config) (Report, error) {
	cfg.fillDefaults()
	rep := Report{Seed: cfg.Seed, Runs: cfg.Runs, Dispatchers: cfg.Dispatchers, CrashReasons: map[string]int{}}
	logf := func(format string, args ...any) {
		fmt.Fprintf(cfg.Log, "chaos: "+format+"\n", args...)
	}
	if claimLife := 2*cfg.RecordTimeout + cfg.SubmitTimeout; cfg.ClaimTimeout <= claimLife {
		return rep, fmt.Errorf("chaos config: ClaimTimeout %s must exceed two record timeouts and a submit timeout (%s)", cfg.ClaimTimeout, claimLife)
	}

	logf("starting PostgreSQL, a Prefect server on it, and moto")
	srv, err := localstack.StartPrefectOnPostgres(ctx, localstack.PrefectOptions{}, localstack.PostgresOptions{})
	if err != nil {
		return rep, fmt.Errorf("start Prefect on PostgreSQL: %w", err)
	}
	defer srv.Stop()
	moto, err := localstack.StartMoto(ctx)
	if err != nil {
		return rep, fmt.Errorf("start moto: %w", err)
	}
	defer moto.Stop()

	third := cfg.FaultRate / 3
	prefectProxy, err := faultproxy.New(faultproxy.Config{Upstream: strings.TrimSuffix(srv.URL, "/api"),
		Reject5xx: third, ResetAfter: third, Delay: third, MaxDelay: cfg.MaxDelay, Seed: cfg.Seed})
	if err != nil {
		return rep, err
	}
	awsProxy, err := faultproxy.New(faultproxy.Config{Upstream: moto.URL,
		Reject5xx: third, ResetAfter: third, Delay: third, MaxDelay: cfg.MaxDelay, Seed: cfg.Seed + 1})
	if err != nil {
		return rep, err
	}
	for _, p := range []*faultproxy.Proxy{prefectProxy, awsProxy} {
		if err := p.Start(ctx); err != nil {
			return rep, fmt.Errorf("start a fault proxy: %w", err)
		}
		defer p.Close()
	}

	// The harness itself talks to both peers directly, without faults.
	api, err := prefect.New(prefect.Config{URL: srv.URL, MaxRetries: 10})
	if err != nil {
		return rep, err
	}
	pool, dep, err := setUp(ctx, api, moto.URL, logf)
	if err != nil {
		return rep, err
	}

	dir, err := os.MkdirTemp("", "pushpool-chaos-")
	if err != nil {
		return rep, err
	}
	defer os.RemoveAll(dir)
	fleet := &fleet{cfg: cfg, dir: dir, pool: pool, prefectURL: prefectProxy.URL() + "/api", awsURL: awsProxy.URL(), logf: logf,
		rng: rand.New(rand.NewPCG(cfg.Seed, cfg.Seed^0x9e3779b97f4a7c15))}
	ctx, cancel := context.WithTimeout(ctx, cfg.Deadline)
	defer cancel()
	for i := range cfg.Dispatchers {
		if err := fleet.start(i); err != nil {
			return rep, err
		}
	}
	defer fleet.stopAll()

	// The runs arrive while the dispatchers serve the pool, due over Spread
	// from a few seconds from now (those created after their due time are
	// due at once), as a burst of scheduled runs arrives in production.
	start := time.Now()
	logf("%d dispatchers serve pool %s; %d runs due over %s; %.0f%% of requests get faults; a dispatcher is killed every ~%s",
		cfg.Dispatchers, pool, cfg.Runs, cfg.Spread, 100*cfg.FaultRate, cfg.KillEvery)
	created := make(chan []chaosRun, 1)
	createErr := make(chan error, 1)
	go func() {
		runs, err := createRuns(ctx, api, dep, cfg, start.Add(5*time.Second), logf)
		created <- runs
		createErr <- err
	}()

	// Kill while runs are being created, due or claimed.
	var runs []chaosRun
	for {
		if runs == nil {
			select {
			case runs = <-created:
				if err := <-createErr; err != nil {
					return rep, err
				}
			default:
			}
		}
		if runs != nil {
			st, err := tally(ctx, api, runs)
			if err != nil {
				return rep, err
			}
			logf("%s: %d scheduled, %d pending without infrastructure, %d submitted, %d crashed; %d kills",
				time.Since(start).Round(time.Second), st.scheduled, st.unrecorded, st.submitted, st.crashed, fleet.kills)
			if st.scheduled == 0 && time.Now().After(runs[len(runs)-1].due) {
				break
			}
		}
		if ctx.Err() != nil {
			return rep, fmt.Errorf("runs still scheduled when the deadline came: %w", ctx.Err())
		}
		fleet.killSome(ctx, 2*time.Second)
	}
	rep.Kills = fleet.kills

	// Settle: no more faults or kills; abandoned claims are recovered after
	// the claim timeout.
	prefectProxy.SetEnabled(false)
	awsProxy.SetEnabled(false)
	rep.PrefectFaults, rep.AWSFaults = prefectProxy.Stats(), awsProxy.Stats()
	settleBy := time.Now().Add(2*cfg.ClaimTimeout + time.Minute)
	logf("faults off; waiting up to %s for every run to settle (longer for runs requeued to a later time)", time.Until(settleBy).Round(time.Second))
	for {
		st, err := tally(ctx, api, runs)
		if err != nil {
			return rep, err
		}
		if st.scheduled == 0 && st.unrecorded == 0 {
			break
		}
		// A run requeued after a start that may succeed later (throttling, a
		// cut submission) is due again after a backoff: wait for it too.
		if by := st.lastDue.Add(30 * time.Second); by.After(settleBy) {
			settleBy = by
		}
		if time.Now().After(settleBy) || ctx.Err() != nil {
			logf("settle timed out: %d scheduled, %d pending without infrastructure", st.scheduled, st.unrecorded)
			break
		}
		time.Sleep(2 * time.Second)
	}
	rep.Dispatched = time.Since(start)
	fleet.stopAll()
	logf("dispatchers stopped; checking %d runs", len(runs))
	return rep, check(context.Background(), api, moto, runs, &rep)
}

// chaosRun is one flow run of the test.
type chaosRun struct {
	id  string
	due time.Time
}

// setUp creates the cluster, the pool (Prefect's ECS template) and a
// deployment, and returns the pool's name and the deployment.
func setUp(ctx context.Context, api *prefect.Client, motoURL string, logf func(string, ...any)) (string, prefect.Deployment, error) {
	suffix := uuid.NewString()[:8]
	cluster, pool := "chaos-"+suffix, "chaos-ecs-"+suffix
	client := ecs.NewFromConfig(aws.Config{Region: "us-east-1", Credentials: credentials.NewStaticCredentialsProvider("test", "test", "")},
		func(o *ecs.Options) { o.BaseEndpoint = aws.String(motoURL) })
	if _, err := client.CreateCluster(ctx, &ecs.CreateClusterInput{ClusterName: aws.String(cluster)}); err != nil {
		return "", prefect.Deployment{}, fmt.Errorf("create ECS cluster %s in moto: %w", cluster, err)
	}
	if _, err := api.CreateWorkPool(ctx, prefect.WorkPoolCreate{Name: pool, Type: ecsbackend.PoolType, BaseJobTemplate: ecsbackend.DefaultBaseJobTemplate()}); err != nil {
		return "", prefect.Deployment{}, fmt.Errorf("create work pool %s: %w", pool, err)
	}
	flow, err := api.CreateFlow(ctx, "chaos", nil)
	if err != nil {
		return "", prefect.Deployment{}, fmt.Errorf("create flow: %w", err)
	}
	entrypoint := "flows/hello.py:hello"
	dep, err := api.CreateDeployment(ctx, prefect.DeploymentCreate{Name: "chaos-" + suffix, FlowID: flow.ID, WorkPoolName: pool,
		Entrypoint: &entrypoint, JobVariables: map[string]any{"cluster": cluster}})
	if err != nil {
		return "", prefect.Deployment{}, fmt.Errorf("create deployment: %w", err)
	}
	logf("pool %s, deployment %s, ECS cluster %s in moto", pool, dep.Name, cluster)
	return pool, dep, nil
}

// createRuns creates cfg.Runs runs of dep, due over cfg.Spread from begin,
// in due order.
func createRuns(ctx context.Context, api *prefect.Client, dep prefect.Deployment, cfg Config, begin time.Time, logf func(string, ...any)) ([]chaosRun, error) {
	started := time.Now()
	runs := make([]chaosRun, cfg.Runs)
	errs := make([]error, cfg.Runs)
	var wg sync.WaitGroup
	sem := make(chan struct{}, 8)
	for i := range runs {
		due := begin.UTC()
		if cfg.Runs > 1 {
			due = due.Add(cfg.Spread * time.Duration(i) / time.Duration(cfg.Runs-1))
		}
		sem <- struct{}{}
		wg.Go(func() {
			defer func() { <-sem }()
			r, err := api.CreateFlowRunFromDeployment(ctx, dep.ID, prefect.DeploymentFlowRunCreate{IdempotencyKey: uuid.NewString(),
				State: &prefect.StateCreate{Type: prefect.StateScheduled, Name: "Scheduled", StateDetails: prefect.StateDetails{ScheduledTime: &due}}})
			runs[i], errs[i] = chaosRun{id: r.ID, due: due}, err
		})
	}
	wg.Wait()
	if err := errors.Join(errs...); err != nil {
		return nil, fmt.Errorf("create flow runs: %w", err)
	}
	logf("created %d runs in %s", cfg.Runs, time.Since(started).Round(time.Millisecond))
	return runs, nil
}

// fleet is the dispatcher processes.
type fleet struct {
	cfg                Config
	dir, pool          string
	prefectURL, awsURL string
	logf               func(string, ...any)
	rng                *rand.Rand
	mu                 sync.Mutex
	procs              map[int]*exec.Cmd
	kills              int
	nextKill           time.Time
}

// start starts dispatcher i (again), appending to its log file.
func (f *fleet) start(i int) error {
	logFile, err := os.OpenFile(filepath.Join(f.dir, fmt.Sprintf("dispatcher-%d.log", i)), os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600)
	if err != nil {
		return err
	}
	secs := func(d time.Duration) string { return fmt.Sprintf("%g", d.Seconds()) }
	cmd := exec.Command(f.cfg.Pushpool, "serve", "--pool", f.pool, "--name", fmt.Sprintf("chaos-%d", i),
		"--query-seconds", "2", "--prefetch-seconds", "5", "--heartbeat-seconds", "10",
		"--record-timeout-seconds", secs(f.cfg.RecordTimeout), "--submit-timeout-seconds", secs(f.cfg.SubmitTimeout),
		"--claim-timeout-seconds", secs(f.cfg.ClaimTimeout), "--log-level", "WARNING")
	cmd.Env = append(os.Environ(),
		"PREFECT_API_URL="+f.prefectURL, "AWS_ENDPOINT_URL="+f.awsURL, "AWS_REGION=us-east-1",
		"AWS_ACCESS_KEY_ID=test", "AWS_SECRET_ACCESS_KEY=test", "AWS_EC2_METADATA_DISABLED=true")
	cmd.Stdout, cmd.Stderr = logFile, logFile
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		logFile.Close()
		return fmt.Errorf("start dispatcher %d (%s): %w", i, f.cfg.Pushpool, err)
	}
	go func() { cmd.Wait(); logFile.Close() }()
	f.mu.Lock()
	if f.procs == nil {
		f.procs = map[int]*exec.Cmd{}
	}
	f.procs[i] = cmd
	f.mu.Unlock()
	return nil
}

// killSome waits for span, SIGKILLing a random dispatcher whenever the
// next kill is due (about every KillEvery) and restarting it up to a second
// later.
func (f *fleet) killSome(ctx context.Context, span time.Duration) {
	end := time.Now().Add(span)
	for ctx.Err() == nil {
		if f.nextKill.IsZero() {
			f.nextKill = time.Now().Add(time.Duration(f.rng.Int64N(int64(2 * f.cfg.KillEvery))))
		}
		if f.nextKill.After(end) {
			time.Sleep(time.Until(end))
			return
		}
		time.Sleep(time.Until(f.nextKill))
		f.nextKill = time.Time{}
		i := f.rng.IntN(f.cfg.Dispatchers)
		f.mu.Lock()
		cmd := f.procs[i]
		f.mu.Unlock()
		if cmd == nil || cmd.Process == nil {
			continue
		}
		syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
		f.kills++
		back := time.Duration(f.rng.Int64N(int64(time.Second)))
		go func() {
			time.Sleep(back)
			if err := f.start(i); err != nil {
				f.logf("could not restart dispatcher %d: %v", i, err)
			}
		}()
	}
}

// stopAll stops every dispatcher with SIGTERM (SIGKILL after 20s).
func (f *fleet) stopAll() {
	f.mu.Lock()
	procs := f.procs
	f.procs = nil
	f.mu.Unlock()
	var wg sync.WaitGroup
	for _, cmd := range procs {
		if cmd.Process == nil {
			continue
		}
		wg.Go(func() {
			syscall.Kill(-cmd.Process.Pid, syscall.SIGTERM)
			deadline := time.Now().Add(20 * time.Second)
			for syscall.Kill(cmd.Process.Pid, 0) == nil && time.Now().Before(deadline) {
				time.Sleep(100 * time.Millisecond)
			}
			syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
		})
	}
	wg.Wait()
}

// counts is where the runs are.
type counts struct {
	scheduled, unrecorded, submitted, crashed, other int
	// lastDue is the latest due time of a Scheduled run.
	lastDue time.Time
}

// tally reads every run of the test.
func tally(ctx context.Context, api *prefect.Client, runs []chaosRun) (counts, error) {
	var c counts
	got, err := readRuns(ctx, api, runs)
	if err != nil {
		return c, err
	}
	for _, r := range got {
		switch {
		case r.StateType == nil:
			c.other++
		case *r.StateType == prefect.StateScheduled:
			c.scheduled++
			if due := r.DueTime(); due.After(c.lastDue) {
				c.lastDue = due
			}
		case *r.StateType == prefect.StateCrashed:
			c.crashed++
		case (*r.StateType == prefect.StatePending || *r.StateType == prefect.StateRunning) && deref(r.InfrastructurePID) == "":
			c.unrecorded++
		case *r.StateType == prefect.StatePending || *r.StateType == prefect.StateRunning:
			c.submitted++
		default:
			c.other++
		}
	}
	return c, nil
}

// readRuns reads the runs, 200 ids to a filter request.
func readRuns(ctx context.Context, api *prefect.Client, runs []chaosRun) (map[string]prefect.FlowRun, error) {
	out := make(map[string]prefect.FlowRun, len(runs))
	for i := 0; i < len(runs); i += 200 {
		ids := []string{}
		for _, r := range runs[i:min(i+200, len(runs))] {
			ids = append(ids, r.id)
		}
		got, err := api.FilterFlowRuns(ctx, prefect.FlowRunFilter{IDs: ids})
		if err != nil {
			return nil, fmt.Errorf("read the test's flow runs: %w", err)
		}
		for _, r := range got {
			out[r.ID] = r
		}
	}
	return out, nil
}

// check compares what Prefect and moto hold.
func check(ctx context.Context, api *prefect.Client, moto *localstack.Moto, runs []chaosRun, rep *Report) error {
	got, err := readRuns(ctx, api, runs)
	if err != nil {
		return err
	}
	var mu sync.Mutex
	errs := make([]error, len(runs))
	var wg sync.WaitGroup
	sem := make(chan struct{}, 8)
	grace := time.Minute
	for i, cr := range runs {
		sem <- struct{}{}
		wg.Go(func() {
			defer func() { <-sem }()
			r, ok := got[cr.id]
			if !ok {
				errs[i] = fmt.Errorf("flow run %s is gone", cr.id)
				return
			}
			tasks, err := moto.TasksStartedByPrefix(ctx, cr.id)
			if err != nil {
				errs[i] = fmt.Errorf("list the ECS tasks of flow run %s: %w", cr.id, err)
				return
			}
			states, err := api.ReadFlowRunStates(ctx, cr.id)
			if err != nil {
				errs[i] = fmt.Errorf("read the states of flow run %s: %w", cr.id, err)
				return
			}
			pid := deref(r.InfrastructurePID)
			typ := prefect.StateType("")
			if r.StateType != nil {
				typ = *r.StateType
			}
			mu.Lock()
			defer mu.Unlock()
			rep.Tasks += len(tasks)
			if len(tasks) > 1 {
				rep.Duplicates = append(rep.Duplicates, cr.id)
			}
			switch {
			case typ == prefect.StateCrashed:
				rep.Crashed++
				msg := ""
				if r.State != nil && r.State.Message != nil {
					msg = *r.State.Message
				}
				rep.CrashReasons[reason(msg)]++
			case typ == prefect.StateScheduled && time.Since(r.DueTime()) > grace,
				(typ == prefect.StatePending || typ == prefect.StateRunning) && pid == "":
				rep.Lost = append(rep.Lost, cr.id)
			case typ == prefect.StatePending || typ == prefect.StateRunning:
				rep.Submitted++
				if _, arn, _ := strings.Cut(pid, "::"); !slices.Contains(tasks, arn) {
					rep.Mismatched = append(rep.Mismatched, cr.id)
				}
			}
			tallyStates(states, rep)
			failed := len(tasks) > 1 || slices.Contains(rep.Lost, cr.id) || slices.Contains(rep.Mismatched, cr.id)
			if failed && len(rep.Details) < 5 {
				rep.Details = append(rep.Details, describe(cr.id, pid, tasks, states))
			}
		})
	}
	wg.Wait()
	sort.Strings(rep.Duplicates)
	sort.Strings(rep.Lost)
	sort.Strings(rep.Mismatched)
	return errors.Join(errs...)
}

// describe is one failing run's story, for the report.
func describe(id, pid string, tasks []string, states []prefect.State) string {
	sort.SliceStable(states, func(i, j int) bool { return states[i].Timestamp.Before(*states[j].Timestamp) })
	var b strings.Builder
	fmt.Fprintf(&b, "run %s pid %q tasks %v:", id, pid, tasks)
	for _, s := range states {
		fmt.Fprintf(&b, "\n      %s %s %s", s.Timestamp.UTC().Format("15:04:05.000"), s.Type, s.Name)
		if s.StateDetails.ScheduledTime != nil {
			fmt.Fprintf(&b, " (due %s)", s.StateDetails.ScheduledTime.UTC().Format("15:04:05"))
		}
	}
	return b.String()
}

// tallyStates counts what the dispatchers wrote in one run's history.
func tallyStates(states []prefect.State, rep *Report) {
	sort.SliceStable(states, func(i, j int) bool { return states[i].Timestamp.Before(*states[j].Timestamp) })
	reschedulesSinceClaim := 0
	for _, s := range states {
		msg := ""
		if s.Message != nil {
			msg = *s.Message
		}
		switch {
		case s.Type == prefect.StatePending && s.Name == "Pending":
			reschedulesSinceClaim = 0
		case s.Type == prefect.StateScheduled && s.Name == "Rescheduled" && strings.HasPrefix(msg, "Flow run was claimed at"):
			rep.Rescheduled++
			reschedulesSinceClaim++
			if reschedulesSinceClaim > 1 {
				rep.DoubleRecoveries++
			}
		case s.Type == prefect.StateScheduled && s.Name == "Requeued":
			rep.Requeued++
		}
	}
	for _, s := range states {
		if s.Type == prefect.StatePending && strings.HasPrefix(s.Name, "Recovering") {
			rep.RecoveryLocks++
		}
	}
}

// reason shortens a Crashed message to its kind, for the report.
func reason(msg string) string {
	if i := strings.IndexAny(msg, ":."); i > 0 && i < 100 {
		msg = msg[:i]
	}
	if len(msg) > 100 {
		msg = msg[:100]
	}
	return msg
}

func deref(s *string) string {
	if s == nil {
		return ""
	}
	return *s
}

// BuildPushpool builds the pushpool command into dir and returns its path.
func BuildPushpool(ctx context.Context, dir string) (string, error) {
	root, err := localstack.RepoRoot()
	if err != nil {
		return "", err
	}
	bin := filepath.Join(dir, "pushpool")
	cmd := exec.CommandContext(ctx, "go", "build", "-o", bin, "./functions/pushpool")
	cmd.Dir = root
	if out, err := cmd.CombinedOutput(); err != nil {
		return "", fmt.Errorf("build the pushpool command: %w\n%s", err, out)
	}
	return bin, nil
}
