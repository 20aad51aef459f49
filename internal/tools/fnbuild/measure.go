package main

import (
	"archive/zip"
	"bytes"
	"context"
	"debug/buildinfo"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"text/tabwriter"
	"time"

	"github.com/pushpool/pushpool/internal/lambdaruntime"
)

// clouds names the cloud SDK module families, by module path prefix.
var clouds = []struct{ name, prefix string }{
	{"aws", "github.com/aws/aws-sdk-go-v2"},
	{"google", "cloud.google.com/go"},
	{"google", "google.golang.org/api"},
	{"azure", "github.com/Azure/azure-sdk-for-go"},
	{"azure", "github.com/AzureAD/"},
}

// linkedClouds reads the module list the Go toolchain records in a binary
// (what `go version -m` prints) and returns the clouds whose SDKs it links.
func linkedClouds(bin string) ([]string, error) {
	info, err := buildinfo.ReadFile(bin)
	if err != nil {
		return nil, fmt.Errorf("read the build info of %s: %w", bin, err)
	}
	var got []string
	for _, dep := range info.Deps {
		for _, c := range clouds {
			if strings.HasPrefix(dep.Path, c.prefix) && !slices.Contains(got, c.name) {
				got = append(got, c.name)
			}
		}
	}
	slices.Sort(got)
	return got, nil
}

// variant is one binary measured: a platform's build with its own backend
// or with every backend (-tags pushpool_all), or the provider.
type variant struct {
	name   string
	pkg    string
	tags   string
	own    []string // the clouds it may link
	launch launcher // nil: not started (the provider)
}

// variants are the binaries measured: each function's own-cloud build (the
// artifact) beside its all-in-one build, the pushpool command with every
// backend and with ECS only, and the provider.
func variants() []variant {
	return []variant{
		{name: "lambda bootstrap (ecs)", pkg: "./functions/lambda", tags: "lambda.norpc", own: []string{"aws"}, launch: launchLambda},
		{name: "lambda bootstrap, all-in-one", pkg: "./functions/lambda", tags: "lambda.norpc,pushpool_all", launch: launchLambda},
		{name: "gcp function (cloud-run-v2)", pkg: "./functions/gcp", own: []string{"google"}, launch: launchGCP},
		{name: "gcp function, all-in-one", pkg: "./functions/gcp", tags: "pushpool_all", launch: launchGCP},
		{name: "azure handler (aci)", pkg: "./functions/azure", own: []string{"azure"}, launch: launchAzure},
		{name: "azure handler, all-in-one", pkg: "./functions/azure", tags: "pushpool_all", launch: launchAzure},
		{name: "pushpool command", pkg: "./functions/pushpool"},
		{name: "pushpool command, -tags pushpool_ecs", pkg: "./functions/pushpool", tags: "pushpool_ecs", own: []string{"aws"}},
		{name: "terraform provider", pkg: "./provider", own: []string{}},
	}
}

// checkOwn fails when a binary links a cloud SDK it may not.
func (v variant) checkOwn(linked []string) error {
	if v.own == nil {
		return nil
	}
	for _, c := range linked {
		if !slices.Contains(v.own, c) {
			return fmt.Errorf("%s links the %s SDK; it may link only %v", v.name, c, v.own)
		}
	}
	return nil
}

// measurement is what make functions prints for a variant.
type measurement struct {
	variant
	size, zipped int64
	linked       []string
	ready, first []time.Duration
}

