package prefect

import (
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/url"
	"os"
	"strings"
	"time"

	"github.com/pushpool/pushpool/dispatch/prefectenv"
)

// Config configures a Client. The zero value of every field but URL has a
// working default, filled in by New.
type Config struct {
	// URL is the API base URL, as in PREFECT_API_URL, e.g. http://127.0.0.1:4200/api.
	URL string
	// APIKey is sent as a Bearer token (PREFECT_API_KEY). It wins over AuthString.
	APIKey string
	// AuthString is "user:password" sent with HTTP Basic auth (PREFECT_API_AUTH_STRING),
	// for servers started with PREFECT_SERVER_API_AUTH_STRING.
	AuthString string
	// CustomHeaders are sent with every request (PREFECT_CLIENT_CUSTOM_HEADERS).
	// User-Agent, Prefect-Csrf-Token and Prefect-Csrf-Client are protected: New
	// ignores them with a warning, as Prefect's own client does.
	CustomHeaders map[string]string
	// Timeout bounds one HTTP attempt. Zero means 30 seconds.
	Timeout time.Duration
	// MaxRetries bounds the retries of a request that failed with 408, 429, a
	// 5xx status or a connection error. Zero means 5; a negative value disables retries.
	MaxRetries int
	// RetryBaseDelay is the first backoff delay; each retry doubles it, with
	// ±20% jitter, up to RetryMaxDelay. Zero means 500ms, so the five default
	// retries wait about 15s in all: enough for a busy SQLite-backed server.
	RetryBaseDelay time.Duration
	// RetryMaxDelay caps one backoff delay, including one asked for by a
	// Retry-After header. Zero means 15 seconds.
	RetryMaxDelay time.Duration
	// TLSInsecureSkipVerify turns off the verification of the server's
	// certificate (PREFECT_API_TLS_INSECURE_SKIP_VERIFY), as Prefect's client
	// does with it.
	TLSInsecureSkipVerify bool
	// CACertFile is a PEM bundle of the authorities the server's certificate
	// is verified against instead of the system's (PREFECT_API_SSL_CERT_FILE).
	CACertFile string
	// HTTPClient sends the requests. Nil means a client with Timeout and
	// NewTransport's transport. One given here must apply the TLS settings
	// above itself (start from NewTransport).
	HTTPClient *http.Client
	// UserAgent identifies the caller. Empty means "pushpool".
	UserAgent string
	// Logger receives debug lines about retries and warnings about ignored
	// headers. Nil discards them. Credentials are never logged.
	Logger *slog.Logger
}

// protectedHeaders may not be set through CustomHeaders (lower-cased).
var protectedHeaders = map[string]bool{
	"user-agent":          true,
	"prefect-csrf-token":  true,
	"prefect-csrf-client": true,
}

// Environment variable names understood by ConfigFromEnv; they are Prefect's own.
const (
	EnvAPIURL        = "PREFECT_API_URL"
	EnvAPIKey        = "PREFECT_API_KEY"
	EnvAuthString    = "PREFECT_API_AUTH_STRING"
	EnvCustomHeaders = "PREFECT_CLIENT_CUSTOM_HEADERS"
	EnvTLSInsecure   = "PREFECT_API_TLS_INSECURE_SKIP_VERIFY"
	EnvSSLCertFile   = "PREFECT_API_SSL_CERT_FILE"
)

// maxIdleConnsPerHost is how many idle connections to the Prefect server
// NewTransport keeps; defaultTimeout is Config.Timeout's default.
const (
	maxIdleConnsPerHost = 64
	defaultTimeout      = 30 * time.Second
)

// ConfigFromEnv builds a Config from Prefect's own environment variable names,
// read through lookup (os.LookupEnv in a main package; a map in tests).
func ConfigFromEnv(lookup func(string) (string, bool)) (Config, error) {
	get := func(k string) string { v, _ := lookup(k); return strings.TrimSpace(v) }
	cfg := Config{
		URL:        get(EnvAPIURL),
		APIKey:     get(EnvAPIKey),
		AuthString: get(EnvAuthString),
		CACertFile: get(EnvSSLCertFile),
	}
	if v := get(EnvTLSInsecure); v != "" {
		b, ok := prefectenv.ParseBool(v)
		if !ok {
			return Config{}, fmt.Errorf("%s is %q; it must be true or false", EnvTLSInsecure, v)
		}
		cfg.TLSInsecureSkipVerify = b
	}
	if raw := get(EnvCustomHeaders); raw != "" {
		if err := json.Unmarshal([]byte(raw), &cfg.CustomHeaders); err != nil {
			return Config{}, fmt.Errorf("%s must be a JSON object of header names to string values, e.g. {\"X-Team\": \"data\"}: %w", EnvCustomHeaders, err)
		}
	}
	return cfg, nil
}

