package process_test

import (
	"fmt"
	"testing"
)

// TestBackend_Statuses reports this host's processes as Status does and
// leaves out what Status cannot report: another host's process, a
// malformed id.
func TestBackend_Statuses(t *testing.T) {
	t.Parallel()
	b := newBackend(t, t.TempDir())
	short, err := b.Start(t.Context(), job("run-short", "true", nil))
	if err != nil {
		t.Fatal(err)
	}
	long, err := b.Start(t.Context(), job("run-long", "sleep 30", nil))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { b.StopAll(t.Context()) })
	waitExited(t, b, short)
	ids := []string{short, long, "elsewhere:1", "not an id"}
	got, err := b.Statuses(t.Context(), ids)
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 2 {
		t.Errorf("Statuses = %+v; want this host's two processes only", got)
	}
	for _, id := range []string{short, long} {
		want, err := b.Status(t.Context(), id)
		if err != nil {
			t.Fatal(err)
		}
		if fmt.Sprint(got[id]) != fmt.Sprint(want) {
			t.Errorf("Statuses[%s] = %+v, Status = %+v", id, got[id], want)
		}
	}
}
