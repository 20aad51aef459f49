package localstack

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"sync"
	"syscall"
	"time"
)

// Moto is a running moto server (the AWS peer of the ECS backend's tests)
// started by StartMoto from infra/local/motoserver.py, with pushpool's test
// controls under /_pushpool/.
type Moto struct {
	// URL is the endpoint to point AWS SDK clients at, e.g. http://127.0.0.1:PORT.
	URL string

	dir     string
	cmd     *exec.Cmd
	logPath string
	done    chan struct{}
	stop    sync.Once
	stopErr error
	client  *http.Client
}

// MotoTaskStop describes how a task finished, for Moto.SetTaskStopped.
type MotoTaskStop struct {
	// ExitCode is the containers' exit code; nil reports none, as AWS does
	// for a container that never ran.
	ExitCode *int `json:"exitCode"`
	// StopCode is the task's stopCode; empty means EssentialContainerExited.
	StopCode string `json:"stopCode,omitempty"`
	// StoppedReason is the task's stoppedReason; empty means "Essential
	// container in task exited".
	StoppedReason string `json:"stoppedReason,omitempty"`
	// ContainerReason is the containers' reason (e.g. OutOfMemoryError).
	ContainerReason string `json:"containerReason,omitempty"`
	// NoContainers removes the task's containers, as AWS reports a task that
	// failed to start (stopCode TaskFailedToStart).
	NoContainers bool `json:"noContainers,omitempty"`
}

// MotoFault is an error moto answers instead of an ECS action, for
// Moto.InjectFault.
type MotoFault struct {
	// Action is the API action, e.g. "RunTask" (matched against X-Amz-Target).
	Action string `json:"action"`
	// Times is how many requests get the fault; negative means until
	// ClearFaults.
	Times int `json:"times"`
	// Status is the HTTP status; zero means 400, or 200 with Body.
	Status int `json:"status,omitempty"`
	// Type is the AWS error code, e.g. "ThrottlingException".
	Type string `json:"type,omitempty"`
	// Message is the error message.
	Message string `json:"message,omitempty"`
	// Body, when set, is answered as the JSON response instead of an error
	// (e.g. a RunTask response with failures).
	Body any `json:"body,omitempty"`
}

// StartMoto starts infra/local/motoserver.py with the pinned virtualenv's
// Python on a free loopback port and waits until it answers. The caller
// must call Stop. Tasks in it stay RUNNING until stopped.
func StartMoto(ctx context.Context) (*Moto, error) {
	venv, err := Venv(ctx)
	if err != nil {
		return nil, err
	}
	root, err := RepoRoot()
	if err != nil {
		return nil, err
	}
	var lastErr error
	for attempt := 0; attempt < 3; attempt++ {
		m, err := startMotoOnce(ctx, venv, filepath.Join(root, "infra", "local", "motoserver.py"))
		if err == nil {
			return m, nil
		}
		lastErr = err
		if ctx.Err() != nil {
			break
		}
	}
	return nil, lastErr
}

func startMotoOnce(ctx context.Context, venv, script string) (*Moto, error) {
	port, err := freePort()
	if err != nil {
		return nil, err
	}
	dir, logPath, logFile, err := serverDir("pushpool-moto-", "moto.log", "the moto server")
	if err != nil {
		return nil, err
	}
	defer logFile.Close()
	m := &Moto{
		URL:     fmt.Sprintf("http://127.0.0.1:%d", port),
		dir:     dir,
		logPath: logPath,
		done:    make(chan struct{}),
		client:  &http.Client{Timeout: 10 * time.Second},
	}
	cmd := exec.Command(filepath.Join(venv, "bin", "python"), script, strconv.Itoa(port))
	cmd.Dir = dir
	cmd.Stdout = logFile
	cmd.Stderr = logFile
	// Pdeathsig: a test binary that panics never calls Stop; the server
	// must not outlive it.
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	cmd.Env = append(ServerEnv(dir, nil), "MOTO_ALLOW_NONEXISTENT_REGION=true")
	if err := cmd.Start(); err != nil {
		os.RemoveAll(dir)
		return nil, fmt.Errorf("start the moto server (%s): %w", script, err)
	}
	m.cmd = cmd
	go func() { cmd.Wait(); close(m.done) }()
	if err := waitServing(ctx, "the moto server", m.URL+"/_pushpool/health", statusOK, cmd, m.done, 60*time.Second); err != nil {
		tail := m.LogTail(20)
		m.Stop()
		return nil, fmt.Errorf("%w\n--- last lines of the moto server log ---\n%s", err, tail)
	}
	return m, nil
}

