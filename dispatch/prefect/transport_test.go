package prefect_test

import (
	"bytes"
	"errors"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/pushpool/pushpool/dispatch/prefect"
)

// faultServer answers with the scripted statuses in turn, then 200 with body.
type faultServer struct {
	*httptest.Server
	mu       sync.Mutex
	statuses []int
	headers  []http.Header
	times    []time.Time
}

func newFaultServer(t *testing.T, body string, retryAfter string, statuses ...int) *faultServer {
	fs := &faultServer{statuses: statuses}
	fs.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		fs.mu.Lock()
		fs.headers = append(fs.headers, r.Header.Clone())
		fs.times = append(fs.times, time.Now())
		var code int
		if len(fs.statuses) > 0 {
			code, fs.statuses = fs.statuses[0], fs.statuses[1:]
		}
		fs.mu.Unlock()
		if r.URL.Path == "/api/csrf-token" {
			w.WriteHeader(http.StatusUnprocessableEntity)
			w.Write([]byte(`{"detail":"CSRF protection is disabled."}`))
			return
		}
		if code != 0 {
			if retryAfter != "" {
				w.Header().Set("Retry-After", retryAfter)
			}
			w.WriteHeader(code)
			w.Write([]byte(`{"detail":"scripted failure"}`))
			return
		}
		w.Header().Set("Content-Type", "application/json")
		w.Write([]byte(body))
	}))
	t.Cleanup(fs.Close)
	return fs
}

func (fs *faultServer) requests() int {
	fs.mu.Lock()
	defer fs.mu.Unlock()
	return len(fs.headers)
}

func fastClient(t *testing.T, url string, mutate func(*prefect.Config)) *prefect.Client {
	t.Helper()
	cfg := prefect.Config{URL: url + "/api", RetryBaseDelay: time.Millisecond, RetryMaxDelay: 20 * time.Millisecond}
	if mutate != nil {
		mutate(&cfg)
	}
	c, err := prefect.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func TestClient_retries(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name         string
		statuses     []int
		wantRequests int
		wantStatus   int // 0: success
	}{
		{"503 then 200 is retried", []int{503}, 2, 0},
		{"429, 502, 408, 500 then 200", []int{429, 502, 408, 500}, 5, 0},
		{"400 is not retried", []int{400}, 1, 400},
		{"404 is not retried", []int{404}, 1, 404},
		{"422 is not retried", []int{422}, 1, 422},
		{"retries are bounded", []int{503, 503, 503, 503, 503, 503, 503, 503}, 6, 503},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			fs := newFaultServer(t, `{"name":"p","type":"process"}`, "", tt.statuses...)
			c := fastClient(t, fs.URL, nil)
			pool, err := c.ReadWorkPool(t.Context(), "p")
			if got := fs.requests(); got != tt.wantRequests {
				t.Errorf("requests = %d, want %d", got, tt.wantRequests)
			}
			if tt.wantStatus == 0 {
				if err != nil || pool.Name != "p" {
					t.Fatalf("ReadWorkPool = %+v, %v; want success", pool, err)
				}
				return
			}
			var apiErr *prefect.APIError
			if !errors.As(err, &apiErr) || apiErr.StatusCode != tt.wantStatus {
				t.Fatalf("err = %v, want APIError %d", err, tt.wantStatus)
			}
			if apiErr.Path != "/work_pools/p" || apiErr.Detail != "scripted failure" {
				t.Errorf("APIError = %+v, want path /work_pools/p and the server's detail", apiErr)
			}
		})
	}
}

func TestClient_honoursRetryAfter(t *testing.T) {
	t.Parallel()
	fs := newFaultServer(t, `{"name":"p"}`, "1", 429)
	c := fastClient(t, fs.URL, func(cfg *prefect.Config) { cfg.RetryMaxDelay = 5 * time.Second })
	if _, err := c.ReadWorkPool(t.Context(), "p"); err != nil {
		t.Fatal(err)
	}
	if gap := fs.times[1].Sub(fs.times[0]); gap < 900*time.Millisecond {
		t.Fatalf("retried after %s, want the 1s the server asked for", gap)
	}
}

