package main

import (
	"encoding/base64"
	"encoding/json"
	"strings"
	"testing"
	"time"
)

func TestUnquote(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct{ in, want string }{
		{`"\"abc\""`, `abc`},
		{`"abc"`, `abc`},
		{`{"a":1}`, `{"a":1}`},
		{`"{\"a\":1}"`, `{"a":1}`},
		{`"\"{\\\"a\\\":1}\""`, `{"a":1}`},
		{`"1"`, `1`},
		{`1`, `1`},
		{``, ``},
	} {
		if got := string(unquote(json.RawMessage(tc.in))); got != tc.want {
			t.Errorf("unquote(%s) = %s; want %s", tc.in, got, tc.want)
		}
	}
}

// TestInvocationRequest_samples decodes the real payload samples as the
// functions do.
func TestInvocationRequest_samples(t *testing.T) {
	t.Parallel()
	decode := func(name string) invocationRequest {
		var req invocationRequest
		if err := json.Unmarshal(testdata(t, name), &req); err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		return req
	}

	q := decode("queue-trigger.json")
	m, err := decodeQueueMessage(unquote(q.Data[bindMessage]))
	if err != nil || m.Pool != "azure-functions" || len(m.FlowRunIDs) != 1 {
		t.Errorf("queue sample: %+v, %v; want the pushpool message", m, err)
	}
	if id, n := metaString(q.Metadata, "Id"), metaInt(q.Metadata, "DequeueCount"); id != "a0004923-f050-417a-9742-6d7c7b984134" || n != 1 {
		t.Errorf("queue metadata: Id %q, DequeueCount %d", id, n)
	}
	// With messageEncoding "none" the trigger hands the base64 text over.
	b64, _ := json.Marshal(base64.StdEncoding.EncodeToString(unquote(q.Data[bindMessage])))
	if m, err := decodeQueueMessage(unquote(b64)); err != nil || m.Pool != "azure-functions" {
		t.Errorf("base64 message: %+v, %v", m, err)
	}

	var timer timerInfo
	if err := json.Unmarshal(decode("timer-trigger.json").Data[bindTimer], &timer); err != nil || timer.ScheduleStatus == nil || timer.IsPastDue {
		t.Errorf("timer sample: %+v, %v", timer, err)
	}

	var hr httpRequestData
	if err := json.Unmarshal(decode("http-trigger.json").Data[bindRequest], &hr); err != nil {
		t.Fatal(err)
	}
	body, err := hr.body()
	if hr.Method != "POST" || hr.header("x-pushpool-signature") != "SIGNATURE" || string(body) != "BODY" || err != nil {
		t.Errorf("http sample: method %q, signature %q, body %q, %v", hr.Method, hr.header("x-pushpool-signature"), body, err)
	}
	// Octet-stream bodies come in base64.
	raw := base64.StdEncoding.EncodeToString([]byte(`{"flow_run_id":"x"}`))
	hr.Headers["Content-Type"] = []string{"application/octet-stream"}
	hr.Body = &raw
	if body, err := hr.body(); err != nil || string(body) != `{"flow_run_id":"x"}` {
		t.Errorf("octet-stream body: %q, %v", body, err)
	}
}

func TestParseTimeSpan(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		in   string
		want time.Duration
		ok   bool
	}{
		{"00:05:00", 5 * time.Minute, true},
		{"00:10:00", 10 * time.Minute, true},
		{"01:30:15.5", time.Hour + 30*time.Minute + 15500*time.Millisecond, true},
		{"1.02:00:00", 26 * time.Hour, true},
		{"-1", 0, true},
		{"5m", 0, false},
		{"00:61:00", 0, false},
		{"", 0, false},
	} {
		got, err := parseTimeSpan(tc.in)
		if (err == nil) != tc.ok || got != tc.want {
			t.Errorf("parseTimeSpan(%q) = %v, %v; want %v (ok %v)", tc.in, got, err, tc.want, tc.ok)
		}
	}
}

func TestFunctionTimeout(t *testing.T) {
	t.Parallel()
	env := func(kv ...string) func(string) string {
		return func(k string) string {
			for i := 0; i < len(kv); i += 2 {
				if kv[i] == k {
					return kv[i+1]
				}
			}
			return ""
		}
	}
	if d, err := functionTimeout(env(EnvAppRoot, "app")); err != nil || d != 5*time.Minute {
		t.Errorf("from app/host.json: %v, %v; want 5m", d, err)
	}
	if d, err := functionTimeout(env(EnvAppRoot, "app", EnvFunctionTimeout, "00:10:00")); err != nil || d != 10*time.Minute {
		t.Errorf("app setting over host.json: %v, %v; want 10m", d, err)
	}
	if d, err := functionTimeout(env(EnvAppRoot, t.TempDir())); err != nil || d != defaultFunctionTimeout {
		t.Errorf("no host.json: %v, %v; want the default", d, err)
	}
}

// TestNewFunction_unresolvedKeyVaultReference: a secret setting the
// platform could not resolve stops the handler, naming the setting and
// the permission, never the reference's target.
func TestNewFunction_unresolvedKeyVaultReference(t *testing.T) {
	t.Parallel()
	env := map[string]string{
		"PREFECT_API_URL": "https://prefect.example.com/api",
		"PREFECT_API_KEY": "@Microsoft.KeyVault(SecretUri=https://pushpool-kv.vault.azure.net/secrets/prefect-api-key/)",
		EnvWebhookSecret:  " @Microsoft.KeyVault(VaultName=pushpool-kv;SecretName=webhook-secret)",
		"PUSHPOOL_POOLS":  "aci",
		EnvQueue:          "pushpool-wake",
		EnvStorage:        "UseDevelopmentStorage=true",
	}
	_, err := newFunction(testBackends(), func(k string) (string, bool) { v, ok := env[k]; return v, ok }, nil)
	if err == nil {
		t.Fatal("the handler started with unresolved Key Vault references")
	}
	for _, want := range []string{"PREFECT_API_KEY", EnvWebhookSecret, "managed identity get", "Key Vault Secrets User"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q does not mention %q", err, want)
		}
	}
	if strings.Contains(err.Error(), "pushpool-kv") {
		t.Errorf("error %q shows the reference", err)
	}
}
