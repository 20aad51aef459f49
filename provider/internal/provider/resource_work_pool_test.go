package provider

import (
	"context"
	"fmt"
	"testing"

	"github.com/hashicorp/terraform-plugin-testing/helper/resource"
	"github.com/hashicorp/terraform-plugin-testing/knownvalue"
	"github.com/hashicorp/terraform-plugin-testing/plancheck"
	"github.com/hashicorp/terraform-plugin-testing/statecheck"
	"github.com/hashicorp/terraform-plugin-testing/tfjsonpath"

	"github.com/pushpool/pushpool/dispatch/prefect"
)

// A template spelled unlike the server's answer: indented, keys out of
// order, 1.0 for 1. It must apply and re-plan with no change.
const workPoolTemplate = `<<-EOT
    {
      "variables": {"type": "object", "properties": {"command": {"type": "string", "default": "echo hi"}, "retries": {"type": "integer", "default": 1.0}}},
      "job_configuration": {"command": "{{ command }}", "retries": "{{ retries }}"}
    }
  EOT`

func workPoolConfig(name, extra string) string {
	return fmt.Sprintf(`
resource "prefect_work_pool" "test" {
  name = %q
  type = "process"
  %s
}
`, name, extra)
}

func TestAccResource_workPool(t *testing.T) {
	name := uniqueName(t, "pool")
	addr := "prefect_work_pool.test"
	full := fmt.Sprintf("description = \"first\"\n  concurrency_limit = 2\n  base_job_template = %s", workPoolTemplate)
	resource.ParallelTest(t, resource.TestCase{
		ProtoV6ProviderFactories: protoV6(),
		CheckDestroy:             checkWorkPoolGone(name),
		Steps: []resource.TestStep{
			{
				Config: workPoolConfig(name, full),
				ConfigStateChecks: []statecheck.StateCheck{
					statecheck.ExpectKnownValue(addr, tfjsonpath.New("concurrency_limit"), knownvalue.Int64Exact(2)),
					statecheck.ExpectKnownValue(addr, tfjsonpath.New("paused"), knownvalue.Bool(false)),
					statecheck.ExpectKnownValue(addr, tfjsonpath.New("default_queue_id"), knownvalue.NotNull()),
				},
				ConfigPlanChecks: resource.ConfigPlanChecks{PostApplyPostRefresh: []plancheck.PlanCheck{plancheck.ExpectEmptyPlan()}},
			},
			{
				ResourceName:                         addr,
				ImportState:                          true,
				ImportStateId:                        name,
				ImportStateVerify:                    true,
				ImportStateVerifyIdentifierAttribute: "name",
				// State keeps the configured spelling of the template; an import
				// stores the server's. The next step proves the two are
				// semantically equal: its import plans no change.
				ImportStateVerifyIgnore: []string{"base_job_template"},
			},
			{
				Config:          workPoolConfig(name, full),
				ResourceName:    addr,
				ImportState:     true,
				ImportStateKind: resource.ImportBlockWithID,
				ImportStateId:   name,
				ImportPlanChecks: resource.ImportPlanChecks{PreApply: []plancheck.PlanCheck{
					plancheck.ExpectResourceAction(addr, plancheck.ResourceActionNoop),
				}},
			},
			{
				// Update: description cleared, limit removed, paused, template unset (kept).
				Config: workPoolConfig(name, "paused = true"),
				ConfigPlanChecks: resource.ConfigPlanChecks{
					PreApply:             []plancheck.PlanCheck{plancheck.ExpectResourceAction(addr, plancheck.ResourceActionUpdate)},
					PostApplyPostRefresh: []plancheck.PlanCheck{plancheck.ExpectEmptyPlan()},
				},
				Check: checkWorkPool(name, func(p prefect.WorkPool) error {
					if p.Description != nil || p.ConcurrencyLimit != nil || !p.IsPaused || len(p.BaseJobTemplate) != 2 {
						return fmt.Errorf("pool after update = %+v; want no description, no limit, paused, the template kept", p)
					}
					return nil
				}),
			},
			{
				// Drift: changed outside Terraform, shown as an update and corrected.
				PreConfig: outOfBand(t, "change the pool", func(ctx context.Context, c *prefect.Client) error {
					return c.SetWorkPool(ctx, name, prefect.WorkPoolSettings{Description: ptr("ui"), ConcurrencyLimit: ptr(7),
						BaseJobTemplate: map[string]any{"job_configuration": map[string]any{"command": "changed"},
							"variables": map[string]any{"type": "object", "properties": map[string]any{}}}})
				}),
				Config: workPoolConfig(name, full),
				ConfigPlanChecks: resource.ConfigPlanChecks{
					PreApply:             []plancheck.PlanCheck{plancheck.ExpectResourceAction(addr, plancheck.ResourceActionUpdate)},
					PostApplyPostRefresh: []plancheck.PlanCheck{plancheck.ExpectEmptyPlan()},
				},
				Check: checkWorkPool(name, func(p prefect.WorkPool) error {
					if p.Description == nil || *p.Description != "first" || p.ConcurrencyLimit == nil || *p.ConcurrencyLimit != 2 || p.IsPaused {
						return fmt.Errorf("pool after correcting drift = %+v; want description first, limit 2, not paused", p)
					}
					return nil
				}),
			},
			{
				// Deleted outside Terraform: gone from state on refresh, created again.
				PreConfig: outOfBand(t, "delete the pool", func(ctx context.Context, c *prefect.Client) error {
					return c.DeleteWorkPool(ctx, name)
				}),
				Config: workPoolConfig(name, full),
				ConfigPlanChecks: resource.ConfigPlanChecks{
					PreApply:             []plancheck.PlanCheck{plancheck.ExpectResourceAction(addr, plancheck.ResourceActionCreate)},
					PostApplyPostRefresh: []plancheck.PlanCheck{plancheck.ExpectEmptyPlan()},
				},
			},
		},
	})
}

