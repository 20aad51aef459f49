package localstack

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"
)

// PostgresSuperuser is the superuser of every cluster StartPostgres
// creates; loopback connections as it need no password.
const PostgresSuperuser = "postgres"

// PostgresOptions configures a PostgreSQL server started by StartPostgres.
// The zero value is ready to use.
type PostgresOptions struct {
	// Database is the database to create for the caller: lower-case
	// letters, digits and underscores, at most 63. Empty means "prefect".
	Database string
	// MaxConnections is the server's max_connections. Zero means 300,
	// enough for several Prefect servers with their pools full.
	MaxConnections int
	// SharedBuffers is the server's shared_buffers, such as "128MB".
	// Empty means 128MB.
	SharedBuffers string
	// Settings holds extra server settings (postgres -c name=value),
	// applied after the defaults, e.g. {"log_min_duration_statement": "500"}.
	Settings map[string]string
	// StartTimeout bounds the wait until the server accepts connections.
	// Zero means 60 seconds.
	StartTimeout time.Duration
}

var databaseName = regexp.MustCompile(`^[a-z_][a-z0-9_]{0,62}$`)

// withDefaults returns o with every zero field set to its default.
func (o PostgresOptions) withDefaults() PostgresOptions {
	if o.Database == "" {
		o.Database = "prefect"
	}
	if o.MaxConnections == 0 {
		o.MaxConnections = 300
	}
	if o.SharedBuffers == "" {
		o.SharedBuffers = "128MB"
	}
	if o.StartTimeout == 0 {
		o.StartTimeout = 60 * time.Second
	}
	return o
}

// Validate reports the first option out of its limits.
func (o PostgresOptions) Validate() error {
	if o.Database != "" && !databaseName.MatchString(o.Database) {
		return fmt.Errorf("PostgresOptions.Database %q: want 1 to 63 lower-case letters, digits and underscores, not starting with a digit", o.Database)
	}
	if o.MaxConnections != 0 && (o.MaxConnections < 10 || o.MaxConnections > 10000) {
		return fmt.Errorf("PostgresOptions.MaxConnections %d: want 10 to 10000", o.MaxConnections)
	}
	if o.StartTimeout < 0 {
		return fmt.Errorf("PostgresOptions.StartTimeout %v: want zero (60s) or more", o.StartTimeout)
	}
	return nil
}

// Postgres is a running throwaway PostgreSQL cluster started by
// StartPostgres: its data directory, socket and log live in one temporary
// directory that Stop removes.
type Postgres struct {
	// Host is the address the server listens on, 127.0.0.1.
	Host string
	// Port is the server's TCP port.
	Port int
	// User is the superuser to connect as, PostgresSuperuser.
	User string
	// Database is the database created for the caller.
	Database string
	// Version is the server's version line, e.g. "PostgreSQL 15.18".
	Version string
	// BinDir is the directory of the server binaries it runs from.
	BinDir string
	// SocketDir is the directory of the server's unix socket.
	SocketDir string

	dir     string
	env     []string
	cmd     *exec.Cmd
	logPath string
	done    chan struct{}
	stop    sync.Once
	stopErr error
}

// DSN returns the SQLAlchemy connection URL of the database for asyncpg,
// postgresql+asyncpg://USER@127.0.0.1:PORT/DB, the form Prefect's
// PREFECT_API_DATABASE_CONNECTION_URL takes.
func (p *Postgres) DSN() string {
	return fmt.Sprintf("postgresql+asyncpg://%s@%s:%d/%s", p.User, p.Host, p.Port, p.Database)
}

// URL returns the libpq connection URL of the database,
// postgres://USER@127.0.0.1:PORT/DB, for psql and Go drivers.
func (p *Postgres) URL() string {
	return fmt.Sprintf("postgres://%s@%s:%d/%s", p.User, p.Host, p.Port, p.Database)
}

