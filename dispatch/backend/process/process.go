// Package process runs flow runs as local subprocesses, the way Prefect's
// process worker does: the rendered command, in the rendered working
// directory, with the dispatcher's environment plus the rendered env. It is
// pushpool's default backend when no cloud is configured.
package process

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/pushpool/pushpool/dispatch"
	"github.com/pushpool/pushpool/dispatch/pooltype"
)

// PoolType is the Prefect work pool type this backend serves.
const PoolType = string(pooltype.Process)

// Config configures a Backend.
type Config struct {
	// StateDir keeps one record per attempt, which makes Start idempotent
	// across every dispatcher on this host that shares the directory, plus
	// each attempt's output and exit code. Empty means <temp dir>/pushpool-process.
	StateDir string
	// StopGrace is how long Stop waits after SIGTERM before SIGKILL. Zero
	// means 30 seconds, as Prefect's process worker.
	StopGrace time.Duration
	// Output receives the output of jobs whose stream_output is true (the
	// default), besides their log file. Nil means only the log file.
	Output io.Writer
	// Logger receives a line per started and finished process. Nil discards.
	Logger *slog.Logger
}

// Backend starts flow runs as local processes. Its infrastructure ids are
// "<hostname>:<pid>": a process id means nothing on another host, and the
// host part lets Status and Stop refuse to act on one.
//
// The state directory holds, per attempt (its Token):
//   - attempt-<token>.json: the process started for it — first an intent
//     without a pid, then the pid — written under an exclusive lock on
//     attempt-<token>.lock that the kernel releases when its holder dies, so
//     a dispatcher killed while starting leaves no dead end, and only an
//     intent without a pid sends a later Start or Find looking for the
//     process by its environment;
//   - exit-<token>.json: how it exited, written by the dispatcher that
//     started it;
//   - run-<token>.log: its output; work-<token>/: its working directory when
//     the job names none;
//
// and pid-<pid>.json, the attempt a pid was last started for with the
// process's start time, so an exit is never taken from another process that
// reused the pid.
type Backend struct {
	cfg      Config
	hostname string
	log      *slog.Logger
	wg       sync.WaitGroup

	mu      sync.Mutex
	running map[int]string // pid → attempt token, of processes this Backend started
}

var _ dispatch.Backend = (*Backend)(nil)