// measure builds every variant for this machine (linux/amd64 style flags,
// GOARCH of the host), reads its size and linked clouds, and starts the
// functions runs times each: process start to handler ready, and to the
// first request at the Prefect API.
func measure(ctx context.Context, runs int, gcpSource string) ([]measurement, error) {
	dir, err := os.MkdirTemp("", "fnbuild-measure")
	if err != nil {
		return nil, err
	}
	defer os.RemoveAll(dir)
	variants := variants()
	var out []measurement
	for i, v := range variants {
		bin := filepath.Join(dir, fmt.Sprintf("bin%d", i))
		var err error
		if v.pkg == "./functions/gcp" && v.tags == "" && gcpSource != "" {
			// The artifact is a source zip: build what Cloud Build would,
			// from the zip itself.
			err = buildFromSource(ctx, gcpSource, filepath.Join(dir, "gcp-src"), bin)
		} else {
			err = goBuildTo(ctx, ".", v.pkg, v.tags, bin)
		}
		if err != nil {
			return nil, err
		}
		m := measurement{variant: v}
		if m.size, m.zipped, err = sizes(bin); err != nil {
			return nil, err
		}
		if m.linked, err = linkedClouds(bin); err != nil {
			return nil, err
		}
		if err := v.checkOwn(m.linked); err != nil {
			return nil, err
		}
		for r := 0; v.launch != nil && r < runs; r++ {
			ready, first, err := startOnce(ctx, bin, v.launch)
			if err != nil {
				return nil, fmt.Errorf("%s, start %d: %w", v.name, r+1, err)
			}
			m.ready = append(m.ready, ready)
			m.first = append(m.first, first)
		}
		out = append(out, m)
	}
	return out, nil
}

// goBuildTo builds pkg (relative to dir) into bin with the artifacts'
// flags (-trimpath, no symbols, no build id, CGO off); env adds variables
// (GOOS, GOARCH, GOFLAGS).
func goBuildTo(ctx context.Context, dir, pkg, tags, bin string, env ...string) error {
	args := []string{"build", "-trimpath", "-ldflags=-s -w -buildid=", "-o", bin}
	if tags != "" {
		args = append(args, "-tags", tags)
	}
	cmd := exec.CommandContext(ctx, "go", append(args, pkg)...)
	cmd.Dir = dir
	cmd.Env = append(append(os.Environ(), "CGO_ENABLED=0"), env...)
	if out, err := cmd.CombinedOutput(); err != nil {
		return fmt.Errorf("go build %s (tags %q, %v): %w\n%s", pkg, tags, env, err, out)
	}
	return nil
}

// buildFromSource unpacks the GCP source zip and builds ./functions/gcp
// from it, as a source deployment does.
func buildFromSource(ctx context.Context, zipPath, dir, bin string) error {
	zr, err := zip.OpenReader(zipPath)
	if err != nil {
		return err
	}
	defer zr.Close()
	for _, f := range zr.File {
		p := filepath.Join(dir, filepath.FromSlash(f.Name))
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			return err
		}
		rc, err := f.Open()
		if err != nil {
			return err
		}
		data, err := io.ReadAll(rc)
		rc.Close()
		if err != nil {
			return err
		}
		if err := os.WriteFile(p, data, 0o644); err != nil {
			return err
		}
	}
	abs, err := filepath.Abs(bin)
	if err != nil {
		return err
	}
	if err := goBuildTo(ctx, dir, "./functions/gcp", "", abs, "GOFLAGS=-mod=mod"); err != nil {
		return fmt.Errorf("build from %s, as a source deployment would: %w", zipPath, err)
	}
	return nil
}

// sizes returns a binary's size and the size of a zip holding only it.
func sizes(bin string) (size, zipped int64, err error) {
	data, err := os.ReadFile(bin)
	if err != nil {
		return 0, 0, err
	}
	var buf bytes.Buffer
	zw := zip.NewWriter(&buf)
	w, err := zw.CreateHeader(&zip.FileHeader{Name: "bootstrap", Method: zip.Deflate, Modified: epoch})
	if err == nil {
		_, err = w.Write(data)
	}
	if err == nil {
		err = zw.Close()
	}
	return int64(len(data)), int64(buf.Len()), err
}

// launcher prepares one start of a function binary: the command's
// environment for a Prefect API at prefectURL, and trigger, which waits for
// the handler to be ready, sends it a scheduler tick and returns when it was
// ready.
type launcher func(ctx context.Context, cmd *exec.Cmd, prefectURL string) (trigger func() (time.Time, error), cleanup func(), err error)