// StartPostgres creates a throwaway cluster in a fresh temporary directory
// with the newest PostgreSQL server found (PostgresBinDir), starts it on a
// free loopback port with durability off (fsync, synchronous_commit and
// full_page_writes off: a crash loses the data, which tests throw away
// anyway), waits until it accepts connections and creates opts.Database.
// Connections from 127.0.0.1 as PostgresSuperuser need no password; the
// server listens on no other address. Run as root, the cluster belongs to
// the postgres user (or nobody), since PostgreSQL refuses to run as root.
// The server dies with the calling process; the caller must call Stop.
func StartPostgres(ctx context.Context, opts PostgresOptions) (*Postgres, error) {
	if err := opts.Validate(); err != nil {
		return nil, err
	}
	opts = opts.withDefaults()
	bin, err := PostgresBinDir(os.Getenv("PUSHPOOL_PG_BIN"), "/usr/lib/postgresql")
	if err != nil {
		return nil, err
	}
	cred, err := postgresCredential()
	if err != nil {
		return nil, err
	}
	out, err := exec.CommandContext(ctx, filepath.Join(bin, "postgres"), "--version").Output()
	if err != nil {
		return nil, fmt.Errorf("run %s --version: %w", filepath.Join(bin, "postgres"), err)
	}
	version := strings.TrimSpace(strings.TrimPrefix(strings.TrimSpace(string(out)), "postgres (PostgreSQL) "))
	// A port picked here can be taken before the server binds it; try a few.
	var lastErr error
	for attempt := 0; attempt < 3; attempt++ {
		p, err := startPostgresOnce(ctx, bin, cred, opts)
		if err == nil {
			p.Version = "PostgreSQL " + version
			return p, nil
		}
		lastErr = err
		if ctx.Err() != nil {
			break
		}
	}
	return nil, lastErr
}

// PostgresBinDir returns the directory holding the PostgreSQL server
// binaries (initdb, postgres, pg_isready, psql): override when it is not
// empty, else the newest root/<version>/bin, Debian's layout under
// /usr/lib/postgresql. The error names what is missing and the fix.
func PostgresBinDir(override, root string) (string, error) {
	need := []string{"initdb", "postgres", "pg_isready", "psql"}
	missing := func(dir string) []string {
		var m []string
		for _, name := range need {
			if fi, err := os.Stat(filepath.Join(dir, name)); err != nil || fi.IsDir() || fi.Mode()&0o111 == 0 {
				m = append(m, name)
			}
		}
		return m
	}
	if override != "" {
		if m := missing(override); len(m) > 0 {
			return "", fmt.Errorf("PUSHPOOL_PG_BIN=%s lacks the PostgreSQL programs %s: point it at the bin directory of a PostgreSQL server install (Debian: /usr/lib/postgresql/<version>/bin)", override, strings.Join(m, ", "))
		}
		return override, nil
	}
	dirs, _ := filepath.Glob(filepath.Join(root, "*", "bin"))
	type candidate struct {
		dir     string
		version []int
	}
	var found []candidate
	for _, dir := range dirs {
		if len(missing(dir)) > 0 {
			continue
		}
		found = append(found, candidate{dir, versionParts(filepath.Base(filepath.Dir(dir)))})
	}
	if len(found) == 0 {
		return "", fmt.Errorf("PostgreSQL server binaries (initdb, postgres, pg_isready, psql) not found under %s: install Debian's postgresql package (apt-get install -y postgresql) or set PUSHPOOL_PG_BIN to the bin directory of a PostgreSQL install",
			filepath.Join(root, "*", "bin"))
	}
	sort.Slice(found, func(i, j int) bool { return compareVersions(found[i].version, found[j].version) > 0 })
	return found[0].dir, nil
}

// versionParts splits "15" or "9.6" into its numbers; what is not a
// number counts as 0.
func versionParts(v string) []int {
	var parts []int
	for _, s := range strings.Split(v, ".") {
		n, _ := strconv.Atoi(s)
		parts = append(parts, n)
	}
	return parts
}

func compareVersions(a, b []int) int {
	for i := 0; i < len(a) || i < len(b); i++ {
		var x, y int
		if i < len(a) {
			x = a[i]
		}
		if i < len(b) {
			y = b[i]
		}
		if x != y {
			return x - y
		}
	}
	return 0
}

