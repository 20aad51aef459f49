package provider

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/hashicorp/terraform-plugin-testing/config"
	"github.com/hashicorp/terraform-plugin-testing/helper/resource"
	"github.com/hashicorp/terraform-plugin-testing/plancheck"

	"github.com/pushpool/pushpool/dispatch/prefect"
)

// TestAccExample_complete applies terraform/examples/complete as a user
// would (only its terraform block is left out: the test serves the provider
// in-process), checks what it created in Prefect, and shows an empty plan
// after apply.
func TestAccExample_complete(t *testing.T) {
	dir := filepath.Join("..", "..", "..", "terraform", "examples", "complete")
	files, err := filepath.Glob(filepath.Join(dir, "*.tf"))
	if err != nil || len(files) == 0 {
		t.Fatalf("no example files in %s: %v", dir, err)
	}
	var cfg strings.Builder
	for _, f := range files {
		if filepath.Base(f) == "versions.tf" {
			continue
		}
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		cfg.Write(b)
		cfg.WriteString("\n")
	}
	prefix := uniqueName(t, "ex")
	vars := config.Variables{"name_prefix": config.StringVariable(prefix), "ecs_cluster": config.StringVariable("data-team")}

	resource.Test(t, resource.TestCase{
		ProtoV6ProviderFactories: protoV6(),
		Steps: []resource.TestStep{
			{
				Config:          cfg.String(),
				ConfigVariables: vars,
				ConfigPlanChecks: resource.ConfigPlanChecks{
					PostApplyPostRefresh: []plancheck.PlanCheck{plancheck.ExpectEmptyPlan()},
				},
				Check: func(*terraformState) error {
					return checkCompleteExample(t, prefix)
				},
			},
		},
	})
}

// checkCompleteExample reads back what the example made, through the API.
func checkCompleteExample(t *testing.T, prefix string) error {
	ctx := context.Background()
	c := apiClient(t)
	pool, err := c.ReadWorkPool(ctx, prefix+"-ecs-push")
	if err != nil {
		return err
	}
	props := pool.BaseJobTemplate["variables"].(map[string]any)["properties"].(map[string]any)
	if got := props["cluster"].(map[string]any)["default"]; got != "data-team" || pool.Type != "ecs:push" {
		t.Errorf("pool %q: type %q, cluster default %v; want ecs:push with the cluster from the variable", pool.Name, pool.Type, got)
	}
	dep, err := c.ReadDeploymentByName(ctx, prefix+"-nightly-etl", "prod")
	if err != nil {
		return err
	}
	scheds, err := c.ListDeploymentSchedules(ctx, dep.ID)
	if err != nil {
		return err
	}
	if len(scheds) != 1 || dep.WorkPoolName == nil || *dep.WorkPoolName != pool.Name {
		t.Errorf("ETL deployment: pool %v, %d schedules; want the pool and one schedule", dep.WorkPoolName, len(scheds))
	}
	runs, err := c.GetScheduledFlowRuns(ctx, pool.Name, prefect.ScheduledRunsRequest{})
	if err != nil {
		return err
	}
	t.Logf("pool %s has %d scheduled run(s) ready for the dispatcher", pool.Name, len(runs))
	return nil
}