// New returns a Backend, creating its state directory.
func New(cfg Config) (*Backend, error) {
	if cfg.StateDir == "" {
		cfg.StateDir = filepath.Join(os.TempDir(), "pushpool-process")
	}
	if cfg.StopGrace == 0 {
		cfg.StopGrace = 30 * time.Second
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	if err := os.MkdirAll(cfg.StateDir, 0o700); err != nil {
		return nil, fmt.Errorf("create the process backend's state directory: %w", err)
	}
	host, err := os.Hostname()
	if err != nil {
		return nil, fmt.Errorf("read the hostname: %w", err)
	}
	return &Backend{cfg: cfg, hostname: host, log: cfg.Logger, running: map[int]string{}}, nil
}

// record is what the state directory keeps about an attempt's process.
type record struct {
	FlowRunID string    `json:"flow_run_id"`
	Attempt   string    `json:"attempt"`
	PID       int       `json:"pid"`
	Ticks     uint64    `json:"start_ticks"`
	Started   time.Time `json:"started"`
}

// pidRecord maps a pid to the attempt whose process last had it.
type pidRecord struct {
	Token string `json:"attempt_token"`
	Ticks uint64 `json:"start_ticks"`
}

func (b *Backend) path(kind, name string) string {
	return filepath.Join(b.cfg.StateDir, kind+"-"+name)
}

// Start starts the job's command for job.Attempt unless that attempt was
// started before (by this or another dispatcher on this host), in which case
// it returns the id of that process.
func (b *Backend) Start(ctx context.Context, job dispatch.Job) (string, error) {
	if job.Attempt.IsZero() {
		return "", fmt.Errorf("start flow run %s: the job names no attempt (a bug in the caller)", job.FlowRunID)
	}
	spec, err := parseJob(job)
	if err != nil {
		return "", err
	}
	token := job.Attempt.Token()
	unlock, err := b.lock(ctx, token)
	if err != nil {
		return "", fmt.Errorf("start flow run %s: %w", job.FlowRunID, err)
	}
	defer unlock()
	if id, found, err := b.find(token); err != nil || found {
		return id, err
	}
	// The intent (a record without a pid) tells a later Start or Find, should
	// this dispatcher die before recording the process, to look for it.
	intent := record{FlowRunID: job.FlowRunID, Attempt: job.Attempt.Key()}
	data, _ := json.Marshal(intent)
	if err := writeFileAtomic(b.path("attempt", token+".json"), data); err != nil {
		return "", fmt.Errorf("record the start of flow run %s in %s: %w", job.FlowRunID, b.cfg.StateDir, err)
	}
	pid, ticks, err := b.start(job.FlowRunID, token, spec)
	if err != nil {
		os.Remove(b.path("attempt", token+".json")) // nothing started
		return "", err
	}
	if err := b.remember(record{FlowRunID: job.FlowRunID, Attempt: job.Attempt.Key(), PID: pid, Ticks: ticks, Started: time.Now().UTC()}, token); err != nil {
		return "", fmt.Errorf("record process %d of flow run %s: %w", pid, job.FlowRunID, err)
	}
	return b.id(pid), nil
}

// Find returns the process started for job.Attempt on this host: the one
// recorded for it, or, when its dispatcher died before recording it, a live
// process whose environment names the attempt. Processes on other hosts are
// not seen.
func (b *Backend) Find(ctx context.Context, job dispatch.Job) (string, bool, error) {
	return b.find(job.Attempt.Token())
}

func (b *Backend) find(token string) (string, bool, error) {
	data, err := os.ReadFile(b.path("attempt", token+".json"))
	switch {
	case errors.Is(err, os.ErrNotExist):
		return "", false, nil // never started
	case err != nil:
		return "", false, fmt.Errorf("read the record of attempt %s: %w", token, err)
	}
	var rec record
	if err := json.Unmarshal(data, &rec); err != nil || rec.PID < 0 {
		return "", false, fmt.Errorf("read the record of attempt %s in %s: it is damaged (%v); remove it to start the attempt again", token, b.cfg.StateDir, err)
	}
	if rec.PID > 0 {
		return b.id(rec.PID), true, nil
	}
	// Only an intent: its dispatcher was killed after deciding to start the
	// process, maybe after starting it. Such a process lives with the
	// attempt in its environment.
	if pid, ticks, ok := processWithEnv(dispatch.EnvAttempt + "=" + token); ok {
		flowRunID, key, _ := dispatch.ParseToken(token)
		if err := b.remember(record{FlowRunID: flowRunID, Attempt: key, PID: pid, Ticks: ticks, Started: time.Now().UTC()}, token); err != nil {
			return "", false, fmt.Errorf("record process %d of attempt %s: %w", pid, token, err)
		}
		return b.id(pid), true, nil
	}
	return "", false, nil
}

// remember writes an attempt's record and its pid's.
func (b *Backend) remember(rec record, token string) error {
	data, _ := json.Marshal(pidRecord{Token: token, Ticks: rec.Ticks})
	if err := writeFileAtomic(b.path("pid", strconv.Itoa(rec.PID)+".json"), data); err != nil {
		return err
	}
	data, _ = json.Marshal(rec)
	return writeFileAtomic(b.path("attempt", token+".json"), data)
}

// lock takes the attempt's exclusive lock, waiting for another holder as
// long as ctx allows. The kernel releases it when its holder dies.
func (b *Backend) lock(ctx context.Context, token string) (func(), error) {
	f, err := os.OpenFile(b.path("attempt", token+".lock"), os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		return nil, fmt.Errorf("open the lock of attempt %s in %s: %w", token, b.cfg.StateDir, err)
	}
	for {
		err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB)
		if err == nil {
			return func() { syscall.Flock(int(f.Fd()), syscall.LOCK_UN); f.Close() }, nil
		}
		if !errors.Is(err, syscall.EWOULDBLOCK) {
			f.Close()
			return nil, fmt.Errorf("lock attempt %s: %w", token, err)
		}
		select {
		case <-ctx.Done():
			f.Close()
			return nil, fmt.Errorf("wait for another dispatcher starting attempt %s on this host: %w", token, context.Cause(ctx))
		case <-time.After(20 * time.Millisecond):
		}
	}
}

type jobSpec struct {
	argv       []string
	env        []string
	workingDir string
	stream     bool
}

