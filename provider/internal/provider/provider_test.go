package provider

import (
	"net/http"
	"net/http/httptest"
	"regexp"
	"sync/atomic"
	"testing"

	"github.com/hashicorp/terraform-plugin-testing/helper/resource"
)

func TestAccProvider_unreachableEndpoint(t *testing.T) {
	resource.ParallelTest(t, resource.TestCase{
		ProtoV6ProviderFactories: protoV6(),
		Steps: []resource.TestStep{{
			Config: `
provider "prefect" {
  endpoint = "http://127.0.0.1:1/api"
}
resource "prefect_flow" "f" { name = "never" }
`,
			ExpectError: regexp.MustCompile(`Unable to use the Prefect API at http://127.0.0.1:1/api[\s\S]*cannot reach the server`),
		}},
	})
}

func TestAccProvider_unauthorized(t *testing.T) {
	var calls atomic.Int32
	api := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		calls.Add(1)
		w.WriteHeader(http.StatusUnauthorized)
		_, _ = w.Write([]byte(`{"detail":"Unauthorized"}`))
	}))
	t.Cleanup(api.Close)
	resource.ParallelTest(t, resource.TestCase{
		ProtoV6ProviderFactories: protoV6(),
		Steps: []resource.TestStep{{
			Config: `
provider "prefect" {
  endpoint       = "` + api.URL + `"
  basic_auth_key = "admin:wrong"
}
resource "prefect_flow" "f" { name = "never" }
`,
			ExpectError: regexp.MustCompile(`401 Unauthorized[\s\S]*basic_auth_key`),
		}},
	})
	if n := calls.Load(); n > 3 {
		t.Errorf("the provider sent %d requests to a server answering 401; want one per terraform command, no retries", n)
	}
}

func TestProvider_normalizeEndpoint(t *testing.T) {
	t.Parallel()
	tests := map[string]string{
		"http://127.0.0.1:4200":         "http://127.0.0.1:4200/api",
		"http://127.0.0.1:4200/":        "http://127.0.0.1:4200/api",
		"http://127.0.0.1:4200/api/":    "http://127.0.0.1:4200/api",
		"https://x.example/prefect/api": "https://x.example/prefect/api",
		"":                              "",
	}
	for in, want := range tests {
		if got := normalizeEndpoint(in); got != want {
			t.Errorf("normalizeEndpoint(%q) = %q, want %q", in, got, want)
		}
	}
}
