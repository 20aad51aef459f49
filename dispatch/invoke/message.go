package invoke

import (
	"encoding/json"
	"errors"
	"fmt"
	"strings"

	"github.com/pushpool/pushpool/dispatch"
)

// MessageKind marks a pushpool queue message, so a queue shared with other
// payloads (ECS events delivered through the same SQS queue) can tell them
// apart.
const MessageKind = "pushpool.wake/v1"

// Message travels through the platform's queue: a fan-out shard of due runs
// or a delayed wake-up of one run. It carries only ids; the claim decides
// who runs them, so duplicates and early deliveries are harmless.
type Message struct {
	Kind       string   `json:"kind"`
	Pool       string   `json:"pool"`
	FlowRunIDs []string `json:"flow_run_ids"`
	// Trigger attributes a webhook's run to its event (see dispatch.Trigger).
	Trigger *TriggerJSON `json:"trigger,omitempty"`
}

// TriggerJSON is dispatch.Trigger on the wire.
type TriggerJSON struct {
	EventID string `json:"event_id,omitempty"`
	Event   string `json:"event,omitempty"`
	Actor   string `json:"actor,omitempty"`
}

func (t *TriggerJSON) trigger() *dispatch.Trigger {
	if t == nil {
		return nil
	}
	return &dispatch.Trigger{EventID: t.EventID, Event: t.Event, Actor: t.Actor}
}

func triggerJSON(t *dispatch.Trigger) *TriggerJSON {
	if t == nil {
		return nil
	}
	return &TriggerJSON{EventID: t.EventID, Event: t.Event, Actor: t.Actor}
}

// Encode returns the message body.
func (m Message) Encode() []byte {
	m.Kind = MessageKind
	b, _ := json.Marshal(m) // strings only: cannot fail
	return b
}

// ErrNotMessage is returned by DecodeMessage for a body that is not a
// pushpool message at all (another kind of payload on a shared queue).
var ErrNotMessage = errors.New("not a pushpool message")

// DecodeMessage decodes a queue message body. A body that is not a pushpool
// message wraps ErrNotMessage; a pushpool message that is malformed is an
// error naming what is wrong.
func DecodeMessage(body []byte) (Message, error) {
	var m Message
	if err := json.Unmarshal(body, &m); err != nil || m.Kind == "" {
		return Message{}, fmt.Errorf("%w: %.80q", ErrNotMessage, body)
	}
	switch {
	case m.Kind != MessageKind:
		return Message{}, fmt.Errorf("queue message of kind %q: this dispatcher understands %q; deploy the same pushpool version to every function reading the queue", m.Kind, MessageKind)
	case m.Pool == "":
		return Message{}, errors.New("queue message names no work pool")
	case len(m.FlowRunIDs) == 0:
		return Message{}, fmt.Errorf("queue message for pool %q names no flow run", m.Pool)
	}
	for _, id := range m.FlowRunIDs {
		if strings.TrimSpace(id) == "" {
			return Message{}, fmt.Errorf("queue message for pool %q has an empty flow run id", m.Pool)
		}
	}
	return m, nil
}
