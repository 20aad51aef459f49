// Package prefectext is the part of the Prefect REST API that only the
// Terraform provider uses and that the shared client (dispatch/prefect) does
// not have: block types, block schemas, a deployment's link to a global
// concurrency limit, and the filter reads that refresh many objects in one
// request. It authenticates, sends CSRF tokens, retries and reports errors
// (as *prefect.APIError) the way the shared client does; its routes belong
// in dispatch/prefect, where they can move unchanged.
package prefectext

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	mrand "math/rand/v2"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/pushpool/pushpool/dispatch/prefect"
)

// Client sends the provider's own requests to one Prefect server. It is safe
// for concurrent use.
type Client struct {
	base    *url.URL
	hc      *http.Client
	headers http.Header
	// retries bounds the retries of a request answered 408, 429 or 5xx.
	retries int

	csrfMu       sync.Mutex
	csrfDisabled bool
	csrfToken    string
	csrfExpires  time.Time
	csrfClient   string
}

// New returns a Client for the server and credentials of cfg, the same
// Config the provider gives prefect.New; cfg.HTTPClient, when set, is shared.
func New(cfg prefect.Config) (*Client, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	base, err := url.Parse(strings.TrimRight(cfg.URL, "/"))
	if err != nil {
		return nil, fmt.Errorf("parse prefect API URL: %w", err)
	}
	hc := cfg.HTTPClient
	if hc == nil {
		hc = &http.Client{Timeout: 30 * time.Second}
	}
	c := &Client{base: base, hc: hc, headers: http.Header{}, retries: 5, csrfClient: newUUID()}
	if cfg.MaxRetries != 0 {
		c.retries = max(cfg.MaxRetries, 0)
	}
	c.headers.Set("Accept", "application/json")
	c.headers.Set("X-Prefect-Api-Version", prefect.APIVersion)
	switch {
	case cfg.APIKey != "":
		c.headers.Set("Authorization", "Bearer "+cfg.APIKey)
	case cfg.AuthString != "":
		c.headers.Set("Authorization", "Basic "+base64.StdEncoding.EncodeToString([]byte(cfg.AuthString)))
	}
	for name, value := range cfg.CustomHeaders {
		switch strings.ToLower(name) {
		case "user-agent", "prefect-csrf-token", "prefect-csrf-client":
			continue // prefect.New warns about these once
		}
		c.headers.Set(name, value)
	}
	ua := cfg.UserAgent
	if ua == "" {
		ua = "pushpool"
	}
	c.headers.Set("User-Agent", ua)
	return c, nil
}

