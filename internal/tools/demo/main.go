// Command demo is `make demo`: it starts a throwaway Prefect server, creates
// a process work pool and a deployment of examples/flows/hello.py, schedules
// a few runs seconds apart, runs `pushpool serve` against it until every run
// has finished in the real Prefect engine, prints a summary, and removes
// everything it created.
package main

import (
	"bufio"
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"syscall"
	"text/tabwriter"
	"time"

	"github.com/pushpool/pushpool/dispatch/prefect"
	"github.com/pushpool/pushpool/internal/localstack"
)

func main() {
	var cfg config
	flag.StringVar(&cfg.pushpool, "pushpool", "bin/pushpool", "the pushpool binary to run")
	flag.IntVar(&cfg.runs, "runs", 5, "how many runs to schedule")
	flag.DurationVar(&cfg.first, "first", 15*time.Second, "when the first run is due, from scheduling")
	flag.DurationVar(&cfg.spacing, "spacing", 4*time.Second, "time between due times")
	flag.DurationVar(&cfg.timeout, "timeout", 4*time.Minute, "give up when runs have not finished by then")
	flag.Parse()
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := demo(ctx, cfg); err != nil {
		fmt.Fprintln(os.Stderr, "demo failed:", err)
		os.Exit(1)
	}
}

type config struct {
	pushpool                string
	runs                    int
	first, spacing, timeout time.Duration
}

const poolName = "demo-process"

func demo(ctx context.Context, cfg config) error {
	root, err := localstack.RepoRoot()
	if err != nil {
		return err
	}
	bin, err := filepath.Abs(cfg.pushpool)
	if err != nil {
		return err
	}
	if _, err := os.Stat(bin); err != nil {
		return fmt.Errorf("the pushpool binary is missing (%w): build it with go build -o bin/pushpool ./functions/pushpool", err)
	}
	work, err := os.MkdirTemp("", "pushpool-demo-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(work)

	step("Starting a throwaway Prefect server (SQLite in a temporary directory)")
	srv, err := localstack.StartPrefect(ctx, localstack.PrefectOptions{})
	if err != nil {
		return err
	}
	defer func() {
		step("Stopping the Prefect server and removing the demo's files")
		srv.Stop()
	}()
	fmt.Printf("    Prefect %s at %s\n", srv.Version, srv.URL)
	api, err := prefect.New(prefect.Config{URL: srv.URL})
	if err != nil {
		return err
	}

	step(fmt.Sprintf("Creating process work pool %q and a deployment of examples/flows/hello.py", poolName))
	dep, err := setUp(ctx, api, filepath.Join(root, "examples", "flows"))
	if err != nil {
		return err
	}
	runs, err := schedule(ctx, api, dep, cfg)
	if err != nil {
		return err
	}
	fmt.Printf("    %d runs due from %s, %s apart\n", len(runs), clock(runs[0].DueTime()), cfg.spacing)

	step("Running pushpool serve (no worker); its logs and the flows' output follow")
	serve, err := startServe(bin, srv, work)
	if err != nil {
		return err
	}
	final, waitErr := watch(ctx, api, runs, cfg.timeout)
	stopErr := serve.stop()

	step("Summary")
	completed, err := summary(ctx, api, final)
	if err != nil {
		return err
	}
	switch {
	case waitErr != nil:
		return waitErr
	case stopErr != nil:
		return fmt.Errorf("pushpool serve did not stop cleanly: %w", stopErr)
	case completed != len(runs):
		return fmt.Errorf("%d of %d runs completed; see the flow runs' logs above", completed, len(runs))
	}
	fmt.Printf("\nAll %d runs COMPLETED, started by pushpool with no worker running.\n", completed)
	return nil
}

func step(msg string) { fmt.Printf("\n==> %s\n", msg) }

func clock(t time.Time) string { return t.Local().Format("15:04:05.0") }

// setUp creates the pool with Prefect's default process template, the flow
// and a deployment whose pull step sets the working directory to the flow's
// folder, as `prefect deploy` does for local code.
func setUp(ctx context.Context, api *prefect.Client, flowDir string) (prefect.Deployment, error) {
	meta, err := api.ReadWorkerMetadata(ctx)
	if err != nil {
		return prefect.Deployment{}, err
	}
	tmpl := meta["prefect"]["process"].DefaultBaseJobConfiguration
	if tmpl == nil {
		return prefect.Deployment{}, errors.New("the server offers no default process base job template")
	}
	if _, err := api.CreateWorkPool(ctx, prefect.WorkPoolCreate{Name: poolName, Type: "process", BaseJobTemplate: tmpl}); err != nil {
		return prefect.Deployment{}, err
	}
	flow, err := api.CreateFlow(ctx, "hello", nil)
	if err != nil {
		return prefect.Deployment{}, err
	}
	entrypoint := "hello.py:hello"
	return api.CreateDeployment(ctx, prefect.DeploymentCreate{
		Name: "demo", FlowID: flow.ID, WorkPoolName: poolName, Entrypoint: &entrypoint,
		PullSteps: []map[string]any{{"prefect.deployments.steps.set_working_directory": map[string]any{"directory": flowDir}}},
	})
}

func schedule(ctx context.Context, api *prefect.Client, dep prefect.Deployment, cfg config) ([]prefect.FlowRun, error) {
	names := []string{"Ada", "Grace", "Edsger", "Barbara", "Ken", "Dennis", "Margaret", "Niklaus"}
	start := time.Now().Add(cfg.first)
	var runs []prefect.FlowRun
	for i := range cfg.runs {
		due := start.Add(time.Duration(i) * cfg.spacing).UTC()
		r, err := api.CreateFlowRunFromDeployment(ctx, dep.ID, prefect.DeploymentFlowRunCreate{
			Name:       fmt.Sprintf("demo-%d", i+1),
			Parameters: map[string]any{"name": names[i%len(names)], "work_seconds": 1},
			State:      &prefect.StateCreate{Type: prefect.StateScheduled, Name: "Scheduled", StateDetails: prefect.StateDetails{ScheduledTime: &due}},
		})
		if err != nil {
			return nil, err
		}
		runs = append(runs, r)
	}
	return runs, nil
}

// serveProcess is the running `pushpool serve`.
type serveProcess struct {
	cmd  *exec.Cmd
	done chan error
	out  sync.WaitGroup
}

func startServe(bin string, srv *localstack.Prefect, work string) (*serveProcess, error) {
	env := []string{}
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "PREFECT_") && !strings.HasPrefix(kv, "PUSHPOOL_") && !strings.HasPrefix(kv, "PATH=") {
			env = append(env, kv)
		}
	}
	env = append(env,
		"PATH="+filepath.Join(srv.Venv, "bin")+string(os.PathListSeparator)+os.Getenv("PATH"),
		"PREFECT_API_URL="+srv.URL,
		"PREFECT_HOME="+filepath.Join(work, "prefect-home"), // the flows' local results and profiles
		"PUSHPOOL_PROCESS_STATE_DIR="+filepath.Join(work, "process"),
		"PUSHPOOL_WORKER_NAME=pushpool-demo",
	)
	cmd := exec.Command(bin, "serve", "--pool", poolName)
	cmd.Env = env
	s := &serveProcess{cmd: cmd, done: make(chan error, 1)}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		return nil, err
	}
	stderr, err := cmd.StderrPipe()
	if err != nil {
		return nil, err
	}
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("start pushpool serve: %w", err)
	}
	for _, r := range []io.Reader{stdout, stderr} {
		s.out.Go(func() { prefix(r, "    │ ") })
	}
	go func() {
		s.out.Wait()
		s.done <- cmd.Wait()
	}()
	return s, nil
}

