package dispatch

import (
	"bytes"
	"context"
	"errors"
	"log/slog"
	"strings"
	"testing"
	"time"
)

func TestQuietOnShutdown(t *testing.T) {
	live := context.Background()
	ended, cancel := context.WithCancel(context.Background())
	cancel()
	tests := []struct {
		name  string
		ctx   context.Context
		level slog.Level
		want  string // the level logged; empty: not logged at Info
	}{
		{"a warning of a live pass", live, slog.LevelWarn, "WARN"},
		{"an error of a live pass", live, slog.LevelError, "ERROR"},
		{"a warning cut off by a shutdown", ended, slog.LevelWarn, ""},
		{"an error cut off by a shutdown", ended, slog.LevelError, ""},
		{"information after a shutdown", ended, slog.LevelInfo, "INFO"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var buf bytes.Buffer
			log := quietOnShutdown(slog.New(slog.NewTextHandler(&buf, &slog.HandlerOptions{Level: slog.LevelInfo}))).With("k", "v")
			log.Log(tt.ctx, tt.level, "message")
			got := ""
			if _, rest, ok := strings.Cut(buf.String(), "level="); ok {
				got, _, _ = strings.Cut(rest, " ")
			}
			if got != tt.want {
				t.Errorf("logged at %q (%q), want %q", got, buf.String(), tt.want)
			}
		})
	}
}

func TestReconciler_throttleBackoff(t *testing.T) {
	const base, ceiling = time.Second, 5 * time.Second
	r := &Reconciler{cfg: ReconcileConfig{ThrottleBackoff: base, MaxThrottleBackoff: ceiling}, d: &Dispatcher{log: slog.New(slog.DiscardHandler)}}
	throttled := errors.New("ThrottlingException")
	for i, want := range []time.Duration{base, 2 * base, 4 * base, ceiling, ceiling} {
		book := &statusBook{}
		r.throttled(context.Background(), "pool", book, throttled)
		r.throttled(context.Background(), "pool", book, throttled) // once per pass
		if got := r.throttleWait(); got > want || got < want-100*time.Millisecond {
			t.Errorf("throttled pass %d: backoff %s, want %s", i+1, got, want)
		}
		if !book.halted.Load() {
			t.Errorf("throttled pass %d: status reads not halted", i+1)
		}
	}
	r.settleThrottle(&statusBook{})
	if got := r.throttleWait(); got != 0 {
		t.Errorf("after a pass that was not throttled the backoff is %s, want none", got)
	}
}