// Validate reports the first field that cannot work, naming it and the fix.
func (c Config) Validate() error {
	if c.URL == "" {
		return errors.New("prefect API URL is empty: set PREFECT_API_URL (or --api-url) to the server's API, e.g. http://127.0.0.1:4200/api")
	}
	u, err := url.Parse(c.URL)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return fmt.Errorf("prefect API URL %q is not an http(s) URL: set PREFECT_API_URL to e.g. http://127.0.0.1:4200/api", redactURL(c.URL))
	}
	if c.AuthString != "" && !strings.Contains(c.AuthString, ":") {
		return errors.New("PREFECT_API_AUTH_STRING must have the form user:password (the value is not shown)")
	}
	if c.Timeout < 0 || c.RetryBaseDelay < 0 || c.RetryMaxDelay < 0 {
		return errors.New("prefect client timeouts and retry delays must not be negative")
	}
	return nil
}

func (c *Config) fillDefaults() {
	c.URL = strings.TrimRight(c.URL, "/")
	if c.Timeout == 0 {
		c.Timeout = defaultTimeout
	}
	if c.MaxRetries == 0 {
		c.MaxRetries = 5
	}
	if c.MaxRetries < 0 {
		c.MaxRetries = 0
	}
	if c.RetryBaseDelay == 0 {
		c.RetryBaseDelay = 500 * time.Millisecond
	}
	if c.RetryMaxDelay == 0 {
		c.RetryMaxDelay = 15 * time.Second
	}

	if c.UserAgent == "" {
		c.UserAgent = "pushpool"
	}
	if c.Logger == nil {
		c.Logger = slog.New(slog.DiscardHandler)
	}
}

// NewTransport returns the HTTP transport a Client uses when HTTPClient is
// nil: Go's default transport with the TLS settings of the Config, keeping
// idle connections for as many requests as a dispatcher sends at once (Go's
// default keeps 2 per host, so 16 concurrent submissions opened a
// connection per request). Callers that wrap the transport start from it.
func (c Config) NewTransport() (*http.Transport, error) {
	t := http.DefaultTransport.(*http.Transport).Clone()
	t.MaxIdleConnsPerHost = maxIdleConnsPerHost
	t.MaxIdleConns = 2 * maxIdleConnsPerHost
	tc, err := c.tlsConfig()
	if err != nil {
		return nil, err
	}
	if tc != nil {
		t.TLSClientConfig = tc
	}
	return t, nil
}

// tlsConfig is the TLS configuration TLSInsecureSkipVerify and CACertFile
// ask for, or nil for Go's default.
func (c Config) tlsConfig() (*tls.Config, error) {
	if !c.TLSInsecureSkipVerify && c.CACertFile == "" {
		return nil, nil
	}
	cfg := &tls.Config{MinVersion: tls.VersionTLS12, InsecureSkipVerify: c.TLSInsecureSkipVerify} //nolint:gosec // asked for by PREFECT_API_TLS_INSECURE_SKIP_VERIFY
	if c.CACertFile != "" {
		pem, err := os.ReadFile(c.CACertFile)
		if err != nil {
			return nil, fmt.Errorf("%s: read the CA bundle: %w", EnvSSLCertFile, err)
		}
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM(pem) {
			return nil, fmt.Errorf("%s=%s holds no PEM certificate: point it at the PEM bundle of the authorities that signed the server's certificate", EnvSSLCertFile, c.CACertFile)
		}
		cfg.RootCAs = pool
	}
	return cfg, nil
}

// redactURL removes any user information from a URL so it can be shown.
func redactURL(raw string) string {
	u, err := url.Parse(raw)
	if err != nil {
		return "(unparseable URL)"
	}
	if u.User != nil {
		u.User = url.User("REDACTED")
	}
	return u.String()
}
