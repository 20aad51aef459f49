package main

import (
	"net/http"
	"strings"
	"testing"
	"time"
)

// TestDecodeDelivery_samples decodes the platform requests kept in
// testdata: each is told apart by its headers and shape, and yields the
// payload, its id and its publish time.
func TestDecodeDelivery_samples(t *testing.T) {
	t.Parallel()
	published := time.Date(2025, 6, 2, 9, 14, 0, 561e6, time.UTC)
	for _, tc := range []struct {
		sample    string
		source    source
		id        string
		published time.Time
		attempt   int
		kind      payloadKind
		pool      string
		runs      int
	}{
		{"pubsub-push-scheduler-tick.json", fromPubSub, "13372949580937163", published, 0, kindTick, "", 0},
		{"pubsub-push-shard.json", fromPubSub, "13372951125588746", time.Date(2025, 6, 2, 9, 14, 1, 207e6, time.UTC), 1, kindMessage, "cloud-run-push", 2},
		{"eventarc-binary-scheduler-tick.json", fromEventarc, "13372949580937163", published, 0, kindTick, "", 0},
		{"eventarc-structured-scheduler-tick.json", fromEventarc, "13372949580937163", published, 0, kindTick, "", 0},
		{"cloudtasks-wake-up.json", fromTasks, "pushpool-wake/2ca19c91-01972b5e-0c3a-71f2-9d4e-3c8a2f1b6e01-1748855700", time.Time{}, 1, kindMessage, "cloud-run-push", 1},
		{"cloud-scheduler-http-tick.json", fromHTTP, "", time.Time{}, 0, kindTick, "", 0},
	} {
		t.Run(tc.sample, func(t *testing.T) {
			t.Parallel()
			sr := loadSample(t, tc.sample)
			d, err := decodeDelivery(sr.header(), sr.body())
			if err != nil {
				t.Fatal(err)
			}
			if d.Source != tc.source || d.ID != tc.id || !d.Published.Equal(tc.published) || d.Attempt != tc.attempt {
				t.Errorf("delivery = %s %q published %s attempt %d; want %s %q published %s attempt %d",
					d.Source, d.ID, d.Published, d.Attempt, tc.source, tc.id, tc.published, tc.attempt)
			}
			kind, m, err := classify(d.Data)
			if err != nil || kind != tc.kind || m.Pool != tc.pool || len(m.FlowRunIDs) != tc.runs {
				t.Errorf("payload %q = kind %d, %+v, %v; want kind %d for pool %q with %d run(s)", d.Data, kind, m, err, tc.kind, tc.pool, tc.runs)
			}
		})
	}
}

// TestDecodeDelivery_errors: requests that are no delivery pushpool takes
// are errors that say what is accepted.
func TestDecodeDelivery_errors(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name   string
		header http.Header
		body   string
		want   string
	}{
		{"binary event of another type", http.Header{"Ce-Type": {"google.cloud.storage.object.v1.finalized"}, "Ce-Source": {"//storage.googleapis.com/projects/_/buckets/b"}}, `{}`, messagePublished},
		{"structured event of another type", http.Header{"Content-Type": {"application/cloudevents+json"}}, `{"specversion":"1.0","type":"google.cloud.audit.log.v1.written","data":{}}`, messagePublished},
		{"structured event not JSON", http.Header{"Content-Type": {"application/cloudevents+json"}}, `nope`, "not valid JSON"},
		{"binary event without a message", http.Header{"Ce-Type": {messagePublished}, "Ce-Id": {"1"}}, `{"subscription":"s"}`, `no "message"`},
		{"envelope data not base64", nil, `{"message":{"data":"%%%"}}`, "envelope is not valid"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			_, err := decodeDelivery(tc.header, []byte(tc.body))
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("error %v; want one naming %q", err, tc.want)
			}
		})
	}
}

// TestClassify: ticks, pushpool messages, malformed pushpool messages and
// foreign payloads.
func TestClassify(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		data    string
		kind    payloadKind
		wantErr bool
	}{
		{`{"pushpool":"tick"}`, kindTick, false},
		{`{"kind":"pushpool.wake/v1","pool":"p","flow_run_ids":["a"]}`, kindMessage, false},
		{`{"kind":"pushpool.wake/v1","pool":"p","flow_run_ids":[]}`, kindMessage, true},
		{`{"kind":"pushpool.wake/v9","pool":"p","flow_run_ids":["a"]}`, kindMessage, true},
		{`{"hello":"world"}`, kindForeign, false},
		{`not json`, kindForeign, false},
		{``, kindForeign, false},
	} {
		kind, _, err := classify([]byte(tc.data))
		if kind != tc.kind || (err != nil) != tc.wantErr {
			t.Errorf("classify(%s) = %d, %v; want %d, error %v", tc.data, kind, err, tc.kind, tc.wantErr)
		}
	}
}
