// Command providerbench measures the Terraform provider against a real
// Prefect server: terraform apply, a plan with nothing to change, and
// destroy of a configuration of at least 200 resources, with a counting
// proxy between the provider and Prefect. For each phase it reports the wall
// time and the Prefect requests per resource (by route), and it fails when a
// plan of unchanged resources makes more than one request per resource or
// when the server answered any request with a status the provider retries
// (408, 429, 5xx) on PostgreSQL: the provider's own concurrency must not
// overload the server. On SQLite (-db sqlite) such answers are reported but
// do not fail the run: the server's own background writes (its event
// persister) conflict with the provider's one write at a time there. `make
// bench` runs it on PostgreSQL and puts its report in bench/results.txt.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"log/slog"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"github.com/pushpool/pushpool/internal/localstack"
)

func main() {
	cfg := config{}
	flag.IntVar(&cfg.units, "units", 20, "units of 10 resources (a work pool, a work queue, a flow, 4 deployments, 2 schedules, a variable) to create")
	flag.StringVar(&cfg.out, "o", "", "write the report to this file as well as to standard output")
	flag.StringVar(&cfg.db, "db", "postgres", "the Prefect server's database: postgres (as make bench's other figures) or sqlite")
	flag.IntVar(&cfg.parallelism, "parallelism", 10, "terraform -parallelism (10 is terraform's default)")
	flag.Parse()
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	log := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelInfo}))
	report, err := run(ctx, cfg, log)
	if report != "" {
		fmt.Print(report)
		if cfg.out != "" {
			if werr := os.WriteFile(cfg.out, []byte(report), 0o644); werr != nil {
				err = errors.Join(err, werr)
			}
		}
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "providerbench:", err)
		os.Exit(1)
	}
}

// config is the command's flags.
type config struct {
	units       int
	out         string
	db          string
	parallelism int
}

// phase is one terraform command measured.
type phase struct {
	name string
	args []string
	// wantExit is the exit code that means success (plan -detailed-exitcode
	// exits 0 for no changes).
	wantExit int
	// maxPerResource, when not 0, is the most requests per resource the
	// phase may make.
	maxPerResource float64
}

// result is what one phase measured.
type result struct {
	phase
	wall      time.Duration
	requests  map[string]int
	total     int
	retryable map[string]int
}