// postgresCredential returns the user initdb and postgres run as: nil (the
// caller) unless the caller is root, which PostgreSQL refuses; then the
// postgres user, or nobody.
func postgresCredential() (*syscall.Credential, error) {
	if os.Geteuid() != 0 {
		return nil, nil
	}
	for _, name := range []string{"postgres", "nobody"} {
		u, err := user.Lookup(name)
		if err != nil {
			continue
		}
		uid, err1 := strconv.ParseUint(u.Uid, 10, 32)
		gid, err2 := strconv.ParseUint(u.Gid, 10, 32)
		if err1 != nil || err2 != nil {
			continue
		}
		return &syscall.Credential{Uid: uint32(uid), Gid: uint32(gid)}, nil
	}
	return nil, errors.New("PostgreSQL refuses to run as root and neither a postgres nor a nobody user exists: create one (useradd --system postgres) or run the tests as another user")
}

func startPostgresOnce(ctx context.Context, bin string, cred *syscall.Credential, opts PostgresOptions) (*Postgres, error) {
	port, err := freePort()
	if err != nil {
		return nil, err
	}
	dir, logPath, logFile, err := serverDir("pushpool-postgres-", "postgres.log", "PostgreSQL")
	if err != nil {
		return nil, err
	}
	defer logFile.Close()
	if cred != nil {
		if err := os.Chown(dir, int(cred.Uid), int(cred.Gid)); err != nil {
			os.RemoveAll(dir)
			return nil, fmt.Errorf("give the PostgreSQL directory %s to uid %d: %w", dir, cred.Uid, err)
		}
	}
	p := &Postgres{
		Host:      "127.0.0.1",
		Port:      port,
		User:      PostgresSuperuser,
		Database:  opts.Database,
		BinDir:    bin,
		SocketDir: dir,
		dir:       dir,
		// The caller's PG* variables (PGHOST, PGPASSWORD...) must not
		// reach initdb or psql, nor a locale the system may lack.
		env: []string{
			"PATH=" + os.Getenv("PATH"), "HOME=" + dir, "LC_ALL=C", "LANG=C", "TZ=UTC",
		},
		logPath: logPath,
		done:    make(chan struct{}),
	}
	data := filepath.Join(dir, "data")

	initdb := exec.CommandContext(ctx, filepath.Join(bin, "initdb"), "--pgdata", data,
		"--username", p.User, "--auth", "trust", "--encoding", "UTF8", "--no-locale",
		"--no-sync", "--no-instructions")
	initdb.Dir, initdb.Env = dir, p.env
	initdb.Stdout, initdb.Stderr = logFile, logFile
	initdb.SysProcAttr = &syscall.SysProcAttr{Credential: cred, Pdeathsig: syscall.SIGKILL}
	if err := initdb.Run(); err != nil {
		logTail := p.LogTail(20)
		os.RemoveAll(dir)
		return nil, fmt.Errorf("create a PostgreSQL cluster with %s in %s%s: %w\n--- last lines of the initdb output ---\n%s",
			initdb.Path, dir, credentialHint(cred), err, logTail)
	}

	settings := []string{
		"listen_addresses=" + p.Host,
		"port=" + strconv.Itoa(port),
		"unix_socket_directories=" + dir,
		"max_connections=" + strconv.Itoa(opts.MaxConnections),
		"shared_buffers=" + opts.SharedBuffers,
		// Durability off: the cluster is thrown away after the tests.
		"fsync=off", "synchronous_commit=off", "full_page_writes=off",
		"wal_level=minimal", "max_wal_senders=0",
		// Dynamic shared memory in the data directory, removed with it even
		// when the server is killed (POSIX segments would stay in /dev/shm).
		"dynamic_shared_memory_type=mmap",
		// JIT compiling Prefect's short queries costs more than it saves.
		"jit=off",
		"logging_collector=off", "log_min_messages=warning", "log_timezone=UTC", "timezone=UTC",
	}
	keys := make([]string, 0, len(opts.Settings))
	for k := range opts.Settings {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		settings = append(settings, k+"="+opts.Settings[k])
	}
	args := []string{"-D", data}
	for _, s := range settings {
		args = append(args, "-c", s)
	}
	cmd := exec.Command(filepath.Join(bin, "postgres"), args...)
	cmd.Dir, cmd.Env = dir, p.env
	cmd.Stdout, cmd.Stderr = logFile, logFile
	// Pdeathsig: a test binary killed by its timeout never calls Stop; the
	// server must not outlive it. The kernel sets it after the switch to
	// cred, so it holds for a server run as another user too.
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL, Credential: cred}
	if err := cmd.Start(); err != nil {
		os.RemoveAll(dir)
		return nil, fmt.Errorf("start PostgreSQL (%s): %w", cmd.Path, err)
	}
	p.cmd = cmd
	go func() { cmd.Wait(); close(p.done) }()

	addr := fmt.Sprintf("%s:%d", p.Host, port)
	if err := waitReady(ctx, "PostgreSQL", addr, p.accepting, cmd, p.done, opts.StartTimeout); err != nil {
		logTail := p.LogTail(20)
		p.Stop()
		return nil, fmt.Errorf("%w\n--- last lines of the PostgreSQL log ---\n%s", err, logTail)
	}
	if _, err := p.psql(ctx, "postgres", `CREATE DATABASE "`+opts.Database+`"`); err != nil {
		p.Stop()
		return nil, fmt.Errorf("create the database %s: %w", opts.Database, err)
	}
	return p, nil
}

