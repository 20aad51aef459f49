package main

import (
	"io"
	"strings"
	"testing"
	"time"

	"github.com/pushpool/pushpool/dispatch"
)

// TestParseFlags_zeroIsZero: an explicit 0 (flag or environment) is zero,
// not the default: the prefetch, the read cache and the requeues.
func TestParseFlags_zeroIsZero(t *testing.T) {
	tests := []struct {
		name          string
		args          []string
		env           map[string]string
		wantPrefetch  time.Duration
		wantReadCache time.Duration
		wantRequeues  int // as dispatch.Config.MaxRequeues
	}{
		{name: "defaults", wantPrefetch: dispatch.DefaultLookahead, wantReadCache: dispatch.DefaultReadCacheTTL, wantRequeues: 5},
		{name: "flags zero", args: []string{"--prefetch-seconds", "0", "--read-cache-seconds", "0", "--max-requeues", "0"}, wantRequeues: -1},
		{name: "environment zero", env: map[string]string{"PREFECT_WORKER_PREFETCH_SECONDS": "0", "PUSHPOOL_READ_CACHE_SECONDS": "0", "PUSHPOOL_MAX_REQUEUES": "0"}, wantRequeues: -1},
		{name: "flag beats environment", args: []string{"--prefetch-seconds", "2.5"}, env: map[string]string{"PREFECT_WORKER_PREFETCH_SECONDS": "0"},
			wantPrefetch: 2500 * time.Millisecond, wantReadCache: dispatch.DefaultReadCacheTTL, wantRequeues: 5},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			env := map[string]string{"PREFECT_API_URL": "http://127.0.0.1:4200/api", "PREFECT_DEFAULT_WORK_POOL_NAME": "p"}
			for k, v := range tt.env {
				env[k] = v
			}
			lookup := func(k string) (string, bool) { v, ok := env[k]; return v, ok }
			o, err := parseFlags("serve", tt.args, lookup, io.Discard)
			if err != nil {
				t.Fatal(err)
			}
			if o.prefetch != tt.wantPrefetch || o.readCache != tt.wantReadCache || requeues(o.maxRequeues) != tt.wantRequeues {
				t.Errorf("prefetch %s, read cache %s, requeues %d; want %s, %s, %d",
					o.prefetch, o.readCache, requeues(o.maxRequeues), tt.wantPrefetch, tt.wantReadCache, tt.wantRequeues)
			}
		})
	}
}

// TestParseFlags_runLabels: runs are labelled unless the flag or
// PUSHPOOL_RUN_LABELS says false; a value that is not a boolean is an
// error naming the variable.
func TestParseFlags_runLabels(t *testing.T) {
	tests := []struct {
		name    string
		args    []string
		env     string // PUSHPOOL_RUN_LABELS; "" unset
		want    bool
		wantErr string
	}{
		{name: "default", want: true},
		{name: "environment false", env: "false", want: false},
		{name: "environment off", env: "off", want: false},
		{name: "environment true", env: "1", want: true},
		{name: "flag false", args: []string{"--run-labels=false"}, want: false},
		{name: "flag beats environment", args: []string{"--run-labels=true"}, env: "false", want: true},
		{name: "not a boolean", env: "sometimes", wantErr: `PUSHPOOL_RUN_LABELS is "sometimes"; it must be true or false`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			env := map[string]string{"PREFECT_API_URL": "http://127.0.0.1:4200/api", "PREFECT_DEFAULT_WORK_POOL_NAME": "p"}
			if tt.env != "" {
				env[dispatch.EnvRunLabels] = tt.env
			}
			lookup := func(k string) (string, bool) { v, ok := env[k]; return v, ok }
			o, err := parseFlags("serve", tt.args, lookup, io.Discard)
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("error = %v, want one containing %q", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if o.runLabels != tt.want {
				t.Errorf("run labels = %t, want %t", o.runLabels, tt.want)
			}
		})
	}
}
