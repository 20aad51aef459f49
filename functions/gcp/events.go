package main

import (
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"mime"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/pushpool/pushpool/dispatch/invoke"
)

// source is what delivered a request on the events route.
type source string

const (
	// fromPubSub is a push subscription's JSON envelope.
	fromPubSub source = "pubsub-push"
	// fromEventarc is a CloudEvent of an Eventarc Pub/Sub trigger, in
	// binary or structured content mode.
	fromEventarc source = "eventarc"
	// fromTasks is a Cloud Tasks HTTP target request.
	fromTasks source = "cloud-tasks"
	// fromHTTP is a bare body: a Cloud Scheduler HTTP target, or a push
	// subscription without the envelope.
	fromHTTP source = "http"
)

// messagePublished is the CloudEvent type of a Pub/Sub message, the only
// one pushpool takes from Eventarc.
const messagePublished = "google.cloud.pubsub.topic.v1.messagePublished"

// delivery is a decoded request: the payload the platform carried and what
// is known about its delivery.
type delivery struct {
	Source source
	// ID is the Pub/Sub message id, the CloudEvent id or the task name.
	ID string
	// Published is when the message was published; zero when unknown.
	Published time.Time
	// Attempt counts deliveries, from 1; zero when unknown (Pub/Sub tells
	// only with a dead-letter policy).
	Attempt int
	Data    []byte
}

// pushEnvelope is the body of a Pub/Sub push request, and the data of a
// messagePublished CloudEvent (google.events.cloud.pubsub.v1.
// MessagePublishedData): the same JSON.
type pushEnvelope struct {
	Message *struct {
		Data        []byte            `json:"data"` // base64 in JSON
		Attributes  map[string]string `json:"attributes"`
		MessageID   string            `json:"messageId"`
		PublishTime time.Time         `json:"publishTime"`
	} `json:"message"`
	Subscription    string `json:"subscription"`
	DeliveryAttempt int    `json:"deliveryAttempt"`
}

// structuredEvent is a CloudEvent in structured content mode
// (application/cloudevents+json).
type structuredEvent struct {
	SpecVersion string          `json:"specversion"`
	Type        string          `json:"type"`
	Source      string          `json:"source"`
	ID          string          `json:"id"`
	Time        time.Time       `json:"time"`
	Data        json.RawMessage `json:"data"`
	DataBase64  string          `json:"data_base64"`
}

// decodeDelivery tells the platforms' requests apart by their headers and
// shape and returns the payload each carries.
func decodeDelivery(h http.Header, body []byte) (delivery, error) {
	switch {
	case h.Get("X-CloudTasks-TaskName") != "":
		d := delivery{Source: fromTasks, ID: h.Get("X-CloudTasks-QueueName") + "/" + h.Get("X-CloudTasks-TaskName"), Data: body}
		if n, err := strconv.Atoi(h.Get("X-CloudTasks-TaskRetryCount")); err == nil {
			d.Attempt = n + 1
		}
		return d, nil
	case h.Get("Ce-Type") != "":
		// Binary content mode: attributes in ce- headers, data in the body.
		t := h.Get("Ce-Type")
		if t != messagePublished {
			return delivery{}, unsupportedEvent(t, h.Get("Ce-Source"))
		}
		d, err := fromEnvelope(fromEventarc, body)
		if err != nil {
			return delivery{}, fmt.Errorf("CloudEvent %s from %s: %w", h.Get("Ce-Id"), h.Get("Ce-Source"), err)
		}
		if d.Published.IsZero() {
			d.Published, _ = time.Parse(time.RFC3339Nano, h.Get("Ce-Time"))
		}
		d.ID = h.Get("Ce-Id")
		return d, nil
	case isStructuredCloudEvent(h.Get("Content-Type")):
		var ev structuredEvent
		if err := json.Unmarshal(body, &ev); err != nil {
			return delivery{}, fmt.Errorf("structured CloudEvent is not valid JSON: %w", err)
		}
		if ev.Type != messagePublished {
			return delivery{}, unsupportedEvent(ev.Type, ev.Source)
		}
		data := []byte(ev.Data)
		if ev.DataBase64 != "" {
			b, err := base64.StdEncoding.DecodeString(ev.DataBase64)
			if err != nil {
				return delivery{}, fmt.Errorf("CloudEvent %s: data_base64 is not base64: %w", ev.ID, err)
			}
			data = b
		}
		d, err := fromEnvelope(fromEventarc, data)
		if err != nil {
			return delivery{}, fmt.Errorf("CloudEvent %s from %s: %w", ev.ID, ev.Source, err)
		}
		if d.Published.IsZero() {
			d.Published = ev.Time
		}
		d.ID = ev.ID
		return d, nil
	}
	var probe struct {
		Message json.RawMessage `json:"message"`
	}
	if json.Unmarshal(body, &probe) == nil && len(probe.Message) > 0 && probe.Message[0] == '{' {
		return fromEnvelope(fromPubSub, body)
	}
	return delivery{Source: fromHTTP, Data: body}, nil
}

func fromEnvelope(src source, body []byte) (delivery, error) {
	var env pushEnvelope
	if err := json.Unmarshal(body, &env); err != nil {
		return delivery{}, fmt.Errorf("the Pub/Sub message envelope is not valid: %w", err)
	}
	if env.Message == nil {
		return delivery{}, errors.New(`the Pub/Sub message envelope has no "message"`)
	}
	return delivery{Source: src, ID: env.Message.MessageID, Published: env.Message.PublishTime, Attempt: env.DeliveryAttempt, Data: env.Message.Data}, nil
}

func isStructuredCloudEvent(contentType string) bool {
	mt, _, err := mime.ParseMediaType(contentType)
	return err == nil && mt == "application/cloudevents+json"
}

func unsupportedEvent(typ, src string) error {
	return fmt.Errorf("CloudEvent of type %q from %q: pushpool takes only %s events; route the Eventarc trigger of the pushpool topic here, and no other", typ, src, messagePublished)
}

// payloadKind is what a delivered payload asks for.
type payloadKind int

const (
	// kindForeign is a payload that is not pushpool's.
	kindForeign payloadKind = iota
	// kindTick is the scheduler's {"pushpool":"tick"}.
	kindTick
	// kindMessage is a fan-out shard or a wake-up (invoke.Message).
	kindMessage
)

// classify reads a payload. A pushpool message that is malformed is an
// error; a payload that is not pushpool's at all is kindForeign.
func classify(data []byte) (payloadKind, invoke.Message, error) {
	var tick struct {
		Pushpool string `json:"pushpool"`
	}
	if json.Unmarshal(data, &tick) == nil && strings.EqualFold(tick.Pushpool, "tick") {
		return kindTick, invoke.Message{}, nil
	}
	m, err := invoke.DecodeMessage(data)
	switch {
	case errors.Is(err, invoke.ErrNotMessage):
		return kindForeign, invoke.Message{}, nil
	case err != nil:
		return kindMessage, invoke.Message{}, err
	}
	return kindMessage, m, nil
}
