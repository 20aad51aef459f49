package prefect_test

import (
	"encoding/pem"
	"net"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/pushpool/pushpool/dispatch/prefect"
)

// tlsProxy serves the real test server over TLS, as a proxy in front of a
// self-hosted Prefect does, and counts the connections clients open.
func tlsProxy(t *testing.T) (*httptest.Server, *atomic.Int64) {
	t.Helper()
	target, err := url.Parse(strings.TrimSuffix(srv.URL, "/api"))
	if err != nil {
		t.Fatal(err)
	}
	var conns atomic.Int64
	p := httptest.NewUnstartedServer(httputil.NewSingleHostReverseProxy(target))
	p.Config.ConnState = func(_ net.Conn, s http.ConnState) {
		if s == http.StateNew {
			conns.Add(1)
		}
	}
	p.StartTLS()
	t.Cleanup(p.Close)
	return p, &conns
}

// TestClient_TLSSettings reaches a server behind TLS with a private
// authority: refused by default, accepted with PREFECT_API_SSL_CERT_FILE
// naming the authority's PEM or with PREFECT_API_TLS_INSECURE_SKIP_VERIFY,
// as Prefect's client does; a file without a certificate is a clear error.
func TestClient_TLSSettings(t *testing.T) {
	t.Parallel()
	p, _ := tlsProxy(t)
	ca := filepath.Join(t.TempDir(), "ca.pem")
	if err := os.WriteFile(ca, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: p.Certificate().Raw}), 0o600); err != nil {
		t.Fatal(err)
	}
	notPEM := filepath.Join(t.TempDir(), "empty.pem")
	if err := os.WriteFile(notPEM, []byte("not a certificate\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name    string
		env     map[string]string
		wantErr string
	}{
		{"system authorities", nil, "certificate"},
		{"PREFECT_API_SSL_CERT_FILE", map[string]string{"PREFECT_API_SSL_CERT_FILE": ca}, ""},
		{"PREFECT_API_TLS_INSECURE_SKIP_VERIFY", map[string]string{"PREFECT_API_TLS_INSECURE_SKIP_VERIFY": "true"}, ""},
		{"a file with no certificate", map[string]string{"PREFECT_API_SSL_CERT_FILE": notPEM}, "holds no PEM certificate"},
		{"a bad boolean", map[string]string{"PREFECT_API_TLS_INSECURE_SKIP_VERIFY": "perhaps"}, "must be true or false"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			env := map[string]string{"PREFECT_API_URL": p.URL + "/api"}
			for k, v := range tt.env {
				env[k] = v
			}
			cfg, err := prefect.ConfigFromEnv(func(k string) (string, bool) { v, ok := env[k]; return v, ok })
			var c *prefect.Client
			if err == nil {
				cfg.MaxRetries = -1
				c, err = prefect.New(cfg)
			}
			if err == nil {
				err = c.Health(t.Context())
			}
			switch {
			case tt.wantErr == "" && err != nil:
				t.Fatalf("want the server reached: %v", err)
			case tt.wantErr != "" && (err == nil || !strings.Contains(err.Error(), tt.wantErr)):
				t.Fatalf("error %v; want one saying %q", err, tt.wantErr)
			}
		})
	}
}

// TestClient_reusesConnections sends 64 requests, 16 at a time: the client
// keeps its connections for the next requests (Go's default transport keeps
// 2 per host and opened one for most requests).
func TestClient_reusesConnections(t *testing.T) {
	t.Parallel()
	p, conns := tlsProxy(t)
	c, err := prefect.New(prefect.Config{URL: p.URL + "/api", TLSInsecureSkipVerify: true})
	if err != nil {
		t.Fatal(err)
	}
	for range 4 {
		var wg sync.WaitGroup
		for range 16 {
			wg.Go(func() {
				if err := c.Health(t.Context()); err != nil {
					t.Error(err)
				}
			})
		}
		wg.Wait()
	}
	if n := conns.Load(); n > 16 {
		t.Errorf("64 requests, 16 at a time, opened %d connections; want at most 16", n)
	}
}
