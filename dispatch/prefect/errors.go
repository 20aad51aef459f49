package prefect

import (
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"slices"
	"strings"
)

// APIError is a response from the Prefect API with a status code of 400 or
// above. Callers branch on it with errors.As, or with IsNotFound and friends.
type APIError struct {
	// StatusCode is the HTTP status code.
	StatusCode int
	// Method and Path name the request, e.g. POST /flow_runs/{id}/set_state
	// with the id filled in. The query string is not included.
	Method, Path string
	// Detail is the server's explanation, from its "detail" field.
	Detail string
}

// Error names the request, the status and the server's detail, plus a hint
// for the statuses a user can fix.
func (e *APIError) Error() string {
	msg := fmt.Sprintf("prefect API %s %s: %d %s", e.Method, e.Path, e.StatusCode, http.StatusText(e.StatusCode))
	if e.Detail != "" {
		msg += ": " + e.Detail
	}
	switch e.StatusCode {
	case http.StatusUnauthorized:
		msg += " (check PREFECT_API_AUTH_STRING for a server with basic auth, or PREFECT_API_KEY)"
	case http.StatusForbidden:
		msg += " (the credentials are valid but not allowed to do this)"
	}
	return msg
}

// IsNotFound reports whether err is, or wraps, a 404 from the Prefect API.
func IsNotFound(err error) bool { return hasStatus(err, http.StatusNotFound) }

// IsConflict reports whether err is, or wraps, a 409 from the Prefect API
// (for example, creating an object whose name is taken).
func IsConflict(err error) bool { return hasStatus(err, http.StatusConflict) }

// IsUnauthorized reports whether err is, or wraps, a 401 from the Prefect API.
func IsUnauthorized(err error) bool { return hasStatus(err, http.StatusUnauthorized) }

// IsInvalid reports whether err is, or wraps, a 422 (request validation) or
// 400 from the Prefect API.
func IsInvalid(err error) bool {
	return hasStatus(err, http.StatusUnprocessableEntity) || hasStatus(err, http.StatusBadRequest)
}

func hasStatus(err error, code int) bool {
	var apiErr *APIError
	return errors.As(err, &apiErr) && apiErr.StatusCode == code
}

// readDetail extracts the server's explanation from an error body. FastAPI
// sends {"detail": string | [validation errors]}; Prefect's 422 handler sends
// {"exception_message", "exception_detail": [validation errors], "request_body"}.
// Only locations and messages are kept: the "input" of a validation error and
// the echoed request body can hold secrets, so they are never included.
func readDetail(body []byte) string {
	var payload struct {
		Detail           json.RawMessage `json:"detail"`
		ExceptionMessage string          `json:"exception_message"`
		ExceptionDetail  json.RawMessage `json:"exception_detail"`
	}
	if err := json.Unmarshal(body, &payload); err != nil {
		// Not JSON: a proxy's error page, say. Show its start.
		s := strings.TrimSpace(string(body))
		if len(s) > 200 {
			s = s[:200] + "…"
		}
		return s
	}
	var text string
	if json.Unmarshal(payload.Detail, &text) == nil {
		return text
	}
	if msg := validationMessages(payload.Detail); msg != "" {
		return msg
	}
	if msg := validationMessages(payload.ExceptionDetail); msg != "" {
		return msg
	}
	return payload.ExceptionMessage
}

func validationMessages(raw json.RawMessage) string {
	var items []validationItem
	if len(raw) == 0 || json.Unmarshal(raw, &items) != nil || len(items) == 0 {
		return ""
	}
	items = dropOtherUnionMembers(items)
	parts := make([]string, 0, len(items))
	for _, it := range items {
		parts = append(parts, it.path()+": "+it.Msg)
	}
	return strings.Join(parts, "; ")
}

// validationItem is one entry of a FastAPI/pydantic validation error.
type validationItem struct {
	Type string `json:"type"`
	Loc  []any  `json:"loc"`
	Msg  string `json:"msg"`
	Ctx  struct {
		Expected string `json:"expected"`
	} `json:"ctx"`
}

func (it validationItem) path() string {
	loc := make([]string, 0, len(it.Loc))
	for _, l := range it.Loc {
		loc = append(loc, fmt.Sprint(l))
	}
	return strings.Join(loc, ".")
}

// dropOtherUnionMembers keeps the errors of the union member a value meant
// to be. Pydantic reports a value that fits no member of a union (an
// automation's trigger or actions) once per member, and every member but one
// says only that the "type" tag is wrong ("Input should be 'do-nothing'"), so
// the errors under a member whose tag did not match are dropped. When no
// member's tag matched, one error lists the tags the server accepts there.
func dropOtherUnionMembers(items []validationItem) []validationItem {
	var wrong []string
	for _, it := range items {
		if it.isTagError() {
			wrong = append(wrong, validationItem{Loc: it.Loc[:len(it.Loc)-1]}.path()+".")
		}
	}
	if len(wrong) == 0 {
		return items
	}
	kept := make([]validationItem, 0, len(items))
	for _, it := range items {
		p := it.path() + "."
		drop := false
		for _, w := range wrong {
			if strings.HasPrefix(p, w) {
				drop = true
				break
			}
		}
		if !drop {
			kept = append(kept, it)
		}
	}
	if len(kept) > 0 {
		return kept
	}
	// No member matched: one error per union, at its "type", listing the tags.
	var order []string
	tags := map[string][]string{}
	for _, it := range items {
		if !it.isTagError() || len(it.Loc) < 3 {
			continue
		}
		at := validationItem{Loc: append(slices.Clone(it.Loc[:len(it.Loc)-2]), "type")}.path()
		if _, seen := tags[at]; !seen {
			order = append(order, at)
		}
		tags[at] = append(tags[at], it.Ctx.Expected)
	}
	if len(order) == 0 {
		return items
	}
	out := make([]validationItem, 0, len(order))
	for _, at := range order {
		out = append(out, validationItem{Loc: []any{at}, Msg: "Input should be one of " + strings.Join(tags[at], ", ")})
	}
	return out
}

// isTagError reports a wrong value of a union member's "type" tag.
func (it validationItem) isTagError() bool {
	return it.Type == "literal_error" && len(it.Loc) > 1 && fmt.Sprint(it.Loc[len(it.Loc)-1]) == "type"
}
