package aci

import (
	"strings"
	"testing"
	"time"

	"github.com/Azure/azure-sdk-for-go/sdk/azcore/to"
	"github.com/Azure/azure-sdk-for-go/sdk/resourcemanager/containerinstance/armcontainerinstance/v2"

	"github.com/pushpool/pushpool/dispatch"
	"github.com/pushpool/pushpool/dispatch/backend/aci/acifake"
	"github.com/pushpool/pushpool/dispatch/dispatchtest"
)

// TestBackend_Sweep: pushpool's groups whose container exited, or whose
// provisioning failed, more than SweepAfter ago are deleted, in the default
// resource group and in the others Starts used; running, young,
// keep_container_group and foreign groups are kept.
func TestBackend_Sweep(t *testing.T) {
	t0 := time.Date(2026, 3, 4, 5, 0, 0, 0, time.UTC)
	clock := t0
	az := acifake.New()
	b := newBackendOn(t, az, func(c *Config) {
		c.Now = func() time.Time { return clock }
		c.SweepAfter = 10 * time.Minute
	})
	const elsewhere = "elsewhere"
	type group struct{ rg, name string }
	start := func(vars map[string]any) group {
		t.Helper()
		job := testJob(t, dispatchtest.NewFlowRunID(), vars)
		if _, err := b.Start(t.Context(), job); err != nil {
			t.Fatal(err)
		}
		rg := testResourceGroup
		if r, ok := vars["resource_group_name"].(string); ok {
			rg = r
		}
		return group{rg, groupOf(job)}
	}
	exit := func(g group, finished time.Time) {
		t.Helper()
		if err := az.Terminate(testSubscription, g.rg, g.name, 1, "Error"); err != nil {
			t.Fatal(err)
		}
		if err := az.Update(testSubscription, g.rg, g.name, func(cg *armcontainerinstance.ContainerGroup) {
			cg.Properties.Containers[0].Properties.InstanceView.CurrentState.FinishTime = to.Ptr(finished)
		}); err != nil {
			t.Fatal(err)
		}
	}
	failProvisioning := func(g group) {
		t.Helper()
		if err := az.Update(testSubscription, g.rg, g.name, func(cg *armcontainerinstance.ContainerGroup) {
			cg.Properties.ProvisioningState = to.Ptr("Failed")
			cg.Properties.Containers[0].Properties.InstanceView.CurrentState = &armcontainerinstance.ContainerState{
				State: to.Ptr("Waiting"), DetailStatus: to.Ptr("ErrImagePull")}
		}); err != nil {
			t.Fatal(err)
		}
	}

	old := start(nil)
	exit(old, t0.Add(time.Minute))
	young := start(nil)
	exit(young, t0.Add(55*time.Minute))
	running := start(nil)
	keep := start(map[string]any{"keep_container_group": true})
	exit(keep, t0.Add(time.Minute))
	failed := start(nil)
	failProvisioning(failed)
	other := start(map[string]any{"resource_group_name": elsewhere})
	exit(other, t0.Add(time.Minute))
	foreign := group{testResourceGroup, "user-made"}
	createRaw(t, az, foreign.rg, foreign.name, map[string]string{"owner": "someone"})
	exit(foreign, t0.Add(time.Minute))
	clock = t0.Add(55 * time.Minute)
	failedYoung := start(nil)
	failProvisioning(failedYoung)

	clock = t0.Add(time.Hour)
	gets := len(az.Requests(acifake.OpGet))
	removed, err := b.Sweep(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	if removed != 3 {
		t.Errorf("Sweep removed %d groups, want 3", removed)
	}
	for _, c := range []struct {
		what string
		g    group
		gone bool
	}{
		{"exited 59 minutes ago", old, true},
		{"failed provisioning 60 minutes ago", failed, true},
		{"exited 59 minutes ago in another resource group", other, true},
		{"exited 5 minutes ago", young, false},
		{"running", running, false},
		{"keep_container_group", keep, false},
		{"not pushpool's", foreign, false},
		{"failed provisioning 5 minutes ago", failedYoung, false},
	} {
		if _, ok := az.Group(testSubscription, c.g.rg, c.g.name); ok == c.gone {
			t.Errorf("the group that %s: exists %v after the sweep, want %v", c.what, ok, !c.gone)
		}
	}
	for _, r := range az.Requests(acifake.OpGet)[gets:] {
		if strings.HasSuffix(r.Path, "/"+failedYoung.name) || strings.HasSuffix(r.Path, "/"+keep.name) || strings.HasSuffix(r.Path, "/"+foreign.name) {
			t.Errorf("Sweep read %s, which the list already ruled out", r.Path)
		}
	}
	if removed, err := b.Sweep(t.Context()); err != nil || removed != 0 {
		t.Errorf("a second Sweep = %d, %v; want 0, nil", removed, err)
	}
}

// TestBackend_Sweep_errors: a resource group that cannot be listed is
// reported, naming it and the permission, and does not stop the others.
func TestBackend_Sweep_errors(t *testing.T) {
	clock := time.Now()
	az := acifake.New()
	b := newBackendOn(t, az, func(c *Config) { c.Now = func() time.Time { return clock } })
	job := testJob(t, dispatchtest.NewFlowRunID(), map[string]any{"resource_group_name": "elsewhere"})
	id, err := b.Start(t.Context(), job)
	if err != nil {
		t.Fatal(err)
	}
	ref := mustRef(t, id)
	if err := az.Terminate(ref.Subscription, ref.ResourceGroup, ref.Name, 0, "Completed"); err != nil {
		t.Fatal(err)
	}
	clock = clock.Add(time.Hour)
	az.Inject(acifake.OpListByResourceGroup, acifake.AuthorizationFailed, 1) // the default resource group, listed first
	removed, err := b.Sweep(t.Context())
	if err == nil || !strings.Contains(err.Error(), testResourceGroup) || !strings.Contains(err.Error(), "containerGroups/read") {
		t.Errorf("Sweep error = %v; want one naming resource group %s and the permission", err, testResourceGroup)
	}
	if removed != 1 {
		t.Errorf("Sweep removed %d groups, want 1 (the other resource group's)", removed)
	}
	if st, err := b.Status(t.Context(), id); err != nil || st.State != dispatch.StateNotFound {
		t.Errorf("Status after the sweep = %+v, %v; want NOT_FOUND", st, err)
	}
}

// TestBackend_Sweep_nowhere: a backend without a default resource group
// that started nothing has nothing to sweep.
func TestBackend_Sweep_nowhere(t *testing.T) {
	az := acifake.New()
	b := newBackendOn(t, az, func(c *Config) { c.SubscriptionID, c.ResourceGroup = "", "" })
	if removed, err := b.Sweep(t.Context()); err != nil || removed != 0 {
		t.Errorf("Sweep = %d, %v; want 0, nil", removed, err)
	}
	if n := len(az.Requests("")); n != 0 {
		t.Errorf("%d requests to Azure", n)
	}
}