// do sends one request with retries and decodes the answer into out (when
// not nil). It returns the status code of the answer.
func (c *Client) do(ctx context.Context, method, path string, body, out any) (int, error) {
	var payload []byte
	if body != nil {
		var err error
		if payload, err = json.Marshal(body); err != nil {
			return 0, fmt.Errorf("encode %s %s request: %w", method, path, err)
		}
	}
	p, rawQuery, _ := strings.Cut(path, "?")
	u := c.base.JoinPath(p)
	u.RawQuery = rawQuery
	target := u.String()
	path = p
	csrfRetried := false
	for attempt := 0; ; attempt++ {
		req, err := http.NewRequestWithContext(ctx, method, target, bytes.NewReader(payload))
		if err != nil {
			return 0, fmt.Errorf("build %s %s request: %w", method, path, err)
		}
		req.Header = c.headers.Clone()
		if payload != nil {
			req.Header.Set("Content-Type", "application/json")
		}
		if method != http.MethodGet {
			if err := c.addCSRF(ctx, req); err != nil {
				return 0, err
			}
		}
		resp, err := c.hc.Do(req)
		if err != nil {
			if ctx.Err() != nil {
				return 0, fmt.Errorf("prefect API %s %s: %w", method, path, context.Cause(ctx))
			}
			var uerr *url.Error
			if errors.As(err, &uerr) {
				err = uerr.Err // the URL may carry credentials
			}
			return 0, fmt.Errorf("prefect API %s %s: %w", method, path, err)
		}
		data, readErr := io.ReadAll(io.LimitReader(resp.Body, 64<<20))
		resp.Body.Close()
		if readErr != nil {
			return 0, fmt.Errorf("prefect API %s %s: read response: %w", method, path, readErr)
		}
		if resp.StatusCode < 400 {
			if out != nil && len(data) > 0 && resp.StatusCode != http.StatusNoContent {
				dec := json.NewDecoder(bytes.NewReader(data))
				dec.UseNumber()
				if err := dec.Decode(out); err != nil {
					return resp.StatusCode, fmt.Errorf("decode %s %s response: %w", method, path, err)
				}
			}
			return resp.StatusCode, nil
		}
		if resp.StatusCode == http.StatusForbidden && !csrfRetried && bytes.Contains(data, []byte("Invalid CSRF token")) {
			csrfRetried = true
			c.resetCSRF()
			attempt--
			continue
		}
		apiErr := &prefect.APIError{StatusCode: resp.StatusCode, Method: method, Path: path, Detail: detail(data)}
		retryable := resp.StatusCode == http.StatusRequestTimeout || resp.StatusCode == http.StatusTooManyRequests || resp.StatusCode >= 500
		if !retryable || attempt >= c.retries {
			return resp.StatusCode, apiErr
		}
		wait := backoff(attempt)
		if secs, err := strconv.ParseFloat(resp.Header.Get("Retry-After"), 64); err == nil && secs >= 0 {
			wait = min(time.Duration(secs*float64(time.Second)), 15*time.Second)
		}
		t := time.NewTimer(wait)
		select {
		case <-ctx.Done():
			t.Stop()
			return resp.StatusCode, fmt.Errorf("prefect API %s %s: gave up waiting to retry: %w", method, path, context.Cause(ctx))
		case <-t.C:
		}
	}
}

// backoff is 500ms·2^attempt with ±20% jitter, at most 15s.
func backoff(attempt int) time.Duration {
	d := float64(500*time.Millisecond) * math.Pow(2, float64(attempt)) * (0.8 + 0.4*mrand.Float64())
	return min(time.Duration(d), 15*time.Second)
}

// detail is the server's explanation of an error answer.
func detail(body []byte) string {
	var v struct {
		Detail           json.RawMessage `json:"detail"`
		ExceptionMessage string          `json:"exception_message"`
	}
	if json.Unmarshal(body, &v) != nil {
		return strings.TrimSpace(string(body))
	}
	var s string
	if json.Unmarshal(v.Detail, &s) == nil {
		return s
	}
	if len(v.Detail) > 0 {
		return string(v.Detail)
	}
	return v.ExceptionMessage
}

// addCSRF adds Prefect's CSRF headers to a change request when the server
// wants them, fetching a token first; a server that has CSRF protection off
// is remembered.
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
		q := url.Values{"client": {c.csrfClient}}
		_, err := c.do(ctx, http.MethodGet, "/csrf-token?"+q.Encode(), nil, &tok)
		var apiErr *prefect.APIError
		switch {
		case errors.As(err, &apiErr) && (apiErr.StatusCode == http.StatusNotFound ||
			(apiErr.StatusCode == http.StatusUnprocessableEntity && strings.Contains(apiErr.Detail, "CSRF protection is disabled"))):
			c.csrfDisabled = true
			return nil
		case err != nil:
			return fmt.Errorf("get a CSRF token: %w", err)
		case tok.Token == "":
			return errors.New("get a CSRF token: the server sent none")
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

func newUUID() string {
	var b [16]byte
	_, _ = rand.Read(b[:])
	b[6] = (b[6] & 0x0f) | 0x40
	b[8] = (b[8] & 0x3f) | 0x80
	h := hex.EncodeToString(b[:])
	return h[0:8] + "-" + h[8:12] + "-" + h[12:16] + "-" + h[16:20] + "-" + h[20:]
}

// escape escapes one path segment.
func escape(s string) string { return url.PathEscape(s) }
