package main

import (
	"bytes"
	"fmt"
	"io"
	"net/http"
)

// countingTransport is an http.RoundTripper that counts every request it
// sends by classify's key, for clients that run in the harness's own
// process (the reconcile scenario's Prefect client and ECS backend).
type countingTransport struct {
	base     http.RoundTripper
	classify func(*http.Request) string
	counts   *counter
}

// RoundTrip counts the request and sends it with the base transport. The
// request is cloned when classify has to read its body.
func (t countingTransport) RoundTrip(r *http.Request) (*http.Response, error) {
	out := r
	if r.Body != nil && r.Body != http.NoBody {
		data, err := io.ReadAll(r.Body)
		r.Body.Close()
		if err != nil {
			return nil, fmt.Errorf("read the request body to count it: %w", err)
		}
		out = r.Clone(r.Context())
		out.Body = io.NopCloser(bytes.NewReader(data))
		probe := r.Clone(r.Context())
		probe.Body = io.NopCloser(bytes.NewReader(data))
		t.counts.add(t.classify(probe))
	} else {
		t.counts.add(t.classify(r))
	}
	return t.base.RoundTrip(out)
}
