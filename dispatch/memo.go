package dispatch

import (
	"context"
	"sync"
	"time"

	"github.com/pushpool/pushpool/dispatch/prefect"
)

// memo remembers the results of reads by key, so that the runs of a pass
// (and of the passes within ttl) that need the same deployment, flow, block
// or variable share one request. Concurrent callers of one key wait for a
// single read instead of each sending one, and no lock is held while a read
// is on the network: only the key's entry is waited on. Failed reads are
// not remembered (the next caller reads again), except "not found", which is
// an answer.
type memo[V any] struct {
	// ttl is how long a result is reused after its read finished; zero
	// means results are shared by concurrent callers only.
	ttl time.Duration
	now func() time.Time

	mu      sync.Mutex
	entries map[string]*memoEntry[V]
}

type memoEntry[V any] struct {
	done chan struct{} // closed when the read finished
	val  V
	err  error
	at   time.Time
}

func newMemo[V any](ttl time.Duration, now func() time.Time) *memo[V] {
	return &memo[V]{ttl: ttl, now: now, entries: map[string]*memoEntry[V]{}}
}

// get returns the remembered result for key, or waits for a read under way,
// or reads with read. A caller waiting for another caller's read gives up
// when its own ctx ends.
func (m *memo[V]) get(ctx context.Context, key string, read func(context.Context) (V, error)) (V, error) {
	m.mu.Lock()
	if e, ok := m.entries[key]; ok {
		select {
		case <-e.done:
			if m.now().Sub(e.at) < m.ttl {
				m.mu.Unlock()
				return e.val, e.err
			}
		default:
			m.mu.Unlock()
			select {
			case <-e.done:
				return e.val, e.err
			case <-ctx.Done():
				var zero V
				return zero, context.Cause(ctx)
			}
		}
	}
	e := &memoEntry[V]{done: make(chan struct{})}
	m.entries[key] = e
	m.mu.Unlock()

	e.val, e.err = read(ctx)
	e.at = m.now()
	close(e.done)
	if (e.err != nil && !prefect.IsNotFound(e.err)) || m.ttl <= 0 {
		m.mu.Lock()
		if m.entries[key] == e {
			delete(m.entries, key)
		}
		m.mu.Unlock()
	}
	return e.val, e.err
}

// sweep forgets results older than ttl, so a long-running dispatcher does
// not keep every deployment it ever saw.
func (m *memo[V]) sweep() {
	m.mu.Lock()
	defer m.mu.Unlock()
	for k, e := range m.entries {
		select {
		case <-e.done:
			if m.now().Sub(e.at) >= m.ttl {
				delete(m.entries, k)
			}
		default:
		}
	}
}