func run(ctx context.Context, cfg config, log *slog.Logger) (string, error) {
	if cfg.units < 1 {
		return "", errors.New("-units must be at least 1")
	}
	tf, err := exec.LookPath("terraform")
	if err != nil {
		return "", fmt.Errorf("providerbench needs terraform on PATH: %w", err)
	}
	root, err := localstack.RepoRoot()
	if err != nil {
		return "", err
	}
	dir, err := os.MkdirTemp("", "providerbench-")
	if err != nil {
		return "", err
	}
	defer os.RemoveAll(dir)

	log.Info("building the provider")
	build := exec.CommandContext(ctx, "go", "build", "-o", filepath.Join(dir, "bin", "terraform-provider-prefect"), "./provider")
	build.Dir, build.Stdout, build.Stderr = root, os.Stderr, os.Stderr
	if err := build.Run(); err != nil {
		return "", fmt.Errorf("build the provider: %w", err)
	}

	log.Info("starting a Prefect server", "db", cfg.db)
	var srv *localstack.Prefect
	switch cfg.db {
	case "postgres":
		srv, err = localstack.StartPrefectOnPostgres(ctx, localstack.PrefectOptions{}, localstack.PostgresOptions{Database: "providerbench"})
	case "sqlite":
		srv, err = localstack.StartPrefect(ctx, localstack.PrefectOptions{})
	default:
		return "", fmt.Errorf("-db %q: want postgres or sqlite", cfg.db)
	}
	if err != nil {
		return "", fmt.Errorf("start the Prefect server: %w", err)
	}
	defer srv.Stop()
	dbName := "SQLite"
	if srv.Postgres != nil {
		dbName = srv.Postgres.Version
	}

	proxy, err := newProxy(ctx, srv.URL)
	if err != nil {
		return "", err
	}
	defer proxy.close()

	work := filepath.Join(dir, "work")
	if err := os.MkdirAll(work, 0o755); err != nil {
		return "", err
	}
	resources := cfg.units * 10
	if err := os.WriteFile(filepath.Join(work, "main.tf"), []byte(configuration(proxy.url, cfg.units)), 0o644); err != nil {
		return "", err
	}
	cliConfig := filepath.Join(dir, "dev.tfrc")
	if err := os.WriteFile(cliConfig, []byte(fmt.Sprintf(`provider_installation {
  dev_overrides {
    "registry.terraform.io/pushpool/prefect" = %q
  }
  direct {}
}
`, filepath.Join(dir, "bin"))), 0o644); err != nil {
		return "", err
	}
	env := append(cleanEnv(), "TF_CLI_CONFIG_FILE="+cliConfig, "CHECKPOINT_DISABLE=1", "TF_IN_AUTOMATION=1")

	par := fmt.Sprintf("-parallelism=%d", cfg.parallelism)
	phases := []phase{
		{name: "apply (create)", args: []string{"apply", "-auto-approve", "-input=false", par}},
		{name: "plan, unchanged", args: []string{"plan", "-detailed-exitcode", "-input=false", par}, maxPerResource: 1},
		{name: "apply, unchanged", args: []string{"apply", "-auto-approve", "-input=false", par}, maxPerResource: 1},
		{name: "destroy", args: []string{"destroy", "-auto-approve", "-input=false", par}},
	}
	var results []result
	var failures []string
	for _, p := range phases {
		log.Info("terraform "+p.args[0], "phase", p.name, "resources", resources)
		proxy.reset()
		cmd := exec.CommandContext(ctx, tf, p.args...)
		cmd.Dir, cmd.Env = work, env
		var out strings.Builder
		cmd.Stdout, cmd.Stderr = &out, &out
		start := time.Now()
		err := cmd.Run()
		wall := time.Since(start)
		code := 0
		var exit *exec.ExitError
		switch {
		case errors.As(err, &exit):
			code = exit.ExitCode()
		case err != nil:
			return "", fmt.Errorf("run terraform %s: %w", p.args[0], err)
		}
		if code != p.wantExit {
			return "", fmt.Errorf("terraform %s (%s) exited %d, want %d:\n%s", p.args[0], p.name, code, p.wantExit, tail(out.String(), 60))
		}
		counts, retryable := proxy.snapshot()
		r := result{phase: p, wall: wall, requests: counts, retryable: retryable}
		r.total = sum(counts)
		results = append(results, r)
		perResource := float64(r.total) / float64(resources)
		if p.maxPerResource > 0 && perResource > p.maxPerResource {
			failures = append(failures, fmt.Sprintf("%s made %.2f requests per resource, more than %.0f", p.name, perResource, p.maxPerResource))
		}
		if n := sum(retryable); n > 0 && cfg.db != "sqlite" {
			failures = append(failures, fmt.Sprintf("%s: the server answered %d requests with a status the provider retries (408, 429, 5xx)", p.name, n))
		}
	}
	report := format(results, resources, cfg, srv.Version, dbName)
	if len(failures) > 0 {
		return report, errors.New(strings.Join(failures, "; "))
	}
	return report, nil
}

func sum(m map[string]int) int {
	n := 0
	for _, v := range m {
		n += v
	}
	return n
}

// cleanEnv is the environment without the caller's Prefect and Terraform
// settings, so the measured configuration is the one written here.
func cleanEnv() []string {
	var env []string
	for _, kv := range os.Environ() {
		if strings.HasPrefix(kv, "PREFECT_") || strings.HasPrefix(kv, "TF_") {
			continue
		}
		env = append(env, kv)
	}
	return env
}

// tail returns the last n lines of s.
func tail(s string, n int) string {
	lines := strings.Split(strings.TrimRight(s, "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}
