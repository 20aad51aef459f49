package aci

import (
	"os"
	"strings"
	"testing"
	"time"

	"github.com/pushpool/pushpool/dispatch"
	"github.com/pushpool/pushpool/dispatch/backend/aci/acifake"
	"github.com/pushpool/pushpool/dispatch/dispatchtest"
	"github.com/pushpool/pushpool/internal/localstack"
)

var srv *localstack.Prefect

func TestMain(m *testing.M) {
	os.Exit(localstack.RunTestsWithPrefect(m, localstack.PrefectOptions{}, func(p *localstack.Prefect) { srv = p }))
}

const (
	testSubscription  = "0b1f6a7e-3c1d-4e55-9a0b-5f6d7e8a9b01"
	testResourceGroup = "pushpool-tests"
	testImage         = "pushpool.azurecr.io/flows/conformance:1"
)

// newTestBackend returns a backend on a fresh fake, with the fake's
// subscription and resource group as its defaults.
func newTestBackend(t *testing.T) (*Backend, *acifake.Azure) {
	t.Helper()
	az := acifake.New()
	return newBackendOn(t, az, nil), az
}

// newBackendOn returns a backend on az, as newTestBackend configures it
// and then edit (when not nil): another dispatcher of the same Azure.
func newBackendOn(t *testing.T, az *acifake.Azure, edit func(*Config)) *Backend {
	t.Helper()
	cfg := Config{
		Credential: az.Credential(), ClientOptions: az.ClientOptions(),
		SubscriptionID: testSubscription, ResourceGroup: testResourceGroup, Location: "westeurope",
		ProvisionTimeout: 5 * time.Second, DeleteTimeout: 5 * time.Second, PollInterval: 10 * time.Millisecond,
	}
	if edit != nil {
		edit(&cfg)
	}
	b, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func testJob(t *testing.T, flowRunID string, extra map[string]any) dispatch.Job {
	t.Helper()
	vars := map[string]any{"subscription_id": testSubscription, "resource_group_name": testResourceGroup, "image": testImage}
	for k, v := range extra {
		vars[k] = v
	}
	job := dispatchtest.RenderJob(t, PoolType, DefaultBaseJobTemplate(), vars, flowRunID)
	job.Attempt = dispatchtest.NewAttempt(flowRunID)
	return job
}

// countFlowRun counts the groups of every attempt of a flow run, in every
// subscription and resource group: those whose attempt tag is one of the
// run's tokens, or whose name holds the run's id.
func countFlowRun(az *acifake.Azure, flowRunID string) int {
	n := 0
	for _, g := range az.Groups() {
		if strings.Contains(*g.Name, flowRunID) {
			n++
		} else if v := g.Tags[attemptTag]; v != nil {
			if run, _, ok := dispatch.ParseToken(*v); ok && run == flowRunID {
				n++
			}
		}
	}
	return n
}

func mustRef(t *testing.T, id string) groupRef {
	t.Helper()
	ref, err := parseInfrastructureID(id, testSubscription, testResourceGroup)
	if err != nil {
		t.Fatal(err)
	}
	return ref
}

// TestConformance runs the backend conformance suite against acifake.
func TestConformance(t *testing.T) {
	b, az := newTestBackend(t)
	faults := map[dispatchtest.Fault]acifake.Fault{
		dispatchtest.Throttled:    acifake.Throttled,
		dispatchtest.AccessDenied: acifake.AuthorizationFailed,
		dispatchtest.InvalidImage: acifake.InaccessibleImage,
		dispatchtest.Quota:        acifake.QuotaReached,
	}
	dispatchtest.Run(t, dispatchtest.Harness{
		Backend: b,
		Job:     func(t *testing.T, flowRunID string) dispatch.Job { return testJob(t, flowRunID, nil) },
		Count:   func(t *testing.T, flowRunID string) int { return countFlowRun(az, flowRunID) },
		Exit: func(t *testing.T, infraID string, code int) {
			ref := mustRef(t, infraID)
			detail := "Completed"
			if code != 0 {
				detail = "Error"
			}
			if err := az.Terminate(ref.Subscription, ref.ResourceGroup, ref.Name, code, detail); err != nil {
				t.Fatal(err)
			}
		},
		FailureCode: 2,
		Vanish: func(t *testing.T, infraID string) {
			ref := mustRef(t, infraID)
			if !az.Vanish(ref.Subscription, ref.ResourceGroup, ref.Name) {
				t.Fatalf("no container group behind %s to vanish", infraID)
			}
		},
		MissingID: func(t *testing.T) string {
			run := dispatchtest.NewFlowRunID()
			return run + ":" + groupName("conformance-flow", run, dispatchtest.NewAttempt(run).Key())
		},
		Inject: func(t *testing.T, f dispatchtest.Fault, times int) {
			az.Inject(acifake.OpCreate, faults[f], times)
			t.Cleanup(az.ClearFaults)
		},
		Faults: map[dispatchtest.Fault][]string{
			dispatchtest.Throttled:    {"429", testResourceGroup, testSubscription},
			dispatchtest.AccessDenied: {"Microsoft.ContainerInstance/containerGroups/write", "identity", testResourceGroup},
			dispatchtest.InvalidImage: {testImage, "image_registry"},
			dispatchtest.Quota:        {"ContainerGroupQuotaReached"},
		},
		StopTimeout: 10 * time.Second,
	})
	if n := az.Restarts(); n != 0 {
		t.Errorf("the backend re-PUT %d existing container groups; ACI restarts the containers of such groups", n)
	}
}