func TestAccResource_workPoolFromPushpoolTemplate(t *testing.T) {
	name := uniqueName(t, "pool")
	config := fmt.Sprintf(`
data "prefect_pushpool_base_job_templates" "this" {}

resource "prefect_work_pool" "ecs" {
  name              = %q
  type              = "ecs"
  base_job_template = data.prefect_pushpool_base_job_templates.this.ecs
}

resource "prefect_work_pool" "custom" {
  name = "%s-custom"
  type = "cloud-run-v2"
  base_job_template = jsonencode(merge(jsondecode(data.prefect_pushpool_base_job_templates.this.cloud_run_v2), {}))
}

data "prefect_work_pool" "ecs" {
  name = prefect_work_pool.ecs.name
}
`, name, name)
	resource.ParallelTest(t, resource.TestCase{
		ProtoV6ProviderFactories: protoV6(),
		Steps: []resource.TestStep{{
			Config:           config,
			ConfigPlanChecks: resource.ConfigPlanChecks{PostApplyPostRefresh: []plancheck.PlanCheck{plancheck.ExpectEmptyPlan()}},
			Check: resource.ComposeAggregateTestCheckFunc(
				resource.TestCheckResourceAttrPair("data.prefect_work_pool.ecs", "id", "prefect_work_pool.ecs", "id"),
				checkWorkPool(name, func(p prefect.WorkPool) error {
					vars, _ := p.BaseJobTemplate["variables"].(map[string]any)
					if props, _ := vars["properties"].(map[string]any); props["cluster"] == nil {
						return fmt.Errorf("ecs pool template has no cluster variable: %v", vars)
					}
					return nil
				}),
			),
		}},
	})
}

// checkWorkPool reads the pool from the server and applies check.
func checkWorkPool(name string, check func(prefect.WorkPool) error) resource.TestCheckFunc {
	return func(*terraformState) error {
		c, err := prefect.New(prefect.Config{URL: srv.URL})
		if err != nil {
			return err
		}
		p, err := c.ReadWorkPool(context.Background(), name)
		if err != nil {
			return err
		}
		return check(p)
	}
}

// checkWorkPoolGone checks that destroy deleted the pool.
func checkWorkPoolGone(name string) resource.TestCheckFunc {
	return func(*terraformState) error {
		c, err := prefect.New(prefect.Config{URL: srv.URL})
		if err != nil {
			return err
		}
		if _, err := c.ReadWorkPool(context.Background(), name); !prefect.IsNotFound(err) {
			return fmt.Errorf("work pool %q after destroy: %v; want not found", name, err)
		}
		return nil
	}
}
