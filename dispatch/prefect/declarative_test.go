package prefect_test

import (
	"context"
	"testing"

	"github.com/pushpool/pushpool/dispatch/prefect"
)

// The methods the Terraform provider uses to reconcile objects to a declared
// state: explicit nulls clear values, ids survive renames.

func TestClient_SetWorkPool_clearsOptionalFields(t *testing.T) {
	t.Parallel()
	ctx, c := context.Background(), newClient(t)
	pool, err := c.CreateWorkPool(ctx, prefect.WorkPoolCreate{Name: unique(t, "pool"), Type: "process",
		Description: ptr("set"), ConcurrencyLimit: ptr(3)})
	if err != nil {
		t.Fatalf("create work pool: %v", err)
	}
	t.Cleanup(func() { _ = c.DeleteWorkPool(context.Background(), pool.Name) })
	tmpl := map[string]any{"job_configuration": map[string]any{"command": "{{ command }}"},
		"variables": map[string]any{"properties": map[string]any{"command": map[string]any{"type": "string"}}}}
	if err := c.SetWorkPool(ctx, pool.Name, prefect.WorkPoolSettings{IsPaused: true, BaseJobTemplate: tmpl}); err != nil {
		t.Fatalf("set work pool: %v", err)
	}
	got, err := c.ReadWorkPool(ctx, pool.Name)
	if err != nil {
		t.Fatal(err)
	}
	if got.Description != nil || got.ConcurrencyLimit != nil || !got.IsPaused || len(got.BaseJobTemplate) != 2 {
		t.Errorf("after SetWorkPool: description %v, limit %v, paused %v, template %v; want nil, nil, true, the template",
			got.Description, got.ConcurrencyLimit, got.IsPaused, got.BaseJobTemplate)
	}
	// A nil template is sent as {}, which the server accepts (null is a 500).
	if err := c.SetWorkPool(ctx, pool.Name, prefect.WorkPoolSettings{}); err != nil {
		t.Fatalf("set work pool with a nil template: %v", err)
	}
	if got, _ := c.ReadWorkPool(ctx, pool.Name); len(got.BaseJobTemplate) != 0 || got.IsPaused {
		t.Errorf("after SetWorkPool{}: template %v, paused %v; want {}, false", got.BaseJobTemplate, got.IsPaused)
	}
}

func TestClient_SetWorkQueue_renamesAndClears(t *testing.T) {
	t.Parallel()
	ctx, c := context.Background(), newClient(t)
	f := newFixture(t, ctx, c)
	err := c.SetWorkQueue(ctx, f.pool.Name, f.queue.Name, prefect.WorkQueueSettings{Name: ptr("renamed"), IsPaused: true})
	if err != nil {
		t.Fatalf("set work queue: %v", err)
	}
	got, err := c.ReadWorkQueue(ctx, f.pool.Name, "renamed")
	if err != nil {
		t.Fatalf("read the renamed queue: %v", err)
	}
	if got.ID != f.queue.ID || !got.IsPaused || got.ConcurrencyLimit != nil || got.Priority != f.queue.Priority {
		t.Errorf("renamed queue = %+v; want id %s, paused, no limit, priority %d", got, f.queue.ID, f.queue.Priority)
	}
}

func TestClient_VariableByID_andFlowTags(t *testing.T) {
	t.Parallel()
	ctx, c := context.Background(), newClient(t)
	v, err := c.CreateVariable(ctx, prefect.Variable{Name: unique(t, "var"), Value: map[string]any{"a": 1}})
	if err != nil {
		t.Fatalf("create variable: %v", err)
	}
	if v.Created == nil || v.Updated == nil {
		t.Errorf("created/updated not decoded: %+v", v)
	}
	renamed := unique(t, "renamed")
	if err := c.UpdateVariableByID(ctx, v.ID, prefect.Variable{Name: renamed, Value: "s", Tags: []string{"x"}}); err != nil {
		t.Fatalf("update variable by id: %v", err)
	}
	got, err := c.ReadVariableByID(ctx, v.ID)
	if err != nil || got.Name != renamed || got.Value != "s" || len(got.Tags) != 1 {
		t.Errorf("ReadVariableByID = %+v, %v; want the renamed variable", got, err)
	}
	all, err := c.ListVariables(ctx)
	if err != nil || !containsVariable(all, v.ID) {
		t.Errorf("ListVariables = %d variables, %v; want one with id %s", len(all), err, v.ID)
	}
	if err := c.DeleteVariableByID(ctx, v.ID); err != nil {
		t.Fatalf("delete variable by id: %v", err)
	}
	if _, err := c.ReadVariableByID(ctx, v.ID); !prefect.IsNotFound(err) {
		t.Errorf("read after delete: %v; want not found", err)
	}

	flow, err := c.CreateFlow(ctx, unique(t, "flow"), []string{"a"})
	if err != nil {
		t.Fatalf("create flow: %v", err)
	}
	t.Cleanup(func() { _ = c.DeleteFlow(context.Background(), flow.ID) })
	if err := c.UpdateFlowTags(ctx, flow.ID, nil); err != nil {
		t.Fatalf("update flow tags: %v", err)
	}
	if got, err := c.ReadFlow(ctx, flow.ID); err != nil || len(got.Tags) != 0 {
		t.Errorf("flow after clearing tags = %+v, %v; want no tags", got, err)
	}
}

func containsVariable(vs []prefect.Variable, id string) bool {
	for _, v := range vs {
		if v.ID == id {
			return true
		}
	}
	return false
}
