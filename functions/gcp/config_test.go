package main

import (
	"strings"
	"testing"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/pushpool/pushpool/functions/gcp/internal/gcpfake"
)

// TestNewFunction_configErrorsNameTheVariable: a wrong setting fails the
// start with the variable and the fix, before anything is contacted.
func TestNewFunction_configErrorsNameTheVariable(t *testing.T) {
	t.Parallel()
	base := map[string]string{"PREFECT_API_URL": "http://127.0.0.1:1/api", "PUSHPOOL_POOLS": "cloud-run-push"}
	for _, tc := range []struct {
		name string
		env  map[string]string
		want []string
	}{
		{"no pools", map[string]string{"PUSHPOOL_POOLS": ""}, []string{"PUSHPOOL_POOLS"}},
		{"short topic", map[string]string{EnvTopic: "pushpool-fanout"}, []string{EnvTopic, "projects/PROJECT/topics/TOPIC"}},
		{"queue without self URL", map[string]string{EnvTasksQueue: "projects/p/locations/us-east1/queues/q"}, []string{EnvSelfURL}},
		{"bad queue", map[string]string{EnvTasksQueue: "q", EnvSelfURL: "https://x.a.run.app"}, []string{EnvTasksQueue, "queues/QUEUE"}},
		{"relative self URL", map[string]string{EnvSelfURL: "pushpool.a.run.app"}, []string{EnvSelfURL, "absolute URL"}},
		{"service account", map[string]string{EnvTasksServiceAccount: "pushpool-tasks"}, []string{EnvTasksServiceAccount, "email"}},
		{"secret name", map[string]string{EnvWebhookSecret: "pushpool-webhook"}, []string{EnvWebhookSecret, "versions/latest"}},
		{"secret twice", map[string]string{EnvAPIKeySecret: "projects/p/secrets/k/versions/latest", "PREFECT_API_KEY": "pnu_x"}, []string{EnvAPIKeySecret, "PREFECT_API_KEY"}},
		{"webhook secret twice", map[string]string{EnvWebhookSecret: "projects/p/secrets/w/versions/3", EnvWebhookSecretValue: "x"}, []string{EnvWebhookSecret, EnvWebhookSecretValue}},
		{"routes", map[string]string{EnvRoutes: "tick"}, []string{EnvRoutes}},
		{"webhook-only without secret", map[string]string{EnvRoutes: "webhook"}, []string{EnvRoutes, EnvWebhookSecretValue}},
		{"timeout", map[string]string{EnvRequestTimeout: "5m"}, []string{EnvRequestTimeout}},
		{"timeout too long", map[string]string{EnvRequestTimeout: "7200"}, []string{EnvRequestTimeout, "1h0m0s"}},
		{"port", map[string]string{EnvPort: "http"}, []string{EnvPort}},
		{"several at once", map[string]string{EnvTopic: "t", EnvPort: "0"}, []string{EnvTopic, EnvPort}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			env := map[string]string{}
			for k, v := range base {
				env[k] = v
			}
			for k, v := range tc.env {
				env[k] = v
			}
			f, err := newFunction(t.Context(), linked(), func(k string) (string, bool) { v, ok := env[k]; return v, ok }, nil)
			if err == nil {
				f.Close()
				t.Fatal("the function started; want a configuration error")
			}
			for _, w := range tc.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q does not name %q", err, w)
				}
			}
		})
	}
}

// TestConfig_defaults: an environment with only the shared contract serves
// both routes on 8080 with Cloud Run's request timeout.
func TestConfig_defaults(t *testing.T) {
	t.Parallel()
	c, err := configFromEnv(func(string) (string, bool) { return "", false })
	if err != nil {
		t.Fatal(err)
	}
	if !c.Routes.Events || !c.Routes.Webhook || c.Port != "8080" || c.RequestTimeout != 300*time.Second {
		t.Errorf("defaults = %+v", c)
	}
}

// TestNewFunction_secrets: secrets are read from Secret Manager (trimmed
// of the newline `gcloud secrets versions add --data-file` keeps); a
// missing or forbidden one fails the start naming the variable and the
// role, never a value.
func TestNewFunction_secrets(t *testing.T) {
	t.Parallel()
	fake, err := gcpfake.Start()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(fake.Stop)
	key, err := fake.AddSecret("projects/p/secrets/prefect-api-key", "pnu_secret-value\n")
	if err != nil {
		t.Fatal(err)
	}
	env := map[string]string{
		"PREFECT_API_URL": "http://127.0.0.1:1/api", "PUSHPOOL_POOLS": "cloud-run-push",
		EnvSecretManagerEndpoint: fake.Addr(), EnvAPIKeySecret: "projects/p/secrets/prefect-api-key/versions/latest",
		EnvWebhookSecretValue: "mounted",
	}
	lookup := func(k string) (string, bool) { v, ok := env[k]; return v, ok }
	f, err := newFunction(t.Context(), linked(), lookup, nil)
	if err != nil {
		t.Fatalf("start with a readable secret (%s): %v", key, err)
	}
	f.Close()

	env[EnvWebhookSecret], env[EnvWebhookSecretValue] = "projects/p/secrets/pushpool-webhook/versions/latest", ""
	_, err = newFunction(t.Context(), linked(), lookup, nil)
	if err == nil || !strings.Contains(err.Error(), EnvWebhookSecret) || !strings.Contains(err.Error(), "roles/secretmanager.secretAccessor") {
		t.Errorf("start with a missing secret: %v; want the variable and the role named", err)
	}
	delete(env, EnvWebhookSecret)
	fake.Inject("AccessSecretVersion", status.New(codes.PermissionDenied, "Permission 'secretmanager.versions.access' denied for resource"), -1)
	_, err = newFunction(t.Context(), linked(), lookup, nil)
	if err == nil || !strings.Contains(err.Error(), EnvAPIKeySecret) || strings.Contains(err.Error(), "pnu_secret-value") {
		t.Errorf("start with a forbidden secret: %v; want the variable named and no value", err)
	}
}