// startOnce starts bin once and returns how long after the start the
// handler was ready and the first request reached the Prefect API. That
// API is a listener noting when its first request arrives: what it answers
// cannot change when the function asked.
func startOnce(ctx context.Context, bin string, launch launcher) (ready, first time.Duration, err error) {
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	var once sync.Once
	arrived := make(chan time.Time, 1)
	api := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		now := time.Now()
		once.Do(func() { arrived <- now })
		http.Error(w, "measuring init time", http.StatusServiceUnavailable)
	}))
	defer api.Close()
	cmd := exec.CommandContext(ctx, bin)
	cmd.Env = []string{"HOME=" + os.TempDir(), "PATH=" + os.Getenv("PATH"), "PUSHPOOL_POOLS=init-time", "PREFECT_API_URL=" + api.URL + "/api", "PREFECT_LOGGING_LEVEL=ERROR"}
	var logs bytes.Buffer
	cmd.Stdout, cmd.Stderr = &logs, &logs
	trigger, cleanup, err := launch(ctx, cmd, api.URL+"/api")
	if err != nil {
		return 0, 0, err
	}
	defer cleanup()
	start := time.Now()
	if err := cmd.Start(); err != nil {
		return 0, 0, err
	}
	defer func() { _ = cmd.Process.Kill(); _ = cmd.Wait() }()
	readyAt, err := trigger()
	if err != nil {
		return 0, 0, fmt.Errorf("%w\n%s", err, logs.String())
	}
	select {
	case at := <-arrived:
		return readyAt.Sub(start), at.Sub(start), nil
	case <-ctx.Done():
		return 0, 0, fmt.Errorf("no request reached the Prefect API in 30s\n%s", logs.String())
	}
}

// launchLambda runs the bootstrap against a loopback Runtime API with a
// scheduler tick queued: ready is its first poll for an invocation.
func launchLambda(ctx context.Context, cmd *exec.Cmd, _ string) (func() (time.Time, error), func(), error) {
	rt, err := lambdaruntime.Start(ctx, slog.New(slog.DiscardHandler))
	if err != nil {
		return nil, nil, err
	}
	cmd.Env = append(cmd.Env, "AWS_LAMBDA_RUNTIME_API="+rt.Addr(), "_HANDLER=bootstrap", "AWS_LAMBDA_FUNCTION_NAME=pushpool",
		"AWS_LAMBDA_FUNCTION_VERSION=$LATEST", "AWS_LAMBDA_FUNCTION_MEMORY_SIZE=512", "AWS_REGION=us-east-1",
		"AWS_ACCESS_KEY_ID=measure", "AWS_SECRET_ACCESS_KEY=measure")
	ictx, stop := context.WithCancel(ctx)
	go func() { _, _ = rt.Invoke(ictx, "init-time", []byte(`{"pushpool": "tick"}`), 20*time.Second, nil) }()
	trigger := func() (time.Time, error) {
		for {
			if at := rt.FirstPoll(); !at.IsZero() {
				return at, nil
			}
			select {
			case <-ctx.Done():
				return time.Time{}, fmt.Errorf("the bootstrap never polled the Runtime API")
			case <-time.After(100 * time.Microsecond):
			}
		}
	}
	return trigger, func() { stop(); rt.Close() }, nil
}

// launchGCP runs the function on $PORT and posts it a Cloud Scheduler tick
// once it accepts connections (ready).
func launchGCP(ctx context.Context, cmd *exec.Cmd, _ string) (func() (time.Time, error), func(), error) {
	port, err := freePort()
	if err != nil {
		return nil, nil, err
	}
	cmd.Env = append(cmd.Env, "PORT="+port, "K_SERVICE=pushpool", "K_REVISION=pushpool-00001-abc", "PUSHPOOL_GCP_PROJECT=measure")
	return httpTrigger(ctx, port, "/", map[string]string{"X-CloudScheduler": "true", "User-Agent": "Google-Cloud-Scheduler"}, `{"pushpool": "tick"}`), func() {}, nil
}

