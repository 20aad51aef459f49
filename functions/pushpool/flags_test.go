package main

import (
	"io"
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
