package localstack

import (
	"context"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"time"
)

// waitServing polls url every 100ms until ok accepts the answer's status,
// the process cmd exits (done closes) or timeout passes. what names the
// server in errors.
func waitServing(ctx context.Context, what, url string, ok func(status int) bool, cmd *exec.Cmd, done <-chan struct{}, timeout time.Duration) error {
	client := &http.Client{Timeout: 2 * time.Second}
	return waitReady(ctx, what, url, func(ctx context.Context) bool {
		req, _ := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
		resp, err := client.Do(req)
		if err != nil {
			return false
		}
		resp.Body.Close()
		return ok(resp.StatusCode)
	}, cmd, done, timeout)
}

// waitReady calls ready every 100ms until it reports true, the process cmd
// exits (done closes) or timeout passes. what names the server and target
// what it is waited on (a URL, an address) in errors.
func waitReady(ctx context.Context, what, target string, ready func(context.Context) bool, cmd *exec.Cmd, done <-chan struct{}, timeout time.Duration) error {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	tick := time.NewTicker(100 * time.Millisecond)
	defer tick.Stop()
	for {
		if ready(ctx) {
			return nil
		}
		select {
		case <-done:
			return fmt.Errorf("%s exited before it answered (%v)", what, cmd.ProcessState)
		case <-ctx.Done():
			return fmt.Errorf("%s did not answer %s within %s: %w", what, target, timeout, ctx.Err())
		case <-tick.C:
		}
	}
}

// serverDir makes a fresh temporary directory for a server the package
// starts (what names it in errors) and creates its log file in it. The
// caller closes the log once the server process holds it, and removes dir
// when the server stops.
func serverDir(prefix, logName, what string) (dir, logPath string, log *os.File, err error) {
	dir, err = os.MkdirTemp("", prefix)
	if err != nil {
		return "", "", nil, fmt.Errorf("create a directory for %s: %w", what, err)
	}
	logPath = filepath.Join(dir, logName)
	log, err = os.Create(logPath)
	if err != nil {
		os.RemoveAll(dir)
		return "", "", nil, fmt.Errorf("create the log of %s: %w", what, err)
	}
	return dir, logPath, log, nil
}

func statusOK(status int) bool { return status == http.StatusOK }

// logTail returns the last n lines of the log file at path.
func logTail(path, what string, n int) string {
	data, err := os.ReadFile(path)
	if err != nil {
		return fmt.Sprintf("(no %s log: %v)", what, err)
	}
	return tail(string(data), n)
}

func tail(s string, n int) string {
	lines := strings.Split(strings.TrimRight(s, "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}

// stopGroup ends the process group led by cmd: SIGTERM, then SIGKILL after
// grace, then SIGKILL again for children that outlived the leader; then it
// removes dir. what names the server in errors.
func stopGroup(cmd *exec.Cmd, done <-chan struct{}, dir, what string, grace time.Duration) error {
	var err error
	pgid := cmd.Process.Pid
	_ = syscall.Kill(-pgid, syscall.SIGTERM)
	select {
	case <-done:
	case <-time.After(grace):
		_ = syscall.Kill(-pgid, syscall.SIGKILL)
		<-done
		err = fmt.Errorf("%s ignored SIGTERM for %v and was killed", what, grace)
	}
	_ = syscall.Kill(-pgid, syscall.SIGKILL)
	if rerr := os.RemoveAll(dir); rerr != nil && err == nil {
		err = fmt.Errorf("remove the %s directory: %w", what, rerr)
	}
	return err
}
