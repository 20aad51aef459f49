package provider

import (
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/pushpool/pushpool/dispatch/prefect"
)

func TestIsWrite(t *testing.T) {
	t.Parallel()
	tests := map[string]bool{
		"GET /api/work_pools/p":                false,
		"POST /api/deployments/filter":         false,
		"POST /api/work_pools/p/queues/filter": false,
		"POST /api/flow_runs/count":            false,
		"POST /api/deployments/":               true,
		"PATCH /api/deployments/x":             true,
		"DELETE /api/flows/x":                  true,
		"PUT /api/automations/x":               true,
	}
	for in, want := range tests {
		method, path, _ := strings.Cut(in, " ")
		if got := isWrite(httptest.NewRequest(method, path, nil)); got != want {
			t.Errorf("isWrite(%s) = %v, want %v", in, got, want)
		}
	}
}

// TestOneWriteAtATime sends many writes and reads at once: at most one
// write is ever in flight, and reads do not wait for writes.
func TestOneWriteAtATime(t *testing.T) {
	t.Parallel()
	var inFlight, maxInFlight atomic.Int32
	release := make(chan struct{})
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method == http.MethodGet {
			return
		}
		n := inFlight.Add(1)
		for {
			m := maxInFlight.Load()
			if n <= m || maxInFlight.CompareAndSwap(m, n) {
				break
			}
		}
		<-release
		inFlight.Add(-1)
	}))
	t.Cleanup(srv.Close)
	client := &http.Client{Transport: newOneWriteAtATime(http.DefaultTransport)}
	var wg sync.WaitGroup
	for i := 0; i < 8; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			resp, err := client.Post(srv.URL+"/api/deployments/", "application/json", nil)
			if err == nil {
				resp.Body.Close()
			}
		}()
	}
	// A read answers while the writes wait on each other.
	done := make(chan error, 1)
	go func() {
		resp, err := client.Get(srv.URL + "/api/work_pools/p")
		if err == nil {
			resp.Body.Close()
		}
		done <- err
	}()
	select {
	case err := <-done:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("a read waited for the writes")
	}
	close(release)
	wg.Wait()
	if m := maxInFlight.Load(); m != 1 {
		t.Errorf("%d writes were in flight at once, want 1", m)
	}
}

func TestReadCache_pool(t *testing.T) {
	t.Parallel()
	c := newReadCache()
	reads := 0
	read := func(name string) func() (prefect.WorkPool, error) {
		return func() (prefect.WorkPool, error) {
			reads++
			if name == "missing" {
				return prefect.WorkPool{}, &prefect.APIError{StatusCode: http.StatusNotFound}
			}
			return prefect.WorkPool{Name: name}, nil
		}
	}
	for i := 0; i < 3; i++ {
		if p, err := c.pools.fetch("a", read("a")); err != nil || p.Name != "a" {
			t.Fatalf("fetch a = %+v, %v", p, err)
		}
		if _, err := c.pools.fetch("missing", read("missing")); !prefect.IsNotFound(err) {
			t.Fatalf("fetch missing = %v, want not found", err)
		}
	}
	if reads != 2 {
		t.Errorf("%d reads, want one per pool (a not-found answer is remembered too)", reads)
	}
	// Created by this process: the not-found answer is replaced.
	c.putPool(prefect.WorkPool{Name: "missing", Type: "process"})
	if p, err := c.pools.fetch("missing", read("missing")); err != nil || p.Type != "process" {
		t.Errorf("after putPool: %+v, %v", p, err)
	}
	c.forgetPool("a")
	if _, err := c.pools.fetch("a", read("a")); err != nil || reads != 3 {
		t.Errorf("after forgetPool: %v, %d reads; want a new read", err, reads)
	}
	// Entries expire.
	c.pools.now = func() time.Time { return time.Now().Add(readCacheTTL) }
	if _, ok := c.pools.get("a"); ok {
		t.Error("an entry older than readCacheTTL was used")
	}
	// A nil cache caches nothing.
	var none *readCache
	none.putDeployment(prefect.Deployment{ID: "d"})
	if _, ok := none.deployment("d"); ok {
		t.Error("a nil cache returned a deployment")
	}
}