// SetTaskStopped makes the task STOPPED as AWS reports a finished task.
func (m *Moto) SetTaskStopped(ctx context.Context, taskARN string, stop MotoTaskStop) error {
	body := struct {
		Task string `json:"task"`
		MotoTaskStop
	}{taskARN, stop}
	return m.control(ctx, http.MethodPost, "task/stop", body, nil)
}

// ForgetTask removes the task from moto, as AWS forgets old stopped tasks:
// DescribeTasks no longer returns it.
func (m *Moto) ForgetTask(ctx context.Context, taskARN string) error {
	return m.control(ctx, http.MethodPost, "task/forget", map[string]string{"task": taskARN}, nil)
}

// TasksStartedBy returns the ARNs of every task moto holds with that
// startedBy, whatever its status and cluster.
func (m *Moto) TasksStartedBy(ctx context.Context, startedBy string) ([]string, error) {
	var out struct {
		TaskArns []string `json:"taskArns"`
	}
	err := m.control(ctx, http.MethodGet, "tasks?startedBy="+url.QueryEscape(startedBy), nil, &out)
	return out.TaskArns, err
}

// TasksStartedByPrefix returns the ARNs of every task moto holds whose
// startedBy begins with prefix (a flow run id: the tasks of every attempt
// of the run), whatever its status and cluster.
func (m *Moto) TasksStartedByPrefix(ctx context.Context, prefix string) ([]string, error) {
	var out struct {
		TaskArns []string `json:"taskArns"`
	}
	err := m.control(ctx, http.MethodGet, "tasks?startedByPrefix="+url.QueryEscape(prefix), nil, &out)
	return out.TaskArns, err
}

// InjectFault makes moto answer the next f.Times requests for f.Action with f.
func (m *Moto) InjectFault(ctx context.Context, f MotoFault) error {
	return m.control(ctx, http.MethodPost, "fault", f, nil)
}

// ClearFaults removes every injected fault.
func (m *Moto) ClearFaults(ctx context.Context) error {
	return m.control(ctx, http.MethodDelete, "fault", nil, nil)
}

func (m *Moto) control(ctx context.Context, method, route string, in, out any) error {
	var body io.Reader
	if in != nil {
		data, err := json.Marshal(in)
		if err != nil {
			return fmt.Errorf("moto control %s: %w", route, err)
		}
		body = bytes.NewReader(data)
	}
	req, err := http.NewRequestWithContext(ctx, method, m.URL+"/_pushpool/"+route, body)
	if err != nil {
		return fmt.Errorf("moto control %s: %w", route, err)
	}
	resp, err := m.client.Do(req)
	if err != nil {
		return fmt.Errorf("moto control %s %s: %w", method, route, err)
	}
	defer resp.Body.Close()
	data, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("moto control %s %s: HTTP %d: %s", method, route, resp.StatusCode, bytes.TrimSpace(data))
	}
	if out != nil {
		if err := json.Unmarshal(data, out); err != nil {
			return fmt.Errorf("moto control %s: decode %q: %w", route, data, err)
		}
	}
	return nil
}

// PID is the process id of the moto server.
func (m *Moto) PID() int { return m.cmd.Process.Pid }

// LogTail returns the last n lines of the server's output.
func (m *Moto) LogTail(n int) string {
	return logTail(m.logPath, "moto server", n)
}

// Stop terminates the server's process group and removes its directory. It
// is safe to call more than once.
func (m *Moto) Stop() error {
	m.stop.Do(func() {
		m.stopErr = stopGroup(m.cmd, m.done, m.dir, "the moto server", 10*time.Second)
	})
	return m.stopErr
}
