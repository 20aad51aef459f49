package provider

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/pushpool/pushpool/dispatch/prefect"
)

// TestReadBatch_sharesOneRead asks for objects from many goroutines at once:
// they share batched reads, a key the read does not return is not found,
// and a failed read fails every caller of its batch.
func TestReadBatch_sharesOneRead(t *testing.T) {
	t.Parallel()
	var reads atomic.Int32
	fail := atomic.Bool{}
	b := &readBatch[prefect.Flow]{
		what: "/flows/filter",
		read: func(_ context.Context, keys []string) ([]prefect.Flow, error) {
			reads.Add(1)
			if fail.Load() {
				return nil, errors.New("server down")
			}
			var out []prefect.Flow
			for _, k := range keys {
				if k != "missing" {
					out = append(out, prefect.Flow{ID: k, Name: "flow " + k})
				}
			}
			return out, nil
		},
		keyOf: func(f prefect.Flow) string { return f.ID },
	}
	ctx := context.Background()
	var wg sync.WaitGroup
	errs := make(chan error, 20)
	for i := 0; i < 20; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			key := fmt.Sprint(i % 10) // each key asked for twice
			f, err := b.get(ctx, key)
			if err != nil || f.Name != "flow "+key {
				errs <- fmt.Errorf("get(%s) = %+v, %v", key, f, err)
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	if n := reads.Load(); n > 3 {
		t.Errorf("20 concurrent gets made %d reads; want them to share a few", n)
	}
	if _, err := b.get(ctx, "missing"); !prefect.IsNotFound(err) {
		t.Errorf("get(missing) = %v, want not found", err)
	}
	fail.Store(true)
	if _, err := b.get(ctx, "1"); err == nil || prefect.IsNotFound(err) {
		t.Errorf("get during a failed read = %v, want the read's error", err)
	}
}
