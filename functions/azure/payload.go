package main

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"mime"
	"strconv"
	"strings"
)

// The custom-handler wire format, as the Functions host (4.x) speaks it to
// a handler with enableForwardingHttpRequest off: every invocation is a
// POST /<function name> whose body is an invocationRequest, answered with
// an invocationResponse. A non-2xx answer fails the invocation.

// invocationRequest is what the host sends. Data holds the trigger and
// input bindings by their names in function.json; Metadata the trigger's
// metadata (queue: DequeueCount, Id, InsertionTime, ...) and "sys".
//
// The host serializes values it cannot turn into a JSON object as JSON
// text inside a JSON string: a queue message "abc" arrives as "\"abc\"",
// and so do metadata strings and numbers (Id, DequeueCount). unquote
// undoes it.
type invocationRequest struct {
	Data     map[string]json.RawMessage `json:"Data"`
	Metadata map[string]json.RawMessage `json:"Metadata"`
}

// invocationResponse is what the handler answers. The host binds each
// Outputs entry named like an output binding in function.json and ignores
// the rest; it writes every Logs line to the invocation's log.
type invocationResponse struct {
	Outputs     map[string]any `json:"Outputs"`
	Logs        []string       `json:"Logs"`
	ReturnValue any            `json:"ReturnValue"`
}

// timerInfo is a timer trigger's Data entry (the host's TimerInfo).
type timerInfo struct {
	Schedule map[string]any `json:"Schedule"`
	// ScheduleStatus is null until the schedule monitor has a record.
	ScheduleStatus *struct {
		Last        string `json:"Last"`
		Next        string `json:"Next"`
		LastUpdated string `json:"LastUpdated"`
	} `json:"ScheduleStatus"`
	IsPastDue bool `json:"IsPastDue"`
}

// httpRequestData is an HTTP trigger's Data entry.
type httpRequestData struct {
	URL     string              `json:"Url"`
	Method  string              `json:"Method"`
	Headers map[string][]string `json:"Headers"`
	// Body is the request body as text, or base64 for octet-stream and
	// multipart content; absent when the request has none.
	Body *string `json:"Body"`
}

// header returns the first value of a header, matched case-insensitively.
func (r httpRequestData) header(name string) string {
	for k, vs := range r.Headers {
		if strings.EqualFold(k, name) && len(vs) > 0 {
			return vs[0]
		}
	}
	return ""
}

// body returns the request body as the client sent it.
func (r httpRequestData) body() ([]byte, error) {
	if r.Body == nil {
		return nil, nil
	}
	mt, _, _ := mime.ParseMediaType(r.header("Content-Type"))
	if mt == "application/octet-stream" || strings.HasPrefix(mt, "multipart/") {
		b, err := base64.StdEncoding.DecodeString(*r.Body)
		if err != nil {
			return nil, fmt.Errorf("the host sent a %s body that is not base64: %w", mt, err)
		}
		return b, nil
	}
	return []byte(*r.Body), nil
}

// httpResponse is an HTTP output binding's value.
type httpResponse struct {
	StatusCode int               `json:"statusCode"`
	Body       string            `json:"body"`
	Headers    map[string]string `json:"headers"`
}

// unquote strips the layers of JSON string encoding the host wraps around
// a value: "\"abc\"" and "abc" both give abc; anything that is not a JSON
// string is returned as is.
func unquote(raw json.RawMessage) []byte {
	b := bytes.TrimSpace(raw)
	for len(b) > 0 && b[0] == '"' {
		var s string
		if err := json.Unmarshal(b, &s); err != nil {
			break
		}
		b = bytes.TrimSpace([]byte(s))
	}
	return b
}

// metaString returns a metadata value as a plain string.
func metaString(md map[string]json.RawMessage, key string) string {
	v, ok := md[key]
	if !ok {
		return ""
	}
	return string(unquote(v))
}

// metaInt returns a metadata value as an integer, 0 when absent or not a
// number.
func metaInt(md map[string]json.RawMessage, key string) int {
	n, _ := strconv.Atoi(metaString(md, key))
	return n
}
