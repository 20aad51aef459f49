package aci

import (
	"errors"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/Azure/azure-sdk-for-go/sdk/azcore/runtime"
	"github.com/Azure/azure-sdk-for-go/sdk/azcore/to"
	"github.com/Azure/azure-sdk-for-go/sdk/resourcemanager/containerinstance/armcontainerinstance/v2"

	"github.com/pushpool/pushpool/dispatch"
	"github.com/pushpool/pushpool/dispatch/backend/aci/acifake"
	"github.com/pushpool/pushpool/dispatch/dispatchtest"
)

// TestStart_conditionalCreate: dispatchers in several processes that start
// one attempt at the same time, each reading that the group does not exist
// yet, create one group: every PUT is conditional (If-None-Match: *), the
// losers' are refused with 412 and return the winner's id, and no group is
// PUT twice.
func TestStart_conditionalCreate(t *testing.T) {
	az := acifake.New()
	backends := []*Backend{newBackendOn(t, az, nil), newBackendOn(t, az, nil), newBackendOn(t, az, nil)}
	run := dispatchtest.NewFlowRunID()
	job := testJob(t, run, nil)
	az.Inject(acifake.OpGet, acifake.NotFound, -1) // every read lags behind the creation
	const n = 6
	ids, errs := make([]string, n), make([]error, n)
	var wg sync.WaitGroup
	for i := range n {
		wg.Go(func() { ids[i], errs[i] = backends[i%len(backends)].Start(t.Context(), job) })
	}
	wg.Wait()
	az.ClearFaults()
	for i := range n {
		if errs[i] != nil {
			t.Fatalf("Start %d: %v", i, errs[i])
		}
		if ids[i] != ids[0] {
			t.Errorf("Start %d returned %q, Start 0 %q", i, ids[i], ids[0])
		}
	}
	if c := countFlowRun(az, run); c != 1 {
		t.Errorf("%d groups for flow run %s, want 1", c, run)
	}
	if r := az.Restarts(); r != 0 {
		t.Errorf("%d PUTs of an existing group; ACI restarts its containers", r)
	}
	puts := az.Requests(acifake.OpCreate)
	if len(puts) != n {
		t.Errorf("%d PUTs, want %d (each Start read 404)", len(puts), n)
	}
	for _, p := range puts {
		if got := p.Header.Get("If-None-Match"); got != "*" {
			t.Errorf("a PUT of %s has If-None-Match %q, want *", p.Path, got)
		}
	}

	// Reads caught up: a further Start reads the group and does not PUT.
	if id, err := backends[0].Start(t.Context(), job); err != nil || id != ids[0] {
		t.Errorf("Start after the reads caught up = %q, %v; want %q", id, err, ids[0])
	}
	if got := len(az.Requests(acifake.OpCreate)); got != n {
		t.Errorf("a Start of an existing group PUT it (%d PUTs, want %d)", got, n)
	}
}

// TestStart_conflictFindsGroup: a 409 that is not a quota (another
// operation on the group in progress) is answered by reading the group:
// when it exists, it is the attempt's.
func TestStart_conflictFindsGroup(t *testing.T) {
	b, az := newTestBackend(t)
	job := testJob(t, dispatchtest.NewFlowRunID(), nil)
	other := newBackendOn(t, az, nil)
	want, err := other.Start(t.Context(), job)
	if err != nil {
		t.Fatal(err)
	}
	az.Inject(acifake.OpGet, acifake.NotFound, 1)
	az.Inject(acifake.OpCreate, acifake.Conflict, 1)
	if id, err := b.Start(t.Context(), job); err != nil || id != want {
		t.Errorf("Start after a 409 = %q, %v; want %q", id, err, want)
	}
	if r := az.Restarts(); r != 0 {
		t.Errorf("%d PUTs of an existing group", r)
	}

	// Without a group, the 409 is an error a retry may cure.
	job = testJob(t, dispatchtest.NewFlowRunID(), nil)
	az.Inject(acifake.OpCreate, acifake.Conflict, -1)
	t.Cleanup(az.ClearFaults)
	if _, err := b.Start(t.Context(), job); err == nil || !strings.Contains(err.Error(), job.FlowRunID) || !errors.Is(err, dispatch.ErrRetryable) {
		t.Errorf("Start with a 409 and no group: %v; want a retryable error naming the flow run", err)
	}
}

