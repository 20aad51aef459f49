// Package localstack starts the real peers pushpool is tested and demonstrated
// against — a Prefect server (on SQLite or PostgreSQL), moto and Azurite — on
// 127.0.0.1, from the pinned virtualenv that infra/local/stack.sh maintains.
// Every server gets a fresh temporary database and is stopped with its whole
// process group.
package localstack

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"
)

// Venv returns the path of the pinned virtualenv, creating it on first use.
// PUSHPOOL_VENV names an existing one; otherwise infra/local/stack.sh (found by
// walking up from the working directory to go.mod) builds or reuses it.
func Venv(ctx context.Context) (string, error) {
	if v := os.Getenv("PUSHPOOL_VENV"); v != "" {
		if _, err := os.Stat(filepath.Join(v, "bin", "prefect")); err == nil {
			return v, nil
		}
	}
	root, err := RepoRoot()
	if err != nil {
		return "", err
	}
	var out bytes.Buffer
	cmd := exec.CommandContext(ctx, filepath.Join(root, "infra", "local", "stack.sh"), "venv")
	cmd.Stdout = &out
	cmd.Stderr = os.Stderr
	if err := cmd.Run(); err != nil {
		return "", fmt.Errorf("prepare the Python virtualenv with infra/local/stack.sh venv: %w", err)
	}
	return strings.TrimSpace(out.String()), nil
}

// RepoRoot returns the directory holding pushpool's go.mod, searching upwards
// from the working directory.
func RepoRoot() (string, error) {
	dir, err := os.Getwd()
	if err != nil {
		return "", fmt.Errorf("find the repository root: %w", err)
	}
	for {
		if data, err := os.ReadFile(filepath.Join(dir, "go.mod")); err == nil &&
			bytes.HasPrefix(data, []byte("module github.com/pushpool/pushpool\n")) {
			return dir, nil
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return "", errors.New("find the repository root: no pushpool go.mod above the working directory; run from inside the checkout or set PUSHPOOL_VENV")
		}
		dir = parent
	}
}

// PrefectOptions configures a Prefect server started by StartPrefect.
type PrefectOptions struct {
	// Env holds extra settings for the server process, such as
	// PREFECT_SERVER_API_AUTH_STRING or PREFECT_SERVER_CSRF_PROTECTION_ENABLED.
	Env map[string]string
	// StartTimeout bounds the wait for /api/health. Zero means 90 seconds.
	StartTimeout time.Duration
	// Database is the SQLAlchemy connection URL of the server's database,
	// such as Postgres.DSN(). Empty means a fresh SQLite file in the
	// server's directory. A postgresql+asyncpg URL also brings the pool
	// and timeout settings of PostgresServerEnv; Env overrides any of them.
	Database string
}

// PostgresServerEnv returns the settings of a Prefect server on the
// PostgreSQL database at url (a postgresql+asyncpg URL) that is meant to
// take load from many concurrent clients: a larger SQLAlchemy pool than
// Prefect's 5+10, a longer wait for a pooled connection, and an HTTP
// keep-alive longer than Go clients' idle timeout so the server never
// closes a connection a client is about to reuse. The names are those of
// Prefect 3.9's settings models (prefect/settings/models/server).
func PostgresServerEnv(url string) map[string]string {
	return map[string]string{
		"PREFECT_API_DATABASE_CONNECTION_URL": url,
		// Per engine; a server process holds a few engines, so 300
		// max_connections serve several servers at their peak.
		"PREFECT_SERVER_DATABASE_SQLALCHEMY_POOL_SIZE":    "20",
		"PREFECT_SERVER_DATABASE_SQLALCHEMY_MAX_OVERFLOW": "40",
		"PREFECT_SERVER_DATABASE_SQLALCHEMY_POOL_TIMEOUT": "60",
		"PREFECT_SERVER_DATABASE_CONNECTION_TIMEOUT":      "30",
		// uvicorn's default is 5s; Go's http.Transport keeps idle
		// connections for 90s.
		"PREFECT_SERVER_API_KEEPALIVE_TIMEOUT": "120",
	}
}

// Prefect is a running Prefect server.
type Prefect struct {
	// URL is the API base URL, ending in /api.
	URL string
	// Version is the Prefect package version the server runs.
	Version string
	// Venv is the virtualenv the server runs from; its bin/ holds python and prefect.
	Venv string
	// Postgres is the database server StartPrefectOnPostgres started for
	// this server, stopped with it; nil otherwise.
	Postgres *Postgres

	dir     string
	cmd     *exec.Cmd
	logPath string
	done    chan struct{}
	stop    sync.Once
	stopErr error
}

// StartPrefect starts `prefect server start` on a free loopback port with a
// fresh SQLite database, the UI and telemetry off, and waits until it answers
// /api/health. The caller must call Stop.
func StartPrefect(ctx context.Context, opts PrefectOptions) (*Prefect, error) {
	venv, err := Venv(ctx)
	if err != nil {
		return nil, err
	}
	if opts.StartTimeout == 0 {
		opts.StartTimeout = 90 * time.Second
	}
	version, err := prefectVersion(ctx, venv)
	if err != nil {
		return nil, err
	}
	// A port picked here can be taken before the server binds it; try a few.
	var lastErr error
	for attempt := 0; attempt < 3; attempt++ {
		p, err := startPrefectOnce(ctx, venv, opts)
		if err == nil {
			p.Version = version
			return p, nil
		}
		lastErr = err
		if ctx.Err() != nil {
			break
		}
	}
	return nil, lastErr
}

