package localstack

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"
)

// AzuriteAccount and AzuriteAccountKey are the storage account every
// Azurite instance serves: Microsoft's documented development account and
// its well-known key, not a secret.
const (
	AzuriteAccount    = "devstoreaccount1"
	AzuriteAccountKey = "Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw=="
)

// Azurite is a running Azurite queue service (Microsoft's Azure Storage
// emulator), the Storage peer of the Azure function's tests, started by
// StartAzurite from the npm package pinned in infra/local/azurite.
type Azurite struct {
	// QueueURL is the queue service endpoint of AzuriteAccount,
	// http://127.0.0.1:PORT/devstoreaccount1.
	QueueURL string
	// ConnectionString is a storage connection string for it, the form an
	// AzureWebJobsStorage app setting holds.
	ConnectionString string
	// Version is the Azurite version that runs.
	Version string

	dir     string
	cmd     *exec.Cmd
	logPath string
	done    chan struct{}
	stop    sync.Once
	stopErr error
}

// azuritePackage is the pinned npm package: infra/local/azurite holds its
// package.json (the exact version) and package-lock.json (every
// dependency, with integrity hashes), so `npm ci` installs the same tree
// everywhere.
type azuritePackage struct {
	dir     string // infra/local/azurite
	version string
	lock    []byte
}

func readAzuritePackage() (azuritePackage, error) {
	root, err := RepoRoot()
	if err != nil {
		return azuritePackage{}, err
	}
	p := azuritePackage{dir: filepath.Join(root, "infra", "local", "azurite")}
	data, err := os.ReadFile(filepath.Join(p.dir, "package.json"))
	if err != nil {
		return azuritePackage{}, fmt.Errorf("read the pinned Azurite package: %w", err)
	}
	var pkg struct {
		Dependencies map[string]string `json:"dependencies"`
	}
	if err := json.Unmarshal(data, &pkg); err != nil || pkg.Dependencies["azurite"] == "" {
		return azuritePackage{}, fmt.Errorf("%s names no azurite dependency (%v)", filepath.Join(p.dir, "package.json"), err)
	}
	p.version = pkg.Dependencies["azurite"]
	if p.lock, err = os.ReadFile(filepath.Join(p.dir, "package-lock.json")); err != nil {
		return azuritePackage{}, fmt.Errorf("read the Azurite lock file (regenerate it with `npm install --package-lock-only` in %s): %w", p.dir, err)
	}
	return p, nil
}

// AzuriteInstall returns the directory holding the pinned Azurite
// (node_modules/.bin/azurite-queue), installing it with `npm ci` on first
// use. It lives outside the source tree, in PUSHPOOL_AZURITE_DIR or
// ${XDG_CACHE_HOME:-~/.cache}/pushpool/azurite-<version>, and is reused
// while infra/local/azurite/package-lock.json is unchanged. Node.js 20 or
// newer and npm must be on PATH; without them the error says so.
func AzuriteInstall(ctx context.Context) (string, error) {
	p, err := readAzuritePackage()
	if err != nil {
		return "", err
	}
	dir := os.Getenv("PUSHPOOL_AZURITE_DIR")
	if dir == "" {
		cache := os.Getenv("XDG_CACHE_HOME")
		if cache == "" {
			home, err := os.UserHomeDir()
			if err != nil {
				return "", fmt.Errorf("find a cache directory for Azurite (set PUSHPOOL_AZURITE_DIR): %w", err)
			}
			cache = filepath.Join(home, ".cache")
		}
		dir = filepath.Join(cache, "pushpool", "azurite-"+p.version)
	}
	if azuriteInstalled(dir, p.lock) {
		return dir, nil
	}
	if err := checkNode(ctx); err != nil {
		return "", fmt.Errorf("the Azure tests need Azurite %s, installed from npm: %w", p.version, err)
	}
	npm, err := exec.LookPath("npm")
	if err != nil {
		return "", fmt.Errorf("the Azure tests need Azurite %s, installed from npm, and npm is not on PATH: install npm (Debian: apt-get install npm), or install Azurite yourself and point PUSHPOOL_AZURITE_DIR at a directory holding node_modules/.bin/azurite-queue", p.version)
	}
	if err := os.MkdirAll(filepath.Dir(dir), 0o755); err != nil {
		return "", fmt.Errorf("create the Azurite cache directory: %w", err)
	}
	// Install beside the final directory and rename it into place, so an
	// interrupted install is never mistaken for a finished one.
	tmp, err := os.MkdirTemp(filepath.Dir(dir), filepath.Base(dir)+".installing-")
	if err != nil {
		return "", fmt.Errorf("create a directory to install Azurite in: %w", err)
	}
	defer os.RemoveAll(tmp)
	for _, name := range []string{"package.json", "package-lock.json"} {
		data, err := os.ReadFile(filepath.Join(p.dir, name))
		if err != nil {
			return "", fmt.Errorf("read %s: %w", name, err)
		}
		if err := os.WriteFile(filepath.Join(tmp, name), data, 0o644); err != nil {
			return "", fmt.Errorf("copy %s: %w", name, err)
		}
	}
	fmt.Fprintf(os.Stderr, "localstack: installing Azurite %s into %s with npm ci (once; a few minutes)\n", p.version, dir)
	var out bytes.Buffer
	cmd := exec.CommandContext(ctx, npm, "ci", "--ignore-scripts", "--no-audit", "--no-fund", "--loglevel=error")
	cmd.Dir = tmp
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Run(); err != nil {
		return "", fmt.Errorf("npm ci could not install Azurite %s from %s: %w\n%s", p.version, p.dir, err, tail(out.String(), 20))
	}
	if err := os.WriteFile(filepath.Join(tmp, ".pushpool-lock"), p.lock, 0o644); err != nil {
		return "", fmt.Errorf("stamp the Azurite install: %w", err)
	}
	if err := os.RemoveAll(dir); err != nil {
		return "", fmt.Errorf("remove the outdated Azurite install in %s: %w", dir, err)
	}
	if err := os.Rename(tmp, dir); err != nil {
		if azuriteInstalled(dir, p.lock) {
			return dir, nil // another test process finished first
		}
		return "", fmt.Errorf("move the Azurite install into %s: %w", dir, err)
	}
	return dir, nil
}