// launchAzure runs the custom handler as the Functions host does and posts
// it a timer invocation once it accepts connections (ready).
func launchAzure(ctx context.Context, cmd *exec.Cmd, _ string) (func() (time.Time, error), func(), error) {
	port, err := freePort()
	if err != nil {
		return nil, nil, err
	}
	app, err := filepath.Abs("functions/azure/app")
	if err != nil {
		return nil, nil, err
	}
	cmd.Dir = app
	cmd.Env = append(cmd.Env, "FUNCTIONS_CUSTOMHANDLER_PORT="+port, "FUNCTIONS_APP_ROOT_PATH="+app, "FUNCTIONS_WORKER_RUNTIME=custom",
		"PUSHPOOL_QUEUE=pushpool-wake",
		// Azurite's well-known development account: the queue client is
		// created at start but not called by a tick.
		"AzureWebJobsStorage=DefaultEndpointsProtocol=http;AccountName=devstoreaccount1;AccountKey=Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw==;QueueEndpoint=http://127.0.0.1:9/devstoreaccount1")
	body := `{"Data":{"timer":{"IsPastDue":false}},"Metadata":{"sys":{"MethodName":"tick"}}}`
	return httpTrigger(ctx, port, "/tick", map[string]string{"X-Azure-Functions-InvocationId": "6b2a2c1e-3c54-4d3e-9b1a-0c6c1e2f3a4b"}, body), func() {}, nil
}

// httpTrigger waits until 127.0.0.1:port accepts a connection (ready, polled
// every 100µs), then posts body to path in the background.
func httpTrigger(ctx context.Context, port, path string, header map[string]string, body string) func() (time.Time, error) {
	return func() (time.Time, error) {
		for {
			c, err := net.Dial("tcp", "127.0.0.1:"+port)
			if err == nil {
				ready := time.Now()
				c.Close()
				req, _ := http.NewRequestWithContext(ctx, http.MethodPost, "http://127.0.0.1:"+port+path, strings.NewReader(body))
				req.Header.Set("Content-Type", "application/json")
				for k, v := range header {
					req.Header.Set(k, v)
				}
				go func() {
					if resp, err := http.DefaultClient.Do(req); err == nil {
						resp.Body.Close()
					}
				}()
				return ready, nil
			}
			select {
			case <-ctx.Done():
				return time.Time{}, fmt.Errorf("nothing listened on port %s", port)
			case <-time.After(100 * time.Microsecond):
			}
		}
	}
}

func freePort() (string, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", err
	}
	defer l.Close()
	return fmt.Sprint(l.Addr().(*net.TCPAddr).Port), nil
}

// median returns the middle duration (the mean of the two middle ones for
// an even count), or 0 for none.
func median(ds []time.Duration) time.Duration {
	if len(ds) == 0 {
		return 0
	}
	s := slices.Clone(ds)
	slices.Sort(s)
	if len(s)%2 == 1 {
		return s[len(s)/2]
	}
	return (s[len(s)/2-1] + s[len(s)/2]) / 2
}

// report writes the measurements as a table, with runs starts each.
func report(w io.Writer, ms []measurement, runs int) error {
	fmt.Fprintf(w, "Artifacts, each function's own-cloud build side by side with the all-in-one build (-tags pushpool_all), built for this machine with the artifacts' flags (-trimpath -s -w, CGO off). Clouds linked: the SDK modules the binary's build info lists (go version -m). Init: median of %d fresh processes, from process start to the handler ready (Lambda: its first Runtime API poll; GCP, Azure: its port accepting) and to the first request at the Prefect API, a scheduler tick waiting for it.\n", runs)
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, "artifact\tunzipped MiB\tzipped MiB\tclouds linked\tinit to ready ms\tinit to first Prefect request ms\t")
	for _, m := range ms {
		linked := strings.Join(m.linked, ", ")
		if linked == "" {
			linked = "none"
		}
		ready, first := "-", "-"
		if len(m.ready) > 0 {
			ready, first = fmt.Sprintf("%.1f", ms1(median(m.ready))), fmt.Sprintf("%.1f", ms1(median(m.first)))
		}
		fmt.Fprintf(tw, "%s\t%.1f\t%.1f\t%s\t%s\t%s\t\n", m.name, mib(m.size), mib(m.zipped), linked, ready, first)
	}
	return tw.Flush()
}

func mib(n int64) float64         { return float64(n) / (1 << 20) }
func ms1(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }
