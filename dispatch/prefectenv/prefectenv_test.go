package prefectenv_test

import (
	"bytes"
	"encoding/json"
	"maps"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"testing"

	"github.com/pushpool/pushpool/dispatch/prefectenv"
	"github.com/pushpool/pushpool/internal/localstack"
)

// python runs program with the pinned Prefect and exactly env.
func python(t *testing.T, program string, env map[string]string) []byte {
	t.Helper()
	venv, err := localstack.Venv(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.CommandContext(t.Context(), filepath.Join(venv, "bin", "python"), "-c", program)
	cmd.Env = []string{"PATH=" + os.Getenv("PATH"), "HOME=" + t.TempDir(), "PYTHONHASHSEED=0"}
	for k, v := range env {
		cmd.Env = append(cmd.Env, k+"="+v)
	}
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("python: %v\n%s", err, stderr.String())
	}
	return out
}

// TestSettings_matchPrefect regenerates the table from the pinned Prefect.
func TestSettings_matchPrefect(t *testing.T) {
	script, err := os.ReadFile("testdata/settings_table.py")
	if err != nil {
		t.Fatal(err)
	}
	var want []prefectenv.Setting
	if err := json.Unmarshal(python(t, string(script), nil), &want); err != nil {
		t.Fatal(err)
	}
	if got := prefectenv.Settings(); !slices.EqualFunc(got, want, func(a, b prefectenv.Setting) bool {
		return a.Name == b.Name && a.Kind == b.Kind && slices.Equal(a.Reads, b.Reads)
	}) {
		t.Errorf("settings.json differs from the pinned Prefect's settings (%d vs %d rows): regenerate it with python testdata/settings_table.py > settings.json", len(got), len(want))
	}
}

// workerEnv is what Prefect's worker code puts first in a job's env
// (BaseJobConfiguration._base_environment) when run with an environment.
const workerEnv = `
import json
from prefect.workers.base import BaseJobConfiguration
print(json.dumps(BaseJobConfiguration._base_environment()))
`

// TestForJobs_asPrefectsWorker gives a dispatcher environment to Prefect's
// worker code and to ForJobs: the jobs get the same variables, the same
// values where Prefect writes them back (booleans, numbers, strings), and
// Prefect reads the same settings from both.
func TestForJobs_asPrefectsWorker(t *testing.T) {
	home := t.TempDir()
	profiles := filepath.Join(home, "profiles.toml")
	if err := os.WriteFile(profiles, []byte("active = \"empty\"\n\n[profiles.empty]\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	dispatcher := map[string]string{
		"PREFECT_HOME":                              home,
		"PREFECT_PROFILES_PATH":                     profiles,
		"PREFECT_API_URL":                           "http://127.0.0.1:4200/api",
		"PREFECT_API_KEY":                           "pnu_prefectenv_test",
		"PREFECT_API_AUTH_STRING":                   "admin:pass",
		"PREFECT_CLIENT_CUSTOM_HEADERS":             `{"X-Proxy-Auth":"abc","X-Team": "data"}`,
		"PREFECT_API_TLS_INSECURE_SKIP_VERIFY":      "true",
		"PREFECT_API_SSL_CERT_FILE":                 "/etc/ssl/proxy.pem",
		"PREFECT_API_ENABLE_HTTP2":                  "1",
		"PREFECT_API_REQUEST_TIMEOUT":               "45",
		"PREFECT_CLIENT_MAX_RETRIES":                "7",
		"PREFECT_LOGGING_LEVEL":                     "DEBUG",
		"PREFECT_LOGGING_TO_API_BATCH_INTERVAL":     "0.5",
		"PREFECT_RUNNER_HEARTBEAT_FREQUENCY":        "30", // an alias
		"PREFECT_WORKER_PREFETCH_SECONDS":           "0",
		"PREFECT_RESULTS_PERSIST_BY_DEFAULT":        "yes",
		"PREFECT_SERVER_API_CSRF_TOKEN_EXPIRATION":  "PT1H",
		"PREFECT_TASKS_DEFAULT_RETRY_DELAY_SECONDS": "5",
		"PREFECT_NOT_A_SETTING":                     "dropped",
		"PUSHPOOL_WEBHOOK_SECRET":                   "dropped",
	}
	var worker map[string]string
	if err := json.Unmarshal(python(t, workerEnv, dispatcher), &worker); err != nil {
		t.Fatal(err)
	}
	got := prefectenv.ForJobs(func(k string) (string, bool) { v, ok := dispatcher[k]; return v, ok })

	if g, w := slices.Sorted(maps.Keys(got)), slices.Sorted(maps.Keys(worker)); !slices.Equal(g, w) {
		t.Fatalf("ForJobs passes %v;\nPrefect's worker passes %v", g, w)
	}
	kinds := map[string]string{}
	for _, s := range prefectenv.Settings() {
		kinds[s.Name] = s.Kind
	}
	for k, w := range worker {
		if kinds[k] != "other" && got[k] != w {
			t.Errorf("%s: ForJobs passes %q; Prefect's worker passes %q", k, got[k], w)
		}
	}
	// What a job reads from each env: the same settings.
	var fromOurs map[string]string
	if err := json.Unmarshal(python(t, workerEnv, got), &fromOurs); err != nil {
		t.Fatal(err)
	}
	if !maps.Equal(fromOurs, worker) {
		t.Errorf("a job given ForJobs' env reads other settings than one given the worker's:\nours:   %v\nworker: %v", fromOurs, worker)
	}
	for _, k := range []string{"PREFECT_CLIENT_CUSTOM_HEADERS", "PREFECT_API_TLS_INSECURE_SKIP_VERIFY", "PREFECT_API_SSL_CERT_FILE", "PREFECT_FLOWS_HEARTBEAT_FREQUENCY"} {
		if got[k] == "" {
			t.Errorf("%s does not reach the job", k)
		}
	}
}

func TestForJobs_firstNameWins(t *testing.T) {
	env := map[string]string{"PREFECT_FLOWS_HEARTBEAT_FREQUENCY": "60", "PREFECT_RUNNER_HEARTBEAT_FREQUENCY": "30", "PREFECT_DEBUG_MODE": "off", "PREFECT_API_REQUEST_TIMEOUT": "1e17"}
	got := prefectenv.ForJobs(func(k string) (string, bool) { v, ok := env[k]; return v, ok })
	want := map[string]string{"PREFECT_FLOWS_HEARTBEAT_FREQUENCY": "60", "PREFECT_DEBUG_MODE": "False", "PREFECT_API_REQUEST_TIMEOUT": "1e+17"}
	if !maps.Equal(got, want) {
		t.Errorf("ForJobs = %v; want %v", got, want)
	}
}
