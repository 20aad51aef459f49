package dispatch

import (
	"context"
	"errors"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/pushpool/pushpool/dispatch/prefect"
)

func TestMemo(t *testing.T) {
	notFound := &prefect.APIError{StatusCode: 404}
	tests := []struct {
		name      string
		ttl       time.Duration
		err       error
		advance   time.Duration
		wantReads int64
	}{
		{name: "answer reused within ttl", ttl: time.Minute, advance: 30 * time.Second, wantReads: 1},
		{name: "answer read again after ttl", ttl: time.Minute, advance: time.Minute, wantReads: 2},
		{name: "zero ttl reads every time", ttl: 0, wantReads: 2},
		{name: "failure read again", ttl: time.Minute, err: errors.New("503"), wantReads: 2},
		{name: "not found is an answer", ttl: time.Minute, err: notFound, wantReads: 1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			now := time.Unix(0, 0)
			m := newMemo[int](tt.ttl, func() time.Time { return now })
			var reads atomic.Int64
			read := func(context.Context) (int, error) { reads.Add(1); return 7, tt.err }
			for range 2 {
				v, err := m.get(t.Context(), "k", read)
				if !errors.Is(err, tt.err) || (err == nil && v != 7) {
					t.Fatalf("get = %d, %v; want 7, %v", v, err, tt.err)
				}
				now = now.Add(tt.advance)
			}
			if got := reads.Load(); got != tt.wantReads {
				t.Errorf("reads = %d, want %d", got, tt.wantReads)
			}
		})
	}
}

// TestMemo_concurrentCallersShareOneRead: callers of one key while its
// read is on the network wait for that read; other keys are not held up.
func TestMemo_concurrentCallersShareOneRead(t *testing.T) {
	// A long TTL: a caller the scheduler starts only after the read is done
	// (a loaded machine) takes the kept value instead of reading again.
	m := newMemo[string](time.Hour, time.Now)
	release := make(chan struct{})
	var reads atomic.Int64
	slow := func(context.Context) (string, error) { reads.Add(1); <-release; return "slow", nil }
	var wg sync.WaitGroup
	for range 8 {
		wg.Go(func() {
			if v, err := m.get(t.Context(), "slow", slow); err != nil || v != "slow" {
				t.Errorf("get = %q, %v", v, err)
			}
		})
	}
	// Another key answers while "slow" is still being read.
	for reads.Load() == 0 {
		time.Sleep(time.Millisecond)
	}
	if v, err := m.get(t.Context(), "fast", func(context.Context) (string, error) { return "fast", nil }); err != nil || v != "fast" {
		t.Fatalf("get(fast) = %q, %v", v, err)
	}
	close(release)
	wg.Wait()
	if n := reads.Load(); n != 1 {
		t.Errorf("%d reads of one key by 8 concurrent callers, want 1", n)
	}
}

// TestMemo_waiterGivesUpWithItsContext: a caller waiting for another's
// read returns when its own context ends.
func TestMemo_waiterGivesUpWithItsContext(t *testing.T) {
	m := newMemo[int](time.Minute, time.Now)
	release := make(chan struct{})
	started := make(chan struct{})
	go m.get(context.Background(), "k", func(context.Context) (int, error) { close(started); <-release; return 1, nil })
	<-started
	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	if _, err := m.get(ctx, "k", nil); !errors.Is(err, context.Canceled) {
		t.Errorf("waiter err = %v, want context.Canceled", err)
	}
	close(release)
}