// TestStart_needsAttempt: a job without an attempt is a caller's bug.
func TestStart_needsAttempt(t *testing.T) {
	b, az := newTestBackend(t)
	job := testJob(t, dispatchtest.NewFlowRunID(), nil)
	job.Attempt = dispatch.Attempt{}
	if _, err := b.Start(t.Context(), job); err == nil || !strings.Contains(err.Error(), "no attempt") {
		t.Errorf("Start without an attempt: %v; want an error", err)
	}
	if _, _, err := b.Find(t.Context(), job); err == nil {
		t.Error("Find without an attempt succeeded")
	}
	if n := len(az.Requests("")); n != 0 {
		t.Errorf("%d requests to Azure", n)
	}
}

// TestStart_tags: the group is named and tagged for its attempt, and
// Status reports the attempt from the tag, else from the name.
func TestStart_tags(t *testing.T) {
	now := time.Date(2026, 3, 4, 5, 6, 7, 0, time.UTC)
	az := acifake.New()
	b := newBackendOn(t, az, func(c *Config) { c.Now = func() time.Time { return now } })
	run := dispatchtest.NewFlowRunID()
	job := testJob(t, run, map[string]any{"env": map[string]any{}})
	id, err := b.Start(t.Context(), job)
	if err != nil {
		t.Fatal(err)
	}
	name := groupOf(job)
	if want := run + ":conformance-flow-" + run + "-" + job.Attempt.Key(); id != want {
		t.Errorf("infrastructure id = %q, want %q", id, want)
	}
	g, _ := az.Group(testSubscription, testResourceGroup, name)
	for k, want := range map[string]string{managedTag: "true", attemptTag: job.Attempt.Token(), createdTag: "2026-03-04T05:06:07Z", "prefect.io_flow-run-id": run} {
		if got := tag(g, k); got != want {
			t.Errorf("tag %s = %q, want %q", k, got, want)
		}
	}
	attempt := func() string {
		t.Helper()
		st, err := b.Status(t.Context(), id)
		if err != nil {
			t.Fatal(err)
		}
		return st.Attempt
	}
	if got := attempt(); got != job.Attempt.Key() {
		t.Errorf("Status.Attempt = %q, want %q", got, job.Attempt.Key())
	}
	edit := func(fn func(*armcontainerinstance.ContainerGroup)) {
		if err := az.Update(testSubscription, testResourceGroup, name, fn); err != nil {
			t.Fatal(err)
		}
	}
	edit(func(g *armcontainerinstance.ContainerGroup) { g.Tags[attemptTag] = to.Ptr("0a1b2c3d") })
	if got := attempt(); got != "0a1b2c3d" {
		t.Errorf("Status.Attempt with a bare key tag = %q", got)
	}
	edit(func(g *armcontainerinstance.ContainerGroup) { delete(g.Tags, attemptTag) })
	if got := attempt(); got != job.Attempt.Key() {
		t.Errorf("Status.Attempt without the tag = %q, want the name's %q", got, job.Attempt.Key())
	}

	// A group of Prefect's worker says nothing.
	prefectName := "conformance-flow-" + run
	createRaw(t, az, testResourceGroup, prefectName, nil)
	st, err := b.Status(t.Context(), run+":"+prefectName)
	if err != nil || st.State != dispatch.StateRunning || st.Attempt != "" {
		t.Errorf("Status of Prefect's worker's group = %+v, %v; want RUNNING without an attempt", st, err)
	}
}

// createRaw creates a running group as something else than the backend
// would (Prefect's worker, a user), with tags.
func createRaw(t *testing.T, az *acifake.Azure, rg, name string, tags map[string]string) {
	t.Helper()
	g := armcontainerinstance.ContainerGroup{Location: to.Ptr("westeurope"), Tags: map[string]*string{},
		Properties: &armcontainerinstance.ContainerGroupPropertiesProperties{
			OSType: to.Ptr(armcontainerinstance.OperatingSystemTypesLinux), RestartPolicy: to.Ptr(armcontainerinstance.ContainerGroupRestartPolicyNever),
			Containers: []*armcontainerinstance.Container{{Name: to.Ptr(name), Properties: &armcontainerinstance.ContainerProperties{
				Image: to.Ptr(testImage), Resources: &armcontainerinstance.ResourceRequirements{
					Requests: &armcontainerinstance.ResourceRequests{CPU: to.Ptr(1.0), MemoryInGB: to.Ptr(1.0)}}}}}}}
	for k, v := range tags {
		g.Tags[k] = to.Ptr(v)
	}
	poller, err := armClient(t, az, testSubscription).BeginCreateOrUpdate(t.Context(), rg, name, g, nil)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := poller.PollUntilDone(t.Context(), &runtime.PollUntilDoneOptions{Frequency: time.Millisecond}); err != nil {
		t.Fatal(err)
	}
}
