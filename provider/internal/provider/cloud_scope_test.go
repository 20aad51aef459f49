package provider

import (
	"fmt"
	"testing"

	"github.com/hashicorp/terraform-plugin-testing/helper/resource"
	"github.com/hashicorp/terraform-plugin-testing/plancheck"
)

// TestAccProvider_cloudScope checks the prefecthq/prefect provider's Prefect
// Cloud scope: account_id and workspace_id are accepted as null on the
// provider, resources and data sources, and refused with the fix when set;
// import IDs ending in an empty ",<workspace_id>" import.
func TestAccProvider_cloudScope(t *testing.T) {
	name := uniqueName(t, "scope")
	const ws = "9b6c1c1e-0000-4000-8000-000000000000"
	cfg := func(providerScope, resourceScope, dataScope string) string {
		return fmt.Sprintf(`
provider "prefect" {
  %[2]s
}

resource "prefect_work_pool" "test" {
  name = %[1]q
  type = "process"
  %[3]s
}

resource "prefect_work_queue" "test" {
  name           = %[1]q
  work_pool_name = prefect_work_pool.test.name
  %[3]s
}

data "prefect_work_pool" "test" {
  name = prefect_work_pool.test.name
  %[4]s
}
`, name, providerScope, resourceScope, dataScope)
	}
	nulls := "account_id = null\n  workspace_id = null"
	ok := cfg(nulls, nulls, nulls)
	resource.ParallelTest(t, resource.TestCase{
		ProtoV6ProviderFactories: protoV6(),
		Steps: []resource.TestStep{
			{
				Config: ok,
				ConfigPlanChecks: resource.ConfigPlanChecks{
					PostApplyPostRefresh: []plancheck.PlanCheck{plancheck.ExpectEmptyPlan()},
				},
			},
			{Config: ok, ResourceName: "prefect_work_pool.test", ImportState: true, ImportStateVerify: true, ImportStateId: name + ","},
			{
				Config: ok, ResourceName: "prefect_work_queue.test", ImportState: true, ImportStateVerify: true,
				ImportStateId: name + "," + name + ",",
			},
			{
				Config: ok, ResourceName: "prefect_work_pool.test", ImportState: true, ImportStateId: name + "," + ws,
				ExpectError: wrapped(`Unable to import work pool`, `ends in the workspace ID`, `Import with "`+name+`"`),
			},
			{
				Config:      cfg(nulls, `workspace_id = "`+ws+`"`, nulls),
				PlanOnly:    true,
				ExpectError: wrapped(`Unsupported workspace_id`, `workspace_id is set to "`+ws+`"`, `Remove workspace_id`),
			},
			{
				Config:      cfg(`account_id = "`+ws+`"`, nulls, nulls),
				PlanOnly:    true,
				ExpectError: wrapped(`Unsupported account_id`, `self-hosted Prefect server`, `Remove account_id`),
			},
			{
				Config:      cfg(nulls, nulls, `account_id = "`+ws+`"`),
				PlanOnly:    true,
				ExpectError: wrapped(`Unsupported account_id`, `Remove account_id`),
			},
			// Leave the valid configuration for the destroy.
			{Config: ok},
		},
	})
}
