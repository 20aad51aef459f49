package main

import (
	"context"
	"encoding/base64"
	"strings"
	"testing"
	"time"

	"github.com/Azure/azure-sdk-for-go/sdk/storage/azqueue/v2"

	"github.com/pushpool/pushpool/dispatch/invoke"
)

// fakeQueue records what storageQueue enqueues.
type fakeQueue struct {
	content         string
	visibility, ttl int32
	calls           int
}

func (q *fakeQueue) EnqueueMessage(_ context.Context, content string, o *azqueue.EnqueueMessageOptions) (azqueue.EnqueueMessagesResponse, error) {
	q.calls++
	q.content, q.visibility, q.ttl = content, *o.VisibilityTimeout, *o.TimeToLive
	return azqueue.EnqueueMessagesResponse{}, nil
}

func TestStorageQueue_Send(t *testing.T) {
	t.Parallel()
	now := time.Date(2026, 12, 2, 12, 0, 0, 0, time.UTC)
	week := int32(7 * 24 * 3600)
	for _, tc := range []struct {
		name       string
		at         time.Time
		visibility int32
		err        string
	}{
		{"at once", time.Time{}, 0, ""},
		{"in the past", now.Add(-time.Minute), 0, ""},
		{"rounded up to whole seconds", now.Add(1500 * time.Millisecond), 2, ""},
		{"five minutes", now.Add(5 * time.Minute), 300, ""},
		{"just under a week rounds to the limit", now.Add(7*24*time.Hour - 100*time.Millisecond), week, ""},
		{"a week", now.Add(7 * 24 * time.Hour), week, ""},
		{"beyond a week", now.Add(7*24*time.Hour + time.Second), 0, "at most 168h0m0s"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			fq := &fakeQueue{}
			q := &storageQueue{client: fq, name: "pushpool-wake", now: func() time.Time { return now }}
			m := invoke.Message{Pool: "p", FlowRunIDs: []string{"run-1"}}
			err := q.Send(t.Context(), m, tc.at)
			if tc.err != "" {
				if err == nil || !strings.Contains(err.Error(), tc.err) || fq.calls != 0 {
					t.Fatalf("Send = %v after %d call(s); want an error containing %q and nothing sent", err, fq.calls, tc.err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if fq.visibility != tc.visibility || fq.ttl != tc.visibility+week {
				t.Errorf("visibility %d, ttl %d; want %d and %d", fq.visibility, fq.ttl, tc.visibility, tc.visibility+week)
			}
			body, err := base64.StdEncoding.DecodeString(fq.content)
			if err != nil {
				t.Fatalf("message text %q is not base64, which the queue trigger decodes by default", fq.content)
			}
			if got, err := invoke.DecodeMessage(body); err != nil || got.FlowRunIDs[0] != "run-1" {
				t.Errorf("decoded message %+v, %v; want the one sent", got, err)
			}
		})
	}
}
