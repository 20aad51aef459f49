package prefect_test

import (
	"strings"
	"testing"

	"github.com/pushpool/pushpool/dispatch/prefect"
	"github.com/pushpool/pushpool/internal/localstack"
)

// TestClient_basicAuthAndCSRF runs a second real server with basic auth and
// CSRF protection on, as a hardened self-hosted deployment would.
func TestClient_basicAuthAndCSRF(t *testing.T) {
	t.Parallel()
	const authString = "admin:correct-horse-battery"
	secured, err := localstack.StartPrefect(t.Context(), localstack.PrefectOptions{Env: map[string]string{
		"PREFECT_SERVER_API_AUTH_STRING":         authString,
		"PREFECT_SERVER_CSRF_PROTECTION_ENABLED": "true",
	}})
	if err != nil {
		t.Fatalf("start a Prefect server with basic auth: %v", err)
	}
	t.Cleanup(func() { secured.Stop() })

	t.Run("right auth string", func(t *testing.T) {
		c, err := prefect.New(prefect.Config{URL: secured.URL, AuthString: authString})
		if err != nil {
			t.Fatal(err)
		}
		// A change request needs both the basic auth and a CSRF token.
		pool, err := c.CreateWorkPool(t.Context(), prefect.WorkPoolCreate{Name: "secured-pool", Type: "process"})
		if err != nil {
			t.Fatalf("create work pool on a server with auth and CSRF: %v", err)
		}
		if _, err := c.ReadWorkPool(t.Context(), pool.Name); err != nil {
			t.Fatalf("read work pool: %v", err)
		}
		if err := c.DeleteWorkPool(t.Context(), pool.Name); err != nil {
			t.Fatalf("delete work pool: %v", err)
		}
	})

	for name, cfg := range map[string]prefect.Config{
		"wrong auth string": {URL: secured.URL, AuthString: "admin:wrong-password-xyz"},
		"no auth string":    {URL: secured.URL},
	} {
		t.Run(name, func(t *testing.T) {
			c, err := prefect.New(cfg)
			if err != nil {
				t.Fatal(err)
			}
			_, err = c.ReadWorkPool(t.Context(), "anything")
			if !prefect.IsUnauthorized(err) {
				t.Fatalf("err = %v, want a typed 401", err)
			}
			msg := err.Error()
			if !strings.Contains(msg, "PREFECT_API_AUTH_STRING") {
				t.Errorf("error %q does not tell the user to check PREFECT_API_AUTH_STRING", msg)
			}
			if strings.Contains(msg, "wrong-password-xyz") || strings.Contains(msg, "correct-horse") {
				t.Errorf("error %q leaks a credential", msg)
			}
		})
	}
}