func prefix(r io.Reader, p string) {
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 64*1024), 1024*1024)
	for sc.Scan() {
		fmt.Println(p + sc.Text())
	}
}

// stop asks pushpool to shut down as a service manager would (SIGTERM) and
// waits for it.
func (s *serveProcess) stop() error {
	_ = s.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case err := <-s.done:
		return err
	case <-time.After(60 * time.Second):
		_ = s.cmd.Process.Kill()
		<-s.done
		return errors.New("it was still running 60s after SIGTERM and was killed")
	}
}

// watch reports each state change of the runs until all are final.
func watch(ctx context.Context, api *prefect.Client, runs []prefect.FlowRun, timeout time.Duration) ([]prefect.FlowRun, error) {
	deadline := time.Now().Add(timeout)
	last := map[string]string{}
	current := slices.Clone(runs)
	for {
		final := 0
		for i, r := range current {
			fresh, err := api.ReadFlowRun(ctx, r.ID)
			if err != nil {
				return current, err
			}
			current[i] = fresh
			state := stateName(fresh)
			if last[r.ID] != state {
				last[r.ID] = state
				fmt.Printf("  %s  %-7s → %s\n", clock(time.Now()), fresh.Name, state)
			}
			if fresh.State != nil && fresh.State.Type.Terminal() {
				final++
			}
		}
		if final == len(current) {
			return current, nil
		}
		if time.Now().After(deadline) {
			return current, fmt.Errorf("%d of %d runs had not finished after %s", len(current)-final, len(current), timeout)
		}
		select {
		case <-ctx.Done():
			return current, context.Cause(ctx)
		case <-time.After(500 * time.Millisecond):
		}
	}
}

func stateName(r prefect.FlowRun) string {
	if r.State == nil {
		return "?"
	}
	if r.State.Name != "" && !strings.EqualFold(r.State.Name, string(r.State.Type)) {
		return fmt.Sprintf("%s (%s)", r.State.Type, r.State.Name)
	}
	return string(r.State.Type)
}

// summary prints one line per run: when it was due, when pushpool claimed
// it, when the flow started running, how long it took and how it ended.
func summary(ctx context.Context, api *prefect.Client, runs []prefect.FlowRun) (completed int, err error) {
	tw := tabwriter.NewWriter(os.Stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "RUN\tDUE\tCLAIMED VS DUE\tSTARTED VS DUE\tRAN FOR\tFINAL STATE\tINFRASTRUCTURE")
	for _, r := range runs {
		due := r.DueTime()
		claimed := "-"
		states, err := api.ReadFlowRunStates(ctx, r.ID)
		if err != nil {
			return 0, err
		}
		for _, s := range states {
			if s.Type == prefect.StatePending && s.Timestamp != nil {
				claimed = signed(s.Timestamp.Sub(due))
				break
			}
		}
		started, took := "-", "-"
		if r.StartTime != nil {
			started = signed(r.StartTime.Sub(due))
			if r.EndTime != nil {
				took = fmt.Sprintf("%.1fs", r.EndTime.Sub(*r.StartTime).Seconds())
			}
		}
		pid := "-"
		if r.InfrastructurePID != nil {
			pid = *r.InfrastructurePID
		}
		if r.State != nil && r.State.Type == prefect.StateCompleted {
			completed++
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%s\n", r.Name, clock(due), claimed, started, took, stateName(r), pid)
	}
	fmt.Fprintln(tw)
	fmt.Fprintln(tw, "CLAIMED VS DUE is negative by up to the prefetch (10s): like Prefect's workers, pushpool starts")
	fmt.Fprintln(tw, "infrastructure early, and Prefect holds the flow in Pending until its due time.")
	return completed, tw.Flush()
}

func signed(d time.Duration) string { return fmt.Sprintf("%+.2fs", d.Seconds()) }