// parseJob reads the fields of a process job configuration.
func parseJob(job dispatch.Job) (jobSpec, error) {
	cfg := job.Configuration
	spec := jobSpec{stream: true}
	command, _ := cfg["command"].(string)
	argv, err := splitCommand(command)
	if err != nil {
		return spec, fmt.Errorf("job configuration field \"command\" of flow run %s: %w", job.FlowRunID, err)
	}
	if len(argv) == 0 {
		return spec, fmt.Errorf("job configuration of flow run %s has no command: set the \"command\" job variable or keep the default", job.FlowRunID)
	}
	spec.argv = argv
	if s, ok := cfg["stream_output"].(bool); ok {
		spec.stream = s
	}
	if wd, ok := cfg["working_dir"].(string); ok && wd != "" {
		info, err := os.Stat(wd)
		if err != nil || !info.IsDir() {
			return spec, fmt.Errorf("working_dir %q of flow run %s is not a directory on this host: set the working_dir job variable to an existing directory", wd, job.FlowRunID)
		}
		spec.workingDir = wd
	}
	// As Prefect's process worker: the dispatcher's environment, then the job's.
	env := map[string]string{}
	for _, kv := range os.Environ() {
		k, v, _ := strings.Cut(kv, "=")
		env[k] = v
	}
	if m, ok := cfg["env"].(map[string]any); ok {
		for k, v := range m {
			switch v := v.(type) {
			case nil:
				delete(env, k)
			case string:
				env[k] = v
			default:
				env[k] = fmt.Sprint(v)
			}
		}
	}
	if !job.Attempt.IsZero() {
		env[dispatch.EnvAttempt] = job.Attempt.Token()
	}
	keys := make([]string, 0, len(env))
	for k := range env {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		spec.env = append(spec.env, k+"="+env[k])
	}
	return spec, nil
}

// start launches the process in its own process group and records its exit.
func (b *Backend) start(flowRunID, token string, spec jobSpec) (pid int, ticks uint64, err error) {
	workingDir := spec.workingDir
	if workingDir == "" {
		workingDir = b.path("work", token)
		if err := os.MkdirAll(workingDir, 0o700); err != nil {
			return 0, 0, fmt.Errorf("create a working directory for flow run %s: %w", flowRunID, err)
		}
	}
	logFile, err := os.OpenFile(b.path("run", token+".log"), os.O_WRONLY|os.O_CREATE|os.O_APPEND, 0o600)
	if err != nil {
		return 0, 0, fmt.Errorf("create the output file of flow run %s: %w", flowRunID, err)
	}
	var out io.Writer = logFile
	if spec.stream && b.cfg.Output != nil {
		out = io.MultiWriter(logFile, b.cfg.Output)
	}
	path, err := lookPath(spec.argv[0], spec.env)
	if err != nil {
		logFile.Close()
		return 0, 0, fmt.Errorf("command %q of flow run %s is not found on this host's PATH: install it or set the command job variable: %w", spec.argv[0], flowRunID, err)
	}
	cmd := exec.Command(path, spec.argv[1:]...)
	cmd.Args[0] = spec.argv[0]
	cmd.Dir = workingDir
	cmd.Env = spec.env
	cmd.Stdout, cmd.Stderr = out, out
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := cmd.Start(); err != nil {
		logFile.Close()
		return 0, 0, fmt.Errorf("start the process of flow run %s: %w", flowRunID, err)
	}
	pid = cmd.Process.Pid
	ticks, _ = startTicks(pid)
	b.log.Info("process started", slog.String("flow_run_id", flowRunID), slog.String("attempt", token), slog.Int("pid", pid))
	b.mu.Lock()
	b.running[pid] = token
	b.mu.Unlock()
	b.wg.Go(func() {
		err := cmd.Wait()
		b.mu.Lock()
		delete(b.running, pid)
		b.mu.Unlock()
		logFile.Close()
		code, reason := exitCode(cmd.ProcessState, err)
		data, _ := json.Marshal(exitRecord{FlowRunID: flowRunID, ExitCode: code, Reason: reason, ExitedAt: time.Now().UTC()})
		if err := writeFileAtomic(b.path("exit", token+".json"), data); err != nil {
			b.log.Error("could not record the exit of a process", slog.String("flow_run_id", flowRunID), slog.Int("pid", pid), slog.String("error", err.Error()))
		}
		b.log.Info("process exited", slog.String("flow_run_id", flowRunID), slog.String("attempt", token), slog.Int("pid", pid), slog.Int("exit_code", code))
	})
	return pid, ticks, nil
}

