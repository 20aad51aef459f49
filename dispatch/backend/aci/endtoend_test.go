package aci

import (
	"regexp"
	"strings"
	"testing"

	"github.com/pushpool/pushpool/dispatch"
	"github.com/pushpool/pushpool/dispatch/dispatchtest"
	"github.com/pushpool/pushpool/dispatch/prefect"
)

// TestEndToEnd dispatches a run of a pool made from the default template
// through a real Prefect server onto acifake, then makes its container exit
// with code 2 and checks that a reconcile pass crashes the run naming it.
func TestEndToEnd(t *testing.T) {
	b, az := newTestBackend(t)
	api, err := prefect.New(prefect.Config{URL: srv.URL})
	if err != nil {
		t.Fatal(err)
	}
	res := dispatchtest.RunEndToEnd(t, dispatchtest.EndToEnd{
		API: api, PoolType: PoolType, BaseJobTemplate: DefaultBaseJobTemplate(),
		JobVariables: map[string]any{"subscription_id": testSubscription, "resource_group_name": testResourceGroup, "image": testImage},
		Backend:      b,
		Count:        func(t *testing.T, flowRunID string) int { return countFlowRun(az, flowRunID) },
		PIDPattern:   regexp.MustCompile(`^[0-9a-f-]{36}:([a-z0-9-]{1,17}-)?[0-9a-f-]{36}-[0-9a-f]{8}$`),
	})
	if t.Failed() {
		return
	}
	ref := mustRef(t, res.InfrastructureID)
	g, ok := az.Group(ref.Subscription, ref.ResourceGroup, ref.Name)
	if !ok {
		t.Fatalf("no container group %s", ref)
	}
	if got := *g.Properties.Containers[0].Properties.Image; got != testImage {
		t.Errorf("container image = %q, want %q", got, testImage)
	}
	if err := az.Terminate(ref.Subscription, ref.ResourceGroup, ref.Name, 2, "Error"); err != nil {
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
		t.Fatalf("flow run %s is in %+v after its container exited with code 2, want CRASHED", res.FlowRunID, run.State)
	}
	if msg := run.State.Message; msg == nil || !strings.Contains(*msg, "status code 2") {
		t.Errorf("the Crashed message %v does not name exit code 2", msg)
	}
}