func azuriteInstalled(dir string, lock []byte) bool {
	if _, err := os.Stat(filepath.Join(dir, "node_modules", ".bin", "azurite-queue")); err != nil {
		return false
	}
	stamp, err := os.ReadFile(filepath.Join(dir, ".pushpool-lock"))
	return err == nil && bytes.Equal(stamp, lock)
}

// checkNode fails unless a Node.js of at least version 20 is on PATH.
// (Azurite 3.37 declares Node 22; its queue service runs on Node 20.)
func checkNode(ctx context.Context) error {
	node, err := exec.LookPath("node")
	if err != nil {
		return errors.New("node is not on PATH: install Node.js 20 or newer (https://nodejs.org, or Debian: apt-get install nodejs npm)")
	}
	out, err := exec.CommandContext(ctx, node, "--version").Output()
	if err != nil {
		return fmt.Errorf("run %s --version: %w", node, err)
	}
	v := strings.TrimPrefix(strings.TrimSpace(string(out)), "v")
	major, _ := strconv.Atoi(strings.SplitN(v, ".", 2)[0])
	if major < 20 {
		return fmt.Errorf("%s is Node.js %s; Azurite needs 20 or newer: upgrade Node.js", node, v)
	}
	return nil
}

// StartAzurite installs the pinned Azurite if needed (AzuriteInstall),
// starts its queue service on a free loopback port with a temporary
// workspace, API version checks off and loose mode on, and waits until it
// answers. The caller must call Stop.
func StartAzurite(ctx context.Context) (*Azurite, error) {
	dir, err := AzuriteInstall(ctx)
	if err != nil {
		return nil, err
	}
	p, err := readAzuritePackage()
	if err != nil {
		return nil, err
	}
	var lastErr error
	for attempt := 0; attempt < 3; attempt++ {
		a, err := startAzuriteOnce(ctx, filepath.Join(dir, "node_modules", ".bin", "azurite-queue"))
		if err == nil {
			a.Version = p.version
			return a, nil
		}
		lastErr = err
		if ctx.Err() != nil {
			break
		}
	}
	return nil, lastErr
}

func startAzuriteOnce(ctx context.Context, bin string) (*Azurite, error) {
	node, err := exec.LookPath("node")
	if err != nil {
		return nil, errors.New("node is not on PATH: install Node.js 20 or newer to run Azurite")
	}
	port, err := freePort()
	if err != nil {
		return nil, err
	}
	dir, logPath, logFile, err := serverDir("pushpool-azurite-", "azurite.log", "Azurite")
	if err != nil {
		return nil, err
	}
	defer logFile.Close()
	queueURL := fmt.Sprintf("http://127.0.0.1:%d/%s", port, AzuriteAccount)
	a := &Azurite{
		QueueURL: queueURL,
		ConnectionString: "DefaultEndpointsProtocol=http;AccountName=" + AzuriteAccount + ";AccountKey=" + AzuriteAccountKey +
			";QueueEndpoint=" + queueURL + ";",
		dir:     dir,
		logPath: logPath,
		done:    make(chan struct{}),
	}
	workspace := filepath.Join(dir, "data")
	if err := os.Mkdir(workspace, 0o700); err != nil {
		os.RemoveAll(dir)
		return nil, fmt.Errorf("create the Azurite workspace: %w", err)
	}
	cmd := exec.Command(node, bin, "--queueHost", "127.0.0.1", "--queuePort", strconv.Itoa(port),
		"--location", workspace, "--skipApiVersionCheck", "--loose", "--disableTelemetry")
	cmd.Dir = dir
	cmd.Stdout, cmd.Stderr = logFile, logFile
	// Pdeathsig: a test binary that panics never calls Stop; the emulator
	// must not outlive it.
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		os.RemoveAll(dir)
		return nil, fmt.Errorf("start Azurite (%s): %w", bin, err)
	}
	a.cmd = cmd
	go func() { cmd.Wait(); close(a.done) }()
	if err := waitServing(ctx, "azurite", a.QueueURL+"?comp=list",
		// Any HTTP answer (an unsigned request gets 403) means it is serving.
		func(status int) bool { return status < 500 }, cmd, a.done, 60*time.Second); err != nil {
		logTail := a.LogTail(20)
		a.Stop()
		return nil, fmt.Errorf("%w\n--- last lines of the Azurite log ---\n%s", err, logTail)
	}
	return a, nil
}

// LogTail returns the last n lines of the emulator's output.
func (a *Azurite) LogTail(n int) string {
	return logTail(a.logPath, "Azurite", n)
}

// Stop terminates the emulator's process group and removes its workspace.
// It is safe to call more than once.
func (a *Azurite) Stop() error {
	a.stop.Do(func() {
		a.stopErr = stopGroup(a.cmd, a.done, a.dir, "Azurite", 10*time.Second)
	})
	return a.stopErr
}
