package provider

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/hashicorp/terraform-plugin-framework/providerserver"
	"github.com/hashicorp/terraform-plugin-go/tfprotov6"
	tfstate "github.com/hashicorp/terraform-plugin-testing/terraform"

	"github.com/pushpool/pushpool/dispatch/prefect"
	"github.com/pushpool/pushpool/internal/localstack"
)

// srv is the package's real Prefect server, started once by TestMain.
var srv *localstack.Prefect

// TestMain runs the acceptance tests against a real Prefect server with the
// machine's terraform. It sets the terraform-plugin-testing variables itself,
// so `go test ./...` runs them; it never lets the framework download terraform.
func TestMain(m *testing.M) {
	tf, err := exec.LookPath("terraform")
	if err != nil {
		fmt.Fprintln(os.Stderr, "FAIL: the provider's acceptance tests need a terraform binary on PATH:", err)
		fmt.Fprintln(os.Stderr, "Fix: install one, e.g. `go install github.com/hashicorp/terraform@v1.8.5`, and put it on PATH.")
		os.Exit(1)
	}
	os.Setenv("TF_ACC", "1")
	os.Setenv("TF_ACC_TERRAFORM_PATH", tf)
	os.Setenv("CHECKPOINT_DISABLE", "1")
	os.Unsetenv("TF_ACC_TERRAFORM_VERSION") // it would download terraform
	os.Exit(localstack.RunTestsWithPrefect(m, localstack.PrefectOptions{}, func(p *localstack.Prefect) {
		srv = p
		os.Setenv(prefect.EnvAPIURL, p.URL)
	}))
}

// protoV6 serves the provider in-process to terraform.
func protoV6() map[string]func() (tfprotov6.ProviderServer, error) {
	return map[string]func() (tfprotov6.ProviderServer, error){
		"prefect": providerserver.NewProtocol6WithError(New("test")()),
	}
}

// apiClient is a client of the test server, to change objects out of band.
func apiClient(t *testing.T) *prefect.Client {
	t.Helper()
	c, err := prefect.New(prefect.Config{URL: srv.URL})
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// uniqueName returns a name no other test uses on the shared server.
func uniqueName(t *testing.T, prefix string) string {
	return fmt.Sprintf("%s-%s-%d", prefix, strings.ToLower(strings.NewReplacer("/", "-", "_", "-").Replace(t.Name())), time.Now().UnixNano()%1e9)
}

// outOfBand runs f against the server before a step, failing the test on error.
func outOfBand(t *testing.T, what string, f func(ctx context.Context, c *prefect.Client) error) func() {
	return func() {
		if err := f(context.Background(), apiClient(t)); err != nil {
			t.Fatalf("%s out of band: %v", what, err)
		}
	}
}

// terraformState is the state a TestCheckFunc receives.
type terraformState = tfstate.State

func ptr[T any](v T) *T { return &v }
