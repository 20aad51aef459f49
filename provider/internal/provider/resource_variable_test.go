package provider

import (
	"context"
	"fmt"
	"testing"

	"github.com/hashicorp/terraform-plugin-testing/helper/resource"
	"github.com/hashicorp/terraform-plugin-testing/plancheck"

	"github.com/pushpool/pushpool/dispatch/prefect"
)

func variableConfig(name, value, tags string) string {
	return fmt.Sprintf(`
resource "prefect_variable" "test" {
  name  = %q
  value = %s
  %s
}

data "prefect_variable" "test" {
  name = prefect_variable.test.name
}
`, name, value, tags)
}

func TestAccResource_variable(t *testing.T) {
	name := uniqueName(t, "var")
	addr := "prefect_variable.test"
	object := `{ region = "eu", limits = { cpu = 1.5, mem = 2048 }, zones = ["a", "b"], on = true }`
	empty := []plancheck.PlanCheck{plancheck.ExpectEmptyPlan()}
	var id string
	resource.ParallelTest(t, resource.TestCase{
		ProtoV6ProviderFactories: protoV6(),
		Steps: []resource.TestStep{
			{
				Config:           variableConfig(name, object, `tags = ["team"]`),
				ConfigPlanChecks: resource.ConfigPlanChecks{PostApplyPostRefresh: empty},
				Check: resource.ComposeAggregateTestCheckFunc(
					resource.TestCheckResourceAttr(addr, "value.limits.mem", "2048"),
					resource.TestCheckResourceAttr("data.prefect_variable.test", "value.region", "eu"),
					func(s *terraformState) error { id = s.RootModule().Resources[addr].Primary.ID; return nil },
				),
			},
			{ResourceName: addr, ImportState: true, ImportStateVerify: true},
			{ResourceName: addr, ImportState: true, ImportStateVerify: true, ImportStateId: "name/" + name},
			{
				Config: variableConfig(name, object, `tags = ["team"]`), ResourceName: addr,
				ImportState: true, ImportStateKind: resource.ImportBlockWithID, ImportStateId: name,
			},
			{
				// Rename in place, a string value, tags cleared.
				Config: variableConfig(name+"-2", `"plain"`, ""),
				ConfigPlanChecks: resource.ConfigPlanChecks{
					PreApply:             []plancheck.PlanCheck{plancheck.ExpectResourceAction(addr, plancheck.ResourceActionUpdate)},
					PostApplyPostRefresh: empty,
				},
				Check: resource.TestCheckResourceAttrWith(addr, "id", func(v string) error {
					if v != id {
						return fmt.Errorf("id %s after rename; want %s (in place)", v, id)
					}
					return nil
				}),
			},
			{
				Config:           variableConfig(name+"-2", `[1, 2.5, "x"]`, ""),
				ConfigPlanChecks: resource.ConfigPlanChecks{PostApplyPostRefresh: empty},
			},
			{
				PreConfig: outOfBand(t, "change the variable", func(ctx context.Context, c *prefect.Client) error {
					return c.UpdateVariableByID(ctx, id, prefect.Variable{Name: name + "-2", Value: 42, Tags: []string{"ui"}})
				}),
				Config: variableConfig(name+"-2", `[1, 2.5, "x"]`, ""),
				ConfigPlanChecks: resource.ConfigPlanChecks{
					PreApply:             []plancheck.PlanCheck{plancheck.ExpectResourceAction(addr, plancheck.ResourceActionUpdate)},
					PostApplyPostRefresh: empty,
				},
			},
			{
				PreConfig: outOfBand(t, "delete the variable", func(ctx context.Context, c *prefect.Client) error {
					return c.DeleteVariableByID(ctx, id)
				}),
				Config: variableConfig(name+"-2", `[1, 2.5, "x"]`, ""),
				ConfigPlanChecks: resource.ConfigPlanChecks{
					PreApply:             []plancheck.PlanCheck{plancheck.ExpectResourceAction(addr, plancheck.ResourceActionCreate)},
					PostApplyPostRefresh: empty,
				},
			},
		},
	})
}