func prefectVersion(ctx context.Context, venv string) (string, error) {
	out, err := exec.CommandContext(ctx, filepath.Join(venv, "bin", "python"), "-c",
		"import prefect; print(prefect.__version__)").Output()
	if err != nil {
		return "", fmt.Errorf("read the Prefect version in %s: %w", venv, err)
	}
	return strings.TrimSpace(string(out)), nil
}

func startPrefectOnce(ctx context.Context, venv string, opts PrefectOptions) (*Prefect, error) {
	port, err := freePort()
	if err != nil {
		return nil, err
	}
	dir, logPath, logFile, err := serverDir("pushpool-prefect-", "server.log", "the Prefect server")
	if err != nil {
		return nil, err
	}
	defer logFile.Close()
	p := &Prefect{
		URL:     fmt.Sprintf("http://127.0.0.1:%d/api", port),
		Venv:    venv,
		dir:     dir,
		logPath: logPath,
		done:    make(chan struct{}),
	}

	cmd := exec.Command(filepath.Join(venv, "bin", "prefect"), "server", "start",
		"--host", "127.0.0.1", "--port", strconv.Itoa(port), "--no-ui")
	cmd.Dir = dir
	cmd.Stdout = logFile
	cmd.Stderr = logFile
	// Pdeathsig: a test binary killed by its timeout never calls Stop; the
	// server must not outlive it and load the machine.
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	env := map[string]string{}
	if strings.HasPrefix(opts.Database, "postgresql") {
		env = PostgresServerEnv(opts.Database)
	} else if opts.Database != "" {
		env["PREFECT_API_DATABASE_CONNECTION_URL"] = opts.Database
	}
	for k, v := range opts.Env {
		env[k] = v
	}
	cmd.Env = ServerEnv(dir, env)
	if err := cmd.Start(); err != nil {
		os.RemoveAll(dir)
		return nil, fmt.Errorf("start prefect server: %w", err)
	}
	p.cmd = cmd
	go func() { cmd.Wait(); close(p.done) }()

	if err := waitServing(ctx, "prefect server", p.URL+"/health", statusOK, cmd, p.done, opts.StartTimeout); err != nil {
		tail := p.LogTail(20)
		p.Stop()
		return nil, fmt.Errorf("%w\n--- last lines of the Prefect server log ---\n%s", err, tail)
	}
	return p, nil
}

// ServerEnv returns the environment for a Prefect server whose home and
// SQLite database live in dir, with telemetry and the UI off and extra
// settings applied last.
func ServerEnv(dir string, extra map[string]string) []string {
	env := []string{}
	for _, kv := range os.Environ() {
		// Client-side settings of the caller must not leak into the server.
		if strings.HasPrefix(kv, "PREFECT_") {
			continue
		}
		env = append(env, kv)
	}
	env = append(env,
		"PREFECT_HOME="+dir,
		"PREFECT_API_DATABASE_CONNECTION_URL=sqlite+aiosqlite:///"+filepath.Join(dir, "prefect.db"),
		"PREFECT_SERVER_ANALYTICS_ENABLED=false",
		"PREFECT_UI_ENABLED=false",
		"PREFECT_SERVER_UI_ENABLED=false",
		"PREFECT_LOGGING_LEVEL=WARNING",
		// SQLite's busy wait: with the default 10s, a busy 2-core machine
		// turns write contention into 503s that outlast the clients' retries.
		"PREFECT_SERVER_DATABASE_TIMEOUT=60",
	)
	for k, v := range extra {
		env = append(env, k+"="+v)
	}
	return env
}

// PID is the process id of `prefect server start`, the root of the server's
// processes (for measuring the CPU time they use).
func (p *Prefect) PID() int { return p.cmd.Process.Pid }

// LogTail returns the last n lines of the server's output.
func (p *Prefect) LogTail(n int) string {
	return logTail(p.logPath, "server", n)
}

// Stop terminates the server and every process it started, then removes its
// database: its SQLite file, or the PostgreSQL server StartPrefectOnPostgres
// started. It is safe to call more than once.
func (p *Prefect) Stop() error {
	p.stop.Do(func() {
		p.stopErr = stopGroup(p.cmd, p.done, p.dir, "prefect server", 15*time.Second)
		if p.Postgres != nil {
			p.stopErr = errors.Join(p.stopErr, p.Postgres.Stop())
		}
	})
	return p.stopErr
}

// StartPrefectOnPostgres starts a throwaway PostgreSQL server (StartPostgres
// with pg) and a Prefect server on its database (StartPrefect with
// opts.Database set to its DSN), as the chaos and benchmark harnesses need:
// SQLite serializes writes and answers 503 under many concurrent clients.
// The returned server's Postgres field holds the database server; the
// caller must call Stop, which stops both.
func StartPrefectOnPostgres(ctx context.Context, opts PrefectOptions, pg PostgresOptions) (*Prefect, error) {
	db, err := StartPostgres(ctx, pg)
	if err != nil {
		return nil, err
	}
	opts.Database = db.DSN()
	p, err := StartPrefect(ctx, opts)
	if err != nil {
		return nil, errors.Join(fmt.Errorf("start a Prefect server on %s: %w", db.Version, err), db.Stop())
	}
	p.Postgres = db
	return p, nil
}

func freePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, fmt.Errorf("find a free loopback port: %w", err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}