func TestClient_unreachableServerFailsOnceWithAFix(t *testing.T) {
	t.Parallel()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	l.Close() // nothing listens there now
	c := fastClient(t, "http://user:hunter2@"+addr, nil)
	start := time.Now()
	_, err = c.ReadWorkPool(t.Context(), "p")
	if err == nil {
		t.Fatal("want an error")
	}
	if !strings.Contains(err.Error(), "PREFECT_API_URL") || strings.Contains(err.Error(), "hunter2") {
		t.Errorf("error %q should name PREFECT_API_URL and never the password", err)
	}
	if time.Since(start) > 2*time.Second {
		t.Errorf("took %s: a server never reached should fail at once, not retry", time.Since(start))
	}
}

func TestClient_customHeaders(t *testing.T) {
	t.Parallel()
	fs := newFaultServer(t, `{"name":"p"}`, "")
	var logs bytes.Buffer
	var warned atomic.Int32
	c := fastClient(t, fs.URL, func(cfg *prefect.Config) {
		cfg.APIKey = "pnu_secret_key"
		cfg.CustomHeaders = map[string]string{
			"CF-Access-Client-Id": "client-id",
			"X-Team":              "data",
			"User-Agent":          "evil/1.0",
			"Prefect-Csrf-Token":  "forged",
		}
		cfg.Logger = slog.New(slog.NewTextHandler(&countingWriter{w: &logs, n: &warned}, nil))
	})
	if _, err := c.ReadWorkPool(t.Context(), "p"); err != nil {
		t.Fatal(err)
	}
	h := fs.headers[0]
	if h.Get("Cf-Access-Client-Id") != "client-id" || h.Get("X-Team") != "data" {
		t.Errorf("custom headers missing: %v", h)
	}
	if h.Get("User-Agent") == "evil/1.0" || h.Get("Prefect-Csrf-Token") == "forged" {
		t.Errorf("protected headers were overridden: User-Agent %q, Prefect-Csrf-Token %q", h.Get("User-Agent"), h.Get("Prefect-Csrf-Token"))
	}
	if h.Get("Authorization") != "Bearer pnu_secret_key" {
		t.Errorf("Authorization = %q, want the API key as a Bearer token", h.Get("Authorization"))
	}
	if warned.Load() != 2 || !strings.Contains(logs.String(), "User-Agent") || !strings.Contains(logs.String(), "Prefect-Csrf-Token") {
		t.Errorf("want one warning per protected header, got:\n%s", logs.String())
	}
	if strings.Contains(logs.String(), "pnu_secret_key") || strings.Contains(logs.String(), "forged") {
		t.Errorf("logs leak a header value:\n%s", logs.String())
	}
}

type countingWriter struct {
	w *bytes.Buffer
	n *atomic.Int32
}

func (c *countingWriter) Write(p []byte) (int, error) {
	c.n.Add(1)
	return c.w.Write(p)
}

func TestConfigFromEnv(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name    string
		env     map[string]string
		wantErr string
		check   func(t *testing.T, cfg prefect.Config)
	}{
		{
			name: "all settings",
			env: map[string]string{"PREFECT_API_URL": "http://h:4200/api", "PREFECT_API_AUTH_STRING": "u:p",
				"PREFECT_CLIENT_CUSTOM_HEADERS": `{"X-A": "1"}`},
			check: func(t *testing.T, cfg prefect.Config) {
				if cfg.URL != "http://h:4200/api" || cfg.AuthString != "u:p" || cfg.CustomHeaders["X-A"] != "1" {
					t.Errorf("cfg = %+v", cfg)
				}
			},
		},
		{name: "bad headers JSON", env: map[string]string{"PREFECT_CLIENT_CUSTOM_HEADERS": `[1]`}, wantErr: "PREFECT_CLIENT_CUSTOM_HEADERS must be a JSON object"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg, err := prefect.ConfigFromEnv(func(k string) (string, bool) { v, ok := tt.env[k]; return v, ok })
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("err = %v, want %q", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			tt.check(t, cfg)
		})
	}
}