// Wait blocks until every process this Backend started has exited and its
// exit has been recorded. It is for tests and orderly shutdown.
func (b *Backend) Wait() { b.wg.Wait() }

// Running returns the infrastructure ids of the processes this Backend
// started that have not exited yet.
func (b *Backend) Running() []string {
	b.mu.Lock()
	defer b.mu.Unlock()
	ids := make([]string, 0, len(b.running))
	for pid := range b.running {
		ids = append(ids, b.id(pid))
	}
	sort.Strings(ids)
	return ids
}

// StopAll stops every process this Backend started that is still running, as
// Stop does, all at once, and returns when all have been handled.
func (b *Backend) StopAll(ctx context.Context) error {
	ids := b.Running()
	errs := make([]error, len(ids))
	var wg sync.WaitGroup
	for i, id := range ids {
		wg.Go(func() { errs[i] = b.Stop(ctx, id) })
	}
	wg.Wait()
	return errors.Join(errs...)
}

type exitRecord struct {
	FlowRunID string    `json:"flow_run_id"`
	ExitCode  int       `json:"exit_code"`
	Reason    string    `json:"reason,omitempty"`
	ExitedAt  time.Time `json:"exited_at"`
}

// exitCode gives the shell's convention: the exit status, or 128+signal for a
// process killed by a signal (137 for SIGKILL), as Prefect reports them.
func exitCode(ps *os.ProcessState, waitErr error) (int, string) {
	if ps == nil {
		return -1, fmt.Sprintf("wait failed: %v", waitErr)
	}
	if ws, ok := ps.Sys().(syscall.WaitStatus); ok && ws.Signaled() {
		return 128 + int(ws.Signal()), fmt.Sprintf("the process was ended by signal %d (%s)", int(ws.Signal()), ws.Signal())
	}
	return ps.ExitCode(), ""
}

func (b *Backend) id(pid int) string { return b.hostname + ":" + strconv.Itoa(pid) }

// attemptOfPID returns the token of the attempt whose process last had
// pid, and that process's start time; ok is false when no dispatcher on this
// host started a process with that pid.
func (b *Backend) attemptOfPID(pid int) (pidRecord, bool) {
	data, err := os.ReadFile(b.path("pid", strconv.Itoa(pid)+".json"))
	if err != nil {
		return pidRecord{}, false
	}
	var rec pidRecord
	if json.Unmarshal(data, &rec) != nil || rec.Token == "" {
		return pidRecord{}, false
	}
	return rec, true
}

// parseID splits "<hostname>:<pid>" and refuses other hosts' processes.
func (b *Backend) parseID(id string) (int, error) {
	host, pidText, ok := strings.Cut(id, ":")
	pid, err := strconv.Atoi(pidText)
	if !ok || err != nil || pid <= 0 {
		return 0, fmt.Errorf("infrastructure id %q is not a process id of the form <hostname>:<pid>", id)
	}
	if host != b.hostname {
		return 0, fmt.Errorf("process %s runs on host %q, not on this host (%q): only a dispatcher on that host can watch or stop it: %w", id, host, b.hostname, dispatch.ErrForeign)
	}
	return pid, nil
}

// Status reports whether the process runs, how it exited, or that it is
// gone, and the attempt it was started for.
func (b *Backend) Status(ctx context.Context, id string) (dispatch.Status, error) {
	pid, err := b.parseID(id)
	if err != nil {
		return dispatch.Status{}, err
	}
	rec, known := b.attemptOfPID(pid)
	if !known {
		// Not started by a dispatcher on this host (or by a version before
		// attempts): only whether it lives can be told.
		if alive(pid) {
			return dispatch.Status{State: dispatch.StateRunning}, nil
		}
		return dispatch.Status{State: dispatch.StateNotFound, Reason: "the process is gone and no dispatcher on this host started it"}, nil
	}
	_, key, _ := dispatch.ParseToken(rec.Token)
	if data, err := os.ReadFile(b.path("exit", rec.Token+".json")); err == nil {
		var ex exitRecord
		if err := json.Unmarshal(data, &ex); err != nil {
			return dispatch.Status{}, fmt.Errorf("read the exit record of process %s: %w", id, err)
		}
		return dispatch.Status{State: dispatch.StateExited, ExitCode: ex.ExitCode, Reason: ex.Reason, ExitedAt: ex.ExitedAt, Attempt: key}, nil
	}
	if alive(pid) {
		if ticks, ok := startTicks(pid); !ok || rec.Ticks == 0 || ticks == rec.Ticks {
			return dispatch.Status{State: dispatch.StateRunning, Attempt: key}, nil
		}
	}
	return dispatch.Status{State: dispatch.StateNotFound, Attempt: key, Reason: "the process is gone and no dispatcher on this host recorded its exit"}, nil
}

