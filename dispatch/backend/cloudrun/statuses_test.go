package cloudrun

import (
	"errors"
	"fmt"
	"testing"

	"github.com/pushpool/pushpool/dispatch"
	"github.com/pushpool/pushpool/dispatch/backend/cloudrun/cloudrunfake"
	"github.com/pushpool/pushpool/dispatch/dispatchtest"
)

// TestBackend_Statuses reads running, failed and forgotten executions and
// ids that are not execution names with one ListExecutions: each listed
// execution as Status reports it, the rest left out for Status. A caller
// that may not list gets nothing (and Status reads each); a throttled
// listing is retryable.
func TestBackend_Statuses(t *testing.T) {
	t.Parallel()
	b, f := newTestBackend(t)
	running := mustStart(t, b, testJob(t, dispatchtest.NewFlowRunID(), nil))
	failed := mustStart(t, b, testJob(t, dispatchtest.NewFlowRunID(), nil))
	forgotten := mustStart(t, b, testJob(t, dispatchtest.NewFlowRunID(), nil))
	if err := f.CompleteExecution(failed, false, ""); err != nil {
		t.Fatal(err)
	}
	f.ForgetExecution(forgotten)
	ids := []string{running, failed, forgotten, "a-bare-job-name"}
	lists, gets := f.Calls("ListExecutions"), f.Calls("GetExecution")
	got, err := b.Statuses(ctxFor(t), ids)
	if err != nil {
		t.Fatal(err)
	}
	if n, m := f.Calls("ListExecutions")-lists, f.Calls("GetExecution")-gets; n != 1 || m != 0 {
		t.Errorf("Statuses made %d ListExecutions and %d GetExecution calls; want one listing", n, m)
	}
	if len(got) != 2 {
		t.Errorf("Statuses = %+v; want the running and the failed execution only", got)
	}
	for _, id := range []string{running, failed} {
		if want := mustStatus(t, b, id); fmt.Sprint(got[id]) != fmt.Sprint(want) {
			t.Errorf("Statuses[%s] = %+v, Status = %+v", id, got[id], want)
		}
	}
	if got[running].State != dispatch.StateRunning || got[failed].State != dispatch.StateExited {
		t.Errorf("Statuses = %+v", got)
	}

	f.Inject("ListExecutions", cloudrunfake.PermissionDenied("run.executions.list", "executions"), 1)
	if got, err := b.Statuses(ctxFor(t), ids); err != nil || len(got) != 0 {
		t.Errorf("Statuses without run.executions.list = %+v, %v; want nothing and no error", got, err)
	}
	f.Inject("ListExecutions", cloudrunfake.Throttled("ListExecutions"), 1)
	if _, err := b.Statuses(ctxFor(t), ids); !errors.Is(err, dispatch.ErrRetryable) {
		t.Errorf("Statuses throttled: %v, want a retryable error", err)
	}
}