func TestConfig_Validate(t *testing.T) {
	t.Parallel()
	tests := []struct {
		cfg     prefect.Config
		wantErr string
	}{
		{prefect.Config{}, "set PREFECT_API_URL"},
		{prefect.Config{URL: "127.0.0.1:4200"}, "not an http(s) URL"},
		{prefect.Config{URL: "ftp://h/api"}, "not an http(s) URL"},
		{prefect.Config{URL: "http://h/api", AuthString: "no-colon-secret"}, "user:password"},
		{prefect.Config{URL: "http://h/api"}, ""},
	}
	for _, tt := range tests {
		err := tt.cfg.Validate()
		if tt.wantErr == "" {
			if err != nil {
				t.Errorf("Validate(%+v) = %v, want nil", tt.cfg, err)
			}
			continue
		}
		if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
			t.Errorf("Validate(%+v) = %v, want %q", tt.cfg, err, tt.wantErr)
		}
		if err != nil && strings.Contains(err.Error(), "no-colon-secret") {
			t.Errorf("Validate leaks the auth string: %v", err)
		}
	}
}

func TestAPIError_neverEchoesTheRequestBody(t *testing.T) {
	t.Parallel()
	body := `{"exception_message":"Invalid request received.","exception_detail":[{"type":"value_error","loc":["body","data","value"],"msg":"Value error, too long","input":"TOPSECRET"}],"request_body":{"data":{"value":"TOPSECRET"}}}`
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.WriteHeader(http.StatusUnprocessableEntity)
		w.Write([]byte(body))
	}))
	t.Cleanup(srv.Close)
	c := fastClient(t, srv.URL, nil)
	_, err := c.ReadWorkPool(t.Context(), "p")
	if !prefect.IsInvalid(err) {
		t.Fatalf("err = %v, want a typed 422", err)
	}
	if strings.Contains(err.Error(), "TOPSECRET") || !strings.Contains(err.Error(), "body.data.value: Value error, too long") {
		t.Fatalf("error %q: want the location and message, never the input", err)
	}
}

func TestAPIError_keepsTheUnionMemberOfTheTag(t *testing.T) {
	t.Parallel()
	tests := map[string]struct{ body, want string }{
		// What Prefect 3.9.1 answers to an action {"type": "change-flow-run-state", "state": "crashed"}, shortened.
		"one member's tag matches": {`{"exception_message":"Invalid request received.","exception_detail":[
{"type":"literal_error","loc":["body","actions",1,"DoNothing","type"],"msg":"Input should be 'do-nothing'","ctx":{"expected":"'do-nothing'"}},
{"type":"literal_error","loc":["body","actions",1,"function-after[selected_deployment_requires_id(), RunDeployment]","type"],"msg":"Input should be 'run-deployment'","ctx":{"expected":"'run-deployment'"}},
{"type":"enum","loc":["body","actions",1,"ChangeFlowRunState","state"],"msg":"Input should be 'SCHEDULED' or 'CRASHED'"},
{"type":"literal_error","loc":["body","actions",1,"SendNotification","type"],"msg":"Input should be 'send-notification'","ctx":{"expected":"'send-notification'"}},
{"type":"missing","loc":["body","actions",1,"SendNotification","body"],"msg":"Field required"}]}`,
			"body.actions.1.ChangeFlowRunState.state: Input should be 'SCHEDULED' or 'CRASHED'"},
		// And to {"type": "declare-incident"}, a Prefect Cloud action.
		"no member's tag matches": {`{"exception_detail":[
{"type":"literal_error","loc":["body","actions",0,"DoNothing","type"],"msg":"Input should be 'do-nothing'","ctx":{"expected":"'do-nothing'"}},
{"type":"literal_error","loc":["body","actions",0,"ChangeFlowRunState","type"],"msg":"Input should be 'change-flow-run-state'","ctx":{"expected":"'change-flow-run-state'"}},
{"type":"missing","loc":["body","actions",0,"ChangeFlowRunState","state"],"msg":"Field required"}]}`,
			"body.actions.0.type: Input should be one of 'do-nothing', 'change-flow-run-state'"},
	}
	for name, tt := range tests {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				w.WriteHeader(http.StatusUnprocessableEntity)
				w.Write([]byte(tt.body))
			}))
			t.Cleanup(srv.Close)
			c := fastClient(t, srv.URL, nil)
			_, err := c.ReadWorkPool(t.Context(), "p")
			if err == nil || !strings.HasSuffix(err.Error(), ": "+tt.want) {
				t.Fatalf("error %q: want it to end in %q", err, tt.want)
			}
		})
	}
}