// Stop sends SIGTERM (and SIGCONT, for a frozen process) to the process
// group, then SIGKILL after StopGrace.
// A process that is already gone counts as stopped.
func (b *Backend) Stop(ctx context.Context, id string) error {
	pid, err := b.parseID(id)
	if err != nil {
		return err
	}
	if err := syscall.Kill(-pid, syscall.SIGTERM); errors.Is(err, syscall.ESRCH) {
		return nil
	} else if err != nil {
		return fmt.Errorf("stop process %s: %w", id, err)
	}
	// A stopped (SIGSTOP, frozen) process only acts on SIGTERM once continued.
	_ = syscall.Kill(-pid, syscall.SIGCONT)
	deadline := time.NewTimer(b.cfg.StopGrace)
	defer deadline.Stop()
	tick := time.NewTicker(50 * time.Millisecond)
	defer tick.Stop()
	for alive(pid) {
		select {
		case <-ctx.Done():
			return fmt.Errorf("stop process %s: %w", id, context.Cause(ctx))
		case <-deadline.C:
			if err := syscall.Kill(-pid, syscall.SIGKILL); err != nil && !errors.Is(err, syscall.ESRCH) {
				return fmt.Errorf("kill process %s: %w", id, err)
			}
		case <-tick.C:
		}
	}
	return nil
}

// startTicks returns the start time of process pid in clock ticks since
// boot (field 22 of /proc/<pid>/stat), which tells a process from a later one
// that reused its pid.
func startTicks(pid int) (uint64, bool) {
	stat, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0, false
	}
	i := strings.LastIndexByte(string(stat), ')')
	if i < 0 {
		return 0, false
	}
	fields := strings.Fields(string(stat[i+1:]))
	// fields[0] is field 3 (state); field 22 is fields[19].
	if len(fields) < 20 {
		return 0, false
	}
	n, err := strconv.ParseUint(fields[19], 10, 64)
	return n, err == nil
}

// processWithEnv finds a live process group leader whose environment holds
// the entry kv, as a job of this backend carries its attempt.
func processWithEnv(kv string) (pid int, ticks uint64, ok bool) {
	procs, _ := filepath.Glob("/proc/[0-9]*/environ")
	for _, p := range procs {
		data, err := os.ReadFile(p)
		if err != nil || !strings.Contains("\x00"+string(data)+"\x00", "\x00"+kv+"\x00") {
			continue
		}
		n, err := strconv.Atoi(filepath.Base(filepath.Dir(p)))
		if err != nil || !alive(n) || syscallGetpgid(n) != n {
			continue
		}
		t, _ := startTicks(n)
		return n, t, true
	}
	return 0, 0, false
}

func syscallGetpgid(pid int) int {
	g, err := syscall.Getpgid(pid)
	if err != nil {
		return -1
	}
	return g
}

// alive reports whether pid is a live (not zombie) process.
func alive(pid int) bool {
	if err := syscall.Kill(pid, 0); err != nil && !errors.Is(err, syscall.EPERM) {
		return false
	}
	stat, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return true // no /proc: trust kill(0)
	}
	// The state is the field after the parenthesised command name.
	if i := strings.LastIndexByte(string(stat), ')'); i >= 0 && i+2 < len(stat) {
		return stat[i+2] != 'Z'
	}
	return true
}

func writeFileAtomic(path string, data []byte) error {
	tmp := path + ".tmp"
	if err := os.WriteFile(tmp, data, 0o600); err != nil {
		return err
	}
	return os.Rename(tmp, path)
}

// lookPath finds a command on the PATH of the job's environment.
func lookPath(name string, env []string) (string, error) {
	if strings.Contains(name, "/") {
		return exec.LookPath(name)
	}
	for _, kv := range env {
		if v, ok := strings.CutPrefix(kv, "PATH="); ok {
			for _, dir := range filepath.SplitList(v) {
				p := filepath.Join(dir, name)
				if info, err := os.Stat(p); err == nil && !info.IsDir() && info.Mode()&0o111 != 0 {
					return p, nil
				}
			}
			return "", exec.ErrNotFound
		}
	}
	return exec.LookPath(name)
}
