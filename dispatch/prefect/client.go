// Package prefect is a typed client for the part of the Prefect 3 REST API
// that pushpool's dispatcher and Terraform provider use. It authenticates,
// retries and reports errors the way Prefect's own Python client does.
package prefect

import (
	"bytes"
	"cmp"
	"context"
	"crypto/rand"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math"
	mrand "math/rand/v2"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// APIVersion is the Prefect REST API version this client is written against
// (Prefect 3.9.1). It is sent as X-Prefect-Api-Version.
const APIVersion = "0.8.4"

// Client talks to one Prefect server. It is safe for concurrent use.
type Client struct {
	cfg     Config
	base    *url.URL
	headers http.Header
	log     *slog.Logger

	// connected turns true after the first response; only then are connection
	// errors retried, so a wrong URL fails at once with one clear error.
	connected atomic.Bool

	// skew is the server's clock minus ours, in nanoseconds, as the Date
	// headers of its answers tell (see ServerTime); skewKnown says whether
	// any answer had one.
	skew      atomic.Int64
	skewKnown atomic.Bool

	csrfMu       sync.Mutex
	csrfDisabled bool
	csrfToken    string
	csrfExpires  time.Time
	csrfClient   string
}

// New validates cfg, fills in its defaults and returns a Client.
func New(cfg Config) (*Client, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if cfg.HTTPClient == nil {
		t, err := cfg.NewTransport()
		if err != nil {
			return nil, err
		}
		cfg.HTTPClient = &http.Client{Timeout: cmp.Or(cfg.Timeout, defaultTimeout), Transport: t}
	}
	cfg.fillDefaults()
	base, err := url.Parse(cfg.URL)
	if err != nil {
		return nil, fmt.Errorf("parse prefect API URL: %w", err)
	}
	c := &Client{cfg: cfg, base: base, log: cfg.Logger, headers: http.Header{}, csrfClient: newUUID()}
	c.headers.Set("Accept", "application/json")
	c.headers.Set("X-Prefect-Api-Version", APIVersion)
	switch {
	case cfg.APIKey != "":
		c.headers.Set("Authorization", "Bearer "+cfg.APIKey)
	case cfg.AuthString != "":
		c.headers.Set("Authorization", "Basic "+base64.StdEncoding.EncodeToString([]byte(cfg.AuthString)))
	}
	for name, value := range cfg.CustomHeaders {
		if protectedHeaders[strings.ToLower(name)] {
			c.log.Warn("custom header ignored: it is managed by the client",
				slog.String("header", name),
				slog.String("protected", "User-Agent, Prefect-Csrf-Token, Prefect-Csrf-Client"))
			continue
		}
		c.headers.Set(name, value)
	}
	c.headers.Set("User-Agent", cfg.UserAgent)
	return c, nil
}

// URL returns the API base URL the client talks to, without credentials.
func (c *Client) URL() string { return redactURL(c.cfg.URL) }

// route is "METHOD /path/{param}", the form the server's OpenAPI document uses.
type route string

func (r route) split() (method, path string) {
	method, path, _ = strings.Cut(string(r), " ")
	return method, path
}

// call describes one request.
type call struct {
	route route
	args  []string   // values for the route's {params}, in order
	query url.Values // optional query string
	body  any        // JSON-encoded when not nil
	out   any        // JSON-decoded into when not nil
	// noRetry disables retries on status codes, for requests that must not be
	// repeated blindly.
	noRetry bool
	// status, when not nil, receives the status code of the answer.
	status *int
}

// do sends a call with retries and decodes the response.
func (c *Client) do(ctx context.Context, cl call) error {
	method, tmpl := cl.route.split()
	path, err := fillPath(tmpl, cl.args)
	if err != nil {
		return err
	}
	var body []byte
	if cl.body != nil {
		if body, err = json.Marshal(cl.body); err != nil {
			return fmt.Errorf("encode %s %s request: %w", method, path, err)
		}
	}
	resp, err := c.send(ctx, method, path, cl.query, body, !cl.noRetry)
	if err != nil {
		return err
	}
	if cl.status != nil {
		*cl.status = resp.status
	}
	if cl.out == nil || resp.status == http.StatusNoContent || len(resp.body) == 0 {
		return nil
	}
	dec := json.NewDecoder(bytes.NewReader(resp.body))
	dec.UseNumber()
	if err := dec.Decode(cl.out); err != nil {
		return fmt.Errorf("decode %s %s response: %w", method, path, err)
	}
	return nil
}

type response struct {
	status int
	body   []byte
}

func isChange(method string) bool {
	switch method {
	case http.MethodPost, http.MethodPut, http.MethodPatch, http.MethodDelete:
		return true
	}
	return false
}

func retryableStatus(code int) bool {
	return code == http.StatusRequestTimeout || code == http.StatusTooManyRequests || code >= 500
}

// send performs one logical request: CSRF headers for changes, retries with
// jittered exponential backoff (honouring Retry-After) on 408, 429, 5xx and,
// once the server has been reached, connection errors.
func (c *Client) send(ctx context.Context, method, path string, query url.Values, body []byte, retryStatus bool) (response, error) {
	target := c.base.JoinPath(path)
	if len(query) > 0 {
		target.RawQuery = query.Encode()
	}
	csrfRetried := false
	for attempt := 0; ; attempt++ {
		req, err := http.NewRequestWithContext(ctx, method, target.String(), bytes.NewReader(body))
		if err != nil {
			return response{}, fmt.Errorf("build %s %s request: %w", method, path, err)
		}
		req.Header = c.headers.Clone()
		if body != nil {
			req.Header.Set("Content-Type", "application/json")
		}
		if isChange(method) {
			if err := c.addCSRF(ctx, req); err != nil {
				return response{}, err
			}
		}
		sent := time.Now()
		resp, err := c.cfg.HTTPClient.Do(req)
		var wait time.Duration
		if err != nil {
			if ctx.Err() != nil {
				return response{}, fmt.Errorf("prefect API %s %s: %w", method, path, context.Cause(ctx))
			}
			if !c.connected.Load() || attempt >= c.cfg.MaxRetries {
				return response{}, fmt.Errorf("prefect API %s %s: cannot reach the server at %s (is it running, and is PREFECT_API_URL right?): %w",
					method, path, c.URL(), scrubURLError(err))
			}
			wait = c.backoff(attempt)
			c.log.DebugContext(ctx, "prefect request failed, retrying",
				slog.String("method", method), slog.String("path", path),
				slog.Int("attempt", attempt+1), slog.Duration("wait", wait), slog.String("error", scrubURLError(err).Error()))
		} else {
			c.connected.Store(true)
			c.observeDate(resp.Header.Get("Date"), sent, time.Now())
			data, readErr := io.ReadAll(io.LimitReader(resp.Body, 64<<20))
			resp.Body.Close()
			if readErr != nil {
				return response{}, fmt.Errorf("prefect API %s %s: read response: %w", method, path, readErr)
			}
			if resp.StatusCode < 400 {
				return response{status: resp.StatusCode, body: data}, nil
			}
			if resp.StatusCode == http.StatusForbidden && !csrfRetried && bytes.Contains(data, []byte("Invalid CSRF token")) {
				// The server rotated or forgot our token (Prefect gives no typed signal
				// for this): fetch a new one and repeat the request once.
				csrfRetried = true
				c.resetCSRF()
				attempt--
				continue
			}
			apiErr := &APIError{StatusCode: resp.StatusCode, Method: method, Path: path, Detail: readDetail(data)}
			if !retryStatus || !retryableStatus(resp.StatusCode) || attempt >= c.cfg.MaxRetries {
				return response{}, apiErr
			}
			wait = c.backoff(attempt)
			if ra, ok := parseRetryAfter(resp.Header.Get("Retry-After")); ok {
				wait = min(ra, c.cfg.RetryMaxDelay)
			}
			c.log.DebugContext(ctx, "prefect request got a retryable status, retrying",
				slog.String("method", method), slog.String("path", path), slog.Int("status", resp.StatusCode),
				slog.Int("attempt", attempt+1), slog.Duration("wait", wait))
		}
		t := time.NewTimer(wait)
		select {
		case <-ctx.Done():
			t.Stop()
			return response{}, fmt.Errorf("prefect API %s %s: gave up waiting to retry: %w", method, path, context.Cause(ctx))
		case <-t.C:
		}
	}
}

// observeDate updates the estimate of the server's clock from a response's
// Date header. The header has whole seconds, truncated, so half a second is
// added; the request's midpoint stands for when the server wrote it.
func (c *Client) observeDate(header string, sent, received time.Time) {
	if header == "" {
		return
	}
	server, err := http.ParseTime(header)
	if err != nil {
		return
	}
	mid := sent.Add(received.Sub(sent) / 2)
	c.skew.Store(int64(server.Add(500 * time.Millisecond).Sub(mid)))
	c.skewKnown.Store(true)
}

// ServerTime returns the Prefect server's current time, estimated from the
// Date headers of its latest answer (to about half a second), or the local
// time before any answer. Ages of states, which the server timestamps, are
// measured against it, so a dispatcher whose clock is off does not judge
// runs too early or too late.
func (c *Client) ServerTime() time.Time {
	now := time.Now()
	if !c.skewKnown.Load() {
		return now
	}
	return now.Add(time.Duration(c.skew.Load()))
}

// backoff returns the delay before retry number attempt+1: base·2^attempt
// with ±20% jitter, capped at RetryMaxDelay.
func (c *Client) backoff(attempt int) time.Duration {
	d := float64(c.cfg.RetryBaseDelay) * math.Pow(2, float64(attempt))
	d *= 0.8 + 0.4*mrand.Float64()
	return min(time.Duration(d), c.cfg.RetryMaxDelay)
}

// parseRetryAfter reads a Retry-After header in seconds or as an HTTP date.
func parseRetryAfter(v string) (time.Duration, bool) {
	if v == "" {
		return 0, false
	}
	if secs, err := strconv.ParseFloat(v, 64); err == nil && secs >= 0 {
		return time.Duration(secs * float64(time.Second)), true
	}
	if t, err := http.ParseTime(v); err == nil {
		return max(time.Until(t), 0), true
	}
	return 0, false
}

// addCSRF adds Prefect's CSRF headers to a change request when the server
// enables CSRF protection, fetching a token first if needed. A server that
// answers that protection is disabled (or has no token route) is remembered.
func (c *Client) addCSRF(ctx context.Context, req *http.Request) error {
	c.csrfMu.Lock()
	defer c.csrfMu.Unlock()
	if c.csrfDisabled {
		return nil
	}
	if c.csrfToken == "" || (!c.csrfExpires.IsZero() && time.Now().After(c.csrfExpires)) {
		var tok struct {
			Token      string    `json:"token"`
			Expiration time.Time `json:"expiration"`
		}
		resp, err := c.send(ctx, http.MethodGet, "/csrf-token", url.Values{"client": {c.csrfClient}}, nil, true)
		var apiErr *APIError
		switch {
		case errors.As(err, &apiErr) && (apiErr.StatusCode == http.StatusNotFound ||
			(apiErr.StatusCode == http.StatusUnprocessableEntity && strings.Contains(apiErr.Detail, "CSRF protection is disabled"))):
			c.csrfDisabled = true
			return nil
		case err != nil:
			return fmt.Errorf("get a CSRF token: %w", err)
		}
		if err := json.Unmarshal(resp.body, &tok); err != nil || tok.Token == "" {
			return fmt.Errorf("get a CSRF token: unexpected response from %s/csrf-token", c.URL())
		}
		c.csrfToken, c.csrfExpires = tok.Token, tok.Expiration
	}
	req.Header.Set("Prefect-Csrf-Token", c.csrfToken)
	req.Header.Set("Prefect-Csrf-Client", c.csrfClient)
	return nil
}

func (c *Client) resetCSRF() {
	c.csrfMu.Lock()
	c.csrfToken = ""
	c.csrfMu.Unlock()
}

// fillPath substitutes the route's {params} with escaped args, in order.
func fillPath(tmpl string, args []string) (string, error) {
	var b strings.Builder
	rest := tmpl
	for _, a := range args {
		i := strings.IndexByte(rest, '{')
		j := strings.IndexByte(rest, '}')
		if i < 0 || j < i {
			return "", fmt.Errorf("route %s takes fewer than %d arguments", tmpl, len(args))
		}
		if a == "" {
			return "", fmt.Errorf("route %s: %s must not be empty", tmpl, rest[i+1:j])
		}
		b.WriteString(rest[:i])
		b.WriteString(url.PathEscape(a))
		rest = rest[j+1:]
	}
	if strings.IndexByte(rest, '{') >= 0 {
		return "", fmt.Errorf("route %s needs more than %d arguments", tmpl, len(args))
	}
	b.WriteString(rest)
	return b.String(), nil
}

// scrubURLError drops the request URL from a transport error: it may carry
// credentials in its user information.
func scrubURLError(err error) error {
	var uerr *url.Error
	if errors.As(err, &uerr) {
		return uerr.Err
	}
	return err
}

func newUUID() string {
	var b [16]byte
	_, _ = rand.Read(b[:])
	b[6] = (b[6] & 0x0f) | 0x40
	b[8] = (b[8] & 0x3f) | 0x80
	h := hex.EncodeToString(b[:])
	return h[0:8] + "-" + h[8:12] + "-" + h[12:16] + "-" + h[16:20] + "-" + h[20:]
}

// send and decode helpers shared by the resource files.

func get[T any](ctx context.Context, c *Client, r route, args ...string) (T, error) {
	var out T
	err := c.do(ctx, call{route: r, args: args, out: &out})
	return out, err
}

func post[T any](ctx context.Context, c *Client, r route, body any, args ...string) (T, error) {
	var out T
	err := c.do(ctx, call{route: r, args: args, body: body, out: &out})
	return out, err
}
