package invoke

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"
)

// SignatureHeader carries a webhook's signature:
//
//	X-Pushpool-Signature: t=<unix seconds>,v1=<hex HMAC-SHA256 of "<t>.<body>">
//
// The key is the shared webhook secret. The timestamp is signed with the
// body, so a captured request cannot be replayed after MaxAge.
const SignatureHeader = "X-Pushpool-Signature"

// DefaultMaxAge is how old a signed request may be.
const DefaultMaxAge = 5 * time.Minute

// ErrUnauthorized is wrapped by every signature failure; the platform answers
// 401 and does nothing.
var ErrUnauthorized = errors.New("webhook refused")

// Sign returns the SignatureHeader value for body at time at.
func Sign(secret, body []byte, at time.Time) string {
	t := strconv.FormatInt(at.Unix(), 10)
	return "t=" + t + ",v1=" + hex.EncodeToString(mac(secret, t, body))
}

func mac(secret []byte, t string, body []byte) []byte {
	h := hmac.New(sha256.New, secret)
	h.Write([]byte(t))
	h.Write([]byte{'.'})
	h.Write(body)
	return h.Sum(nil)
}

// Verify checks header (the SignatureHeader value) against body: the
// signature must match and its time be within maxAge of now, either way.
// Every failure wraps ErrUnauthorized and says which check failed, never
// the expected signature.
func Verify(secret, body []byte, header string, now time.Time, maxAge time.Duration) error {
	if len(secret) == 0 {
		return fmt.Errorf("%w: no webhook secret is configured, so no request can be verified", ErrUnauthorized)
	}
	if header == "" {
		return fmt.Errorf("%w: unsigned request (no %s header)", ErrUnauthorized, SignatureHeader)
	}
	var t string
	var sigs [][]byte
	for _, part := range strings.Split(header, ",") {
		k, v, _ := strings.Cut(strings.TrimSpace(part), "=")
		switch k {
		case "t":
			t = v
		case "v1":
			if b, err := hex.DecodeString(v); err == nil {
				sigs = append(sigs, b)
			}
		}
	}
	sec, err := strconv.ParseInt(t, 10, 64)
	if err != nil || len(sigs) == 0 {
		return fmt.Errorf("%w: malformed %s header; want t=<unix seconds>,v1=<hex hmac-sha256>", ErrUnauthorized, SignatureHeader)
	}
	if age := now.Sub(time.Unix(sec, 0)); age > maxAge || age < -maxAge {
		return fmt.Errorf("%w: signature time is %v from now, more than the %v allowed (a replay, or the sender's clock is wrong)", ErrUnauthorized, age.Round(time.Second), maxAge)
	}
	want := mac(secret, t, body)
	for _, s := range sigs {
		if hmac.Equal(s, want) {
			return nil
		}
	}
	return fmt.Errorf("%w: signature does not match the body (tampered, or signed with another secret)", ErrUnauthorized)
}

// Announcement is what a webhook tells: a flow run to dispatch and the
// event behind it.
type Announcement struct {
	FlowRunID string
	Trigger   TriggerJSON
}

// ParseAnnouncement reads a webhook body. Two shapes are accepted:
//
//   - a Prefect event as automations render {{ event }} or as /events
//     returns it: the flow run is the event's resource
//     (prefect.flow-run.<id>) or its related resource of role "flow-run";
//     the actor is a related resource of role "actor", if any;
//   - a flat object: {"flow_run_id": ..., "event_id": ..., "event": ...,
//     "actor": ...}, as a call-webhook action's payload template writes it.
func ParseAnnouncement(body []byte) (Announcement, error) {
	var raw struct {
		FlowRunID string              `json:"flow_run_id"`
		EventID   string              `json:"event_id"`
		Event     string              `json:"event"`
		Actor     string              `json:"actor"`
		ID        string              `json:"id"`
		Resource  map[string]string   `json:"resource"`
		Related   []map[string]string `json:"related"`
	}
	if err := json.Unmarshal(body, &raw); err != nil {
		return Announcement{}, fmt.Errorf("webhook body is not a JSON object: %w", err)
	}
	a := Announcement{FlowRunID: raw.FlowRunID, Trigger: TriggerJSON{EventID: raw.EventID, Event: raw.Event, Actor: raw.Actor}}
	if a.Trigger.EventID == "" {
		a.Trigger.EventID = raw.ID
	}
	const flowRunPrefix = "prefect.flow-run."
	if a.FlowRunID == "" {
		if id, ok := strings.CutPrefix(raw.Resource["prefect.resource.id"], flowRunPrefix); ok {
			a.FlowRunID = id
		}
	}
	for _, r := range raw.Related {
		id, role := r["prefect.resource.id"], r["prefect.resource.role"]
		switch {
		case a.FlowRunID == "" && role == "flow-run" && strings.HasPrefix(id, flowRunPrefix):
			a.FlowRunID = strings.TrimPrefix(id, flowRunPrefix)
		case a.Trigger.Actor == "" && role == "actor":
			a.Trigger.Actor = id
		}
	}
	if a.FlowRunID == "" {
		return Announcement{}, errors.New(`webhook body names no flow run: send the Prefect event of a flow run ({{ event }}), or {"flow_run_id": "{{ flow_run.id }}", "event_id": "{{ event.id }}"}`)
	}
	return a, nil
}
