package ecs

import (
	"context"
	"testing"

	"github.com/google/uuid"

	"github.com/pushpool/pushpool/dispatch"
	"github.com/pushpool/pushpool/dispatch/dispatchtest"
	"github.com/pushpool/pushpool/internal/localstack"
)

// motoHarness is the conformance harness on moto: cluster is a moto
// cluster; Count counts the tasks of every attempt of the flow run (their
// startedBy begins with its id); Exit and Vanish use moto's control routes.
func motoHarness(t *testing.T, b *Backend, cluster string) dispatchtest.Harness {
	return dispatchtest.Harness{
		Backend: b,
		Job: func(t *testing.T, flowRunID string) dispatch.Job {
			return dispatchtest.RenderJob(t, PoolType, DefaultBaseJobTemplate(), map[string]any{"cluster": cluster}, flowRunID)
		},
		Count: func(t *testing.T, flowRunID string) int {
			return len(tasksOfFlowRun(t, flowRunID))
		},
		Exit: func(t *testing.T, infraID string, code int) {
			if err := moto.SetTaskStopped(t.Context(), taskARN(t, infraID), localstack.MotoTaskStop{ExitCode: &code}); err != nil {
				t.Fatal(err)
			}
		},
		FailureCode: 1,
		Vanish: func(t *testing.T, infraID string) {
			if err := moto.ForgetTask(t.Context(), taskARN(t, infraID)); err != nil {
				t.Fatal(err)
			}
		},
		MissingID: func(t *testing.T) string {
			return cluster + "::arn:aws:ecs:" + testRegion + ":123456789012:task/" + cluster + "/" + uuid.NewString()
		},
		Inject: func(t *testing.T, f dispatchtest.Fault, times int) {
			fault := map[dispatchtest.Fault]localstack.MotoFault{
				dispatchtest.Throttled: {Type: "ThrottlingException", Message: "Rate exceeded"},
				dispatchtest.AccessDenied: {Type: "AccessDeniedException",
					Message: "User: arn:aws:iam::123456789012:user/ci is not authorized to perform: ecs:RunTask on resource: *"},
				dispatchtest.Quota: {Status: 200, Body: map[string]any{"tasks": []any{}, "failures": []any{map[string]any{
					"arn": "arn:aws:ecs:us-east-1:123456789012:cluster/" + cluster, "reason": "You've reached the limit on the number of vCPUs you can run concurrently"}}}},
			}[f]
			fault.Action, fault.Times = "RunTask", times
			if err := moto.InjectFault(t.Context(), fault); err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { moto.ClearFaults(context.Background()) })
		},
		Faults: map[dispatchtest.Fault][]string{
			dispatchtest.Throttled:    {"ecs:RunTask", "throttled", cluster},
			dispatchtest.AccessDenied: {"ecs:RunTask", cluster},
			dispatchtest.Quota:        {"vCPUs", "quota", cluster},
		},
	}
}

// TestConformance runs the backend conformance suite against moto.
func TestConformance(t *testing.T) {
	cluster := createCluster(t)
	dispatchtest.Run(t, motoHarness(t, newTestBackend(t), cluster))
}