func credentialHint(cred *syscall.Credential) string {
	if cred == nil {
		return ""
	}
	return fmt.Sprintf(" as uid %d (every directory above it must be searchable by that user; set TMPDIR to one that is)", cred.Uid)
}

// accepting reports whether the server accepts connections over TCP.
func (p *Postgres) accepting(ctx context.Context) bool {
	cmd := exec.CommandContext(ctx, filepath.Join(p.BinDir, "pg_isready"), "--quiet", "--timeout", "2",
		"--host", p.Host, "--port", strconv.Itoa(p.Port), "--username", p.User, "--dbname", "postgres")
	cmd.Env = p.env
	return cmd.Run() == nil
}

// Query runs one SQL statement (or several, separated by semicolons) in
// the caller's database with psql and returns its rows, one per line,
// columns separated by '|'. It is meant for test assertions and setup.
func (p *Postgres) Query(ctx context.Context, sql string) (string, error) {
	return p.psql(ctx, p.Database, sql)
}

func (p *Postgres) psql(ctx context.Context, db, sql string) (string, error) {
	var stdout, stderr bytes.Buffer
	cmd := exec.CommandContext(ctx, filepath.Join(p.BinDir, "psql"), "--no-psqlrc", "--quiet",
		"--no-align", "--tuples-only", "--set", "ON_ERROR_STOP=1",
		"--host", p.Host, "--port", strconv.Itoa(p.Port), "--username", p.User, "--dbname", db,
		"--command", sql)
	cmd.Env = p.env
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		return "", fmt.Errorf("psql %s: %w: %s", db, err, strings.TrimSpace(stderr.String()))
	}
	return strings.TrimRight(stdout.String(), "\n"), nil
}

// PID is the process id of the postmaster, the parent of every backend.
func (p *Postgres) PID() int { return p.cmd.Process.Pid }

// LogTail returns the last n lines of the server's log (with initdb's
// output before it).
func (p *Postgres) LogTail(n int) string {
	return logTail(p.logPath, "PostgreSQL", n)
}

// Stop shuts the server down and removes its directory: data, socket and
// log. It is safe to call more than once.
func (p *Postgres) Stop() error {
	p.stop.Do(func() {
		// SIGINT to the postmaster is PostgreSQL's fast shutdown: it ends
		// the sessions itself. stopGroup's SIGTERM would be a smart shutdown
		// (waiting for clients) and reach every backend directly.
		_ = p.cmd.Process.Signal(syscall.SIGINT)
		select {
		case <-p.done:
		case <-time.After(10 * time.Second):
		}
		p.stopErr = stopGroup(p.cmd, p.done, p.dir, "PostgreSQL", 5*time.Second)
	})
	return p.stopErr
}
