package dispatch

import (
	"context"
	"testing"
	"time"
)

// TestPassGate: the reconcile loop waits for the dispatch pass in
// progress, and for the first one before it has even begun, but never
// longer than its limit, nor past its context.
func TestPassGate(t *testing.T) {
	t.Parallel()
	const long = time.Minute
	waited := func(g *passGate, ctx context.Context, limit time.Duration) <-chan struct{} {
		done := make(chan struct{})
		go func() { g.wait(ctx, limit); close(done) }()
		return done
	}
	blocked := func(t *testing.T, done <-chan struct{}, what string) {
		t.Helper()
		select {
		case <-done:
			t.Fatalf("wait returned %s", what)
		case <-time.After(50 * time.Millisecond):
		}
	}
	returned := func(t *testing.T, done <-chan struct{}, what string) {
		t.Helper()
		select {
		case <-done:
		case <-time.After(10 * time.Second):
			t.Fatalf("wait did not return %s", what)
		}
	}

	g := newPassGate()
	done := waited(g, t.Context(), long)
	blocked(t, done, "before the first dispatch pass")
	g.begin()
	blocked(t, done, "while the first dispatch pass runs")
	g.end()
	returned(t, done, "after the first dispatch pass")
	returned(t, waited(g, t.Context(), long), "between dispatch passes")

	g.begin()
	g.begin() // idempotent
	done = waited(g, t.Context(), long)
	blocked(t, done, "while a dispatch pass runs")
	g.end()
	g.end() // idempotent
	returned(t, done, "after the pass")

	g.begin()
	returned(t, waited(g, t.Context(), 20*time.Millisecond), "after its limit, though the pass still runs")
	ctx, cancel := context.WithCancel(t.Context())
	done = waited(g, ctx, long)
	cancel()
	returned(t, done, "when its context ended")
}
