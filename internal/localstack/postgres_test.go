package localstack

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func TestPostgresBinDir(t *testing.T) {
	t.Parallel()
	// fakeInstall makes root/<version>/bin with the named programs.
	fakeInstall := func(t *testing.T, root, version string, programs ...string) string {
		t.Helper()
		bin := filepath.Join(root, version, "bin")
		if err := os.MkdirAll(bin, 0o755); err != nil {
			t.Fatal(err)
		}
		for _, p := range programs {
			if err := os.WriteFile(filepath.Join(bin, p), []byte("#!/bin/sh\n"), 0o755); err != nil {
				t.Fatal(err)
			}
		}
		return bin
	}
	all := []string{"initdb", "postgres", "pg_isready", "psql"}
	tests := []struct {
		name     string
		setup    func(t *testing.T, root string) (override, want string)
		wantErrs []string
	}{
		{
			name: "newest by number, not by name",
			setup: func(t *testing.T, root string) (string, string) {
				fakeInstall(t, root, "9.6", all...)
				want := fakeInstall(t, root, "15", all...)
				fakeInstall(t, root, "13", all...)
				return "", want
			},
		},
		{
			name: "skips an install without the server",
			setup: func(t *testing.T, root string) (string, string) {
				want := fakeInstall(t, root, "13", all...)
				fakeInstall(t, root, "16", "psql", "pg_isready") // client only
				return "", want
			},
		},
		{
			name: "override wins",
			setup: func(t *testing.T, root string) (string, string) {
				fakeInstall(t, root, "16", all...)
				want := fakeInstall(t, t.TempDir(), "custom", all...)
				return want, want
			},
		},
		{
			name:     "nothing installed",
			setup:    func(t *testing.T, root string) (string, string) { return "", "" },
			wantErrs: []string{"not found under", "apt-get install -y postgresql", "PUSHPOOL_PG_BIN"},
		},
		{
			name: "override lacks initdb",
			setup: func(t *testing.T, root string) (string, string) {
				fakeInstall(t, root, "15", all...)
				return fakeInstall(t, t.TempDir(), "x", "postgres", "psql", "pg_isready"), ""
			},
			wantErrs: []string{"PUSHPOOL_PG_BIN=", "lacks the PostgreSQL programs initdb"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			root := t.TempDir()
			override, want := tt.setup(t, root)
			got, err := PostgresBinDir(override, root)
			if len(tt.wantErrs) > 0 {
				if err == nil {
					t.Fatalf("PostgresBinDir = %q, want an error", got)
				}
				for _, w := range tt.wantErrs {
					if !strings.Contains(err.Error(), w) {
						t.Errorf("error %q does not say %q", err, w)
					}
				}
				return
			}
			if err != nil || got != want {
				t.Fatalf("PostgresBinDir = %q, %v; want %q", got, err, want)
			}
		})
	}
}

func TestPostgresOptions_Validate(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name    string
		opts    PostgresOptions
		wantErr string
	}{
		{name: "zero value", opts: PostgresOptions{}},
		{name: "named database", opts: PostgresOptions{Database: "bench_1", MaxConnections: 500}},
		{name: "quote in name", opts: PostgresOptions{Database: `x"; DROP`}, wantErr: "PostgresOptions.Database"},
		{name: "upper case", opts: PostgresOptions{Database: "Prefect"}, wantErr: "PostgresOptions.Database"},
		{name: "too few connections", opts: PostgresOptions{MaxConnections: 5}, wantErr: "PostgresOptions.MaxConnections"},
		{name: "negative timeout", opts: PostgresOptions{StartTimeout: -time.Second}, wantErr: "PostgresOptions.StartTimeout"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			err := tt.opts.Validate()
			if tt.wantErr == "" && err != nil {
				t.Fatalf("Validate() = %v, want nil", err)
			}
			if tt.wantErr != "" && (err == nil || !strings.Contains(err.Error(), tt.wantErr)) {
				t.Fatalf("Validate() = %v, want an error naming %s", err, tt.wantErr)
			}
		})
	}
}

// TestStartPrefectOnPostgres starts PostgreSQL and a Prefect server on it,
// writes a flow through the API and reads it back, then checks that Stop
// removes everything.
func TestStartPrefectOnPostgres(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	start := time.Now()
	p, err := StartPrefectOnPostgres(ctx, PrefectOptions{}, PostgresOptions{Database: "prefect_test"})
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("Prefect %s on %s at %s, started in %v", p.Version, p.Postgres.Version, p.URL, time.Since(start).Round(time.Millisecond))
	stopped := false
	defer func() {
		if !stopped {
			p.Stop()
		}
	}()
	if got, want := p.Postgres.DSN(), "postgresql+asyncpg://postgres@127.0.0.1:"; !strings.HasPrefix(got, want) || !strings.HasSuffix(got, "/prefect_test") {
		t.Errorf("DSN() = %q, want %s<port>/prefect_test", got, want)
	}

	client := &http.Client{Timeout: 30 * time.Second}
	call := func(method, path string, body any, out any) int {
		t.Helper()
		var r io.Reader
		if body != nil {
			data, _ := json.Marshal(body)
			r = bytes.NewReader(data)
		}
		req, _ := http.NewRequestWithContext(ctx, method, p.URL+path, r)
		req.Header.Set("Content-Type", "application/json")
		resp, err := client.Do(req)
		if err != nil {
			t.Fatalf("%s %s: %v", method, path, err)
		}
		defer resp.Body.Close()
		data, _ := io.ReadAll(resp.Body)
		if out != nil {
			if err := json.Unmarshal(data, out); err != nil {
				t.Fatalf("%s %s: HTTP %d, decode %q: %v", method, path, resp.StatusCode, data, err)
			}
		}
		return resp.StatusCode
	}
	if status := call(http.MethodGet, "/health", nil, nil); status != http.StatusOK {
		t.Fatalf("GET /health: HTTP %d", status)
	}
	var created struct {
		ID   string `json:"id"`
		Name string `json:"name"`
	}
	if status := call(http.MethodPost, "/flows/", map[string]string{"name": "x"}, &created); status != http.StatusCreated || created.ID == "" {
		t.Fatalf("POST /flows/: HTTP %d, %+v", status, created)
	}
	var read struct {
		ID   string `json:"id"`
		Name string `json:"name"`
	}
	if status := call(http.MethodGet, "/flows/"+created.ID, nil, &read); status != http.StatusOK || read != created {
		t.Fatalf("GET /flows/%s: HTTP %d, %+v; want %+v", created.ID, status, read, created)
	}
	// The flow is in PostgreSQL, not in a SQLite file.
	rows, err := p.Postgres.Query(ctx, "SELECT name FROM flow WHERE id = '"+created.ID+"'")
	if err != nil || rows != "x" {
		t.Fatalf("SELECT the flow from PostgreSQL = %q, %v; want x", rows, err)
	}

	dir := p.Postgres.dir
	stopped = true
	if err := p.Stop(); err != nil {
		t.Fatalf("Stop() = %v", err)
	}
	if _, err := os.Stat(dir); !os.IsNotExist(err) {
		t.Errorf("the PostgreSQL directory %s is still there after Stop (%v)", dir, err)
	}
	t.Logf("total with Stop: %v", time.Since(start).Round(time.Millisecond))
}
