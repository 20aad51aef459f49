package ecs

import (
	"regexp"
	"strings"
	"testing"

	"github.com/pushpool/pushpool/dispatch"
	"github.com/pushpool/pushpool/dispatch/dispatchtest"
	"github.com/pushpool/pushpool/dispatch/prefect"
	"github.com/pushpool/pushpool/internal/localstack"
)

// TestEndToEnd dispatches a run of a pool made from the default template
// through a real Prefect server onto moto, then makes its task stop with
// exit code 1 and checks that a reconcile pass crashes the run naming it.
func TestEndToEnd(t *testing.T) {
	cluster := createCluster(t)
	api, err := prefect.New(prefect.Config{URL: srv.URL})
	if err != nil {
		t.Fatal(err)
	}
	h := motoHarness(t, newTestBackend(t), cluster)
	res := dispatchtest.RunEndToEnd(t, dispatchtest.EndToEnd{
		API: api, PoolType: PoolType, BaseJobTemplate: DefaultBaseJobTemplate(),
		JobVariables: map[string]any{"cluster": cluster},
		Backend:      h.Backend, Count: h.Count,
		PIDPattern: regexp.MustCompile(`^` + cluster + `::arn:aws:ecs:us-east-1:123456789012:task/([a-z0-9-]+/)?[0-9a-f-]+$`),
	})
	if t.Failed() {
		return
	}
	code := 1
	if err := moto.SetTaskStopped(t.Context(), taskARN(t, res.InfrastructureID), localstack.MotoTaskStop{ExitCode: &code}); err != nil {
		t.Fatal(err)
	}
	rec, err := dispatch.NewReconciler(res.Dispatcher, dispatch.ReconcileConfig{})
	if err != nil {
		t.Fatal(err)
	}
	out, err := rec.RunOnce(t.Context(), res.Pool)
	if err != nil {
		t.Fatal(err)
	}
	if out.Count(dispatch.ActionCrashed) != 1 {
		t.Fatalf("reconcile pass over pool %s: %+v, want flow run %s crashed", res.Pool, out, res.FlowRunID)
	}
	run, err := api.ReadFlowRun(t.Context(), res.FlowRunID)
	if err != nil {
		t.Fatal(err)
	}
	if run.State == nil || run.State.Type != prefect.StateCrashed {
		t.Fatalf("flow run %s is in %+v after its task stopped with exit code 1, want CRASHED", res.FlowRunID, run.State)
	}
	msg := ""
	if run.State.Message != nil {
		msg = *run.State.Message
	}
	for _, want := range []string{"status code 1", "general error", "EssentialContainerExited"} {
		if !strings.Contains(msg, want) {
			t.Errorf("the Crashed message %q does not contain %q", msg, want)
		}
	}
}
