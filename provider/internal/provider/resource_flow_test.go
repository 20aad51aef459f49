package provider

import (
	"context"
	"fmt"
	"regexp"
	"testing"

	"github.com/hashicorp/terraform-plugin-testing/helper/resource"
	"github.com/hashicorp/terraform-plugin-testing/plancheck"

	"github.com/pushpool/pushpool/dispatch/prefect"
)

func flowConfig(name, tags string) string {
	return fmt.Sprintf(`
resource "prefect_flow" "test" {
  name = %q
  %s
}
`, name, tags)
}

func TestAccResource_flow(t *testing.T) {
	name := uniqueName(t, "flow")
	addr := "prefect_flow.test"
	empty := []plancheck.PlanCheck{plancheck.ExpectEmptyPlan()}
	var id string
	resource.ParallelTest(t, resource.TestCase{
		ProtoV6ProviderFactories: protoV6(),
		Steps: []resource.TestStep{
			{
				Config:           flowConfig(name, `tags = ["etl"]`),
				ConfigPlanChecks: resource.ConfigPlanChecks{PostApplyPostRefresh: empty},
				Check:            func(s *terraformState) error { id = s.RootModule().Resources[addr].Primary.ID; return nil },
			},
			{ResourceName: addr, ImportState: true, ImportStateVerify: true},
			{ResourceName: addr, ImportState: true, ImportStateVerify: true, ImportStateId: name},
			{
				Config: flowConfig(name, `tags = ["etl"]`), ResourceName: addr,
				ImportState: true, ImportStateKind: resource.ImportBlockWithID, ImportStateId: name,
			},
			{
				Config: flowConfig(name, ""),
				ConfigPlanChecks: resource.ConfigPlanChecks{
					PreApply:             []plancheck.PlanCheck{plancheck.ExpectResourceAction(addr, plancheck.ResourceActionUpdate)},
					PostApplyPostRefresh: empty,
				},
				Check: resource.TestCheckResourceAttr(addr, "tags.#", "0"),
			},
			{
				PreConfig: outOfBand(t, "tag the flow", func(ctx context.Context, c *prefect.Client) error {
					return c.UpdateFlowTags(ctx, id, []string{"ui"})
				}),
				Config: flowConfig(name, ""),
				ConfigPlanChecks: resource.ConfigPlanChecks{
					PreApply:             []plancheck.PlanCheck{plancheck.ExpectResourceAction(addr, plancheck.ResourceActionUpdate)},
					PostApplyPostRefresh: empty,
				},
			},
			{
				PreConfig: outOfBand(t, "delete the flow", func(ctx context.Context, c *prefect.Client) error {
					return c.DeleteFlow(ctx, id)
				}),
				Config: flowConfig(name, ""),
				ConfigPlanChecks: resource.ConfigPlanChecks{
					PreApply:             []plancheck.PlanCheck{plancheck.ExpectResourceAction(addr, plancheck.ResourceActionCreate)},
					PostApplyPostRefresh: empty,
				},
			},
			{
				// A second resource for the same flow name is refused with the fix.
				Config:      flowConfig(name, "") + `resource "prefect_flow" "dup" { name = prefect_flow.test.name }`,
				ExpectError: regexp.MustCompile(`already exists[\s\S]*terraform import`),
			},
		},
	})
}
