package provider

import (
	"context"
	"fmt"
	"regexp"
	"testing"

	"github.com/hashicorp/terraform-plugin-testing/helper/resource"
	"github.com/hashicorp/terraform-plugin-testing/plancheck"
)

// deploymentLimitConfig is two global concurrency limits, a flow and a
// deployment of it with body.
func deploymentLimitConfig(name, body string) string {
	return fmt.Sprintf(`
resource "prefect_global_concurrency_limit" "a" {
  name  = "%[1]s-a"
  limit = 2
}

resource "prefect_global_concurrency_limit" "b" {
  name  = "%[1]s-b"
  limit = 7
}

resource "prefect_flow" "test" {
  name = %[1]q
}

resource "prefect_deployment" "test" {
  name    = %[1]q
  flow_id = prefect_flow.test.id
  %[2]s
}
`, name, body)
}

// checkDeploymentLimit checks on the server which concurrency limit the
// deployment is linked to: "own:<n>" for its own limit of n, the name of a
// global limit, or "" for none; and that limits a and b still have their
// configured limits (a shared limit is never changed through a deployment).
func checkDeploymentLimit(t *testing.T, name, want string) resource.TestCheckFunc {
	return func(s *terraformState) error {
		c, ctx := apiClient(t), context.Background()
		dep, err := c.ReadDeployment(ctx, s.RootModule().Resources["prefect_deployment.test"].Primary.ID)
		if err != nil {
			return err
		}
		got := ""
		if l := dep.GlobalConcurrencyLimit; l != nil {
			got = l.Name
			if l.Name == "deployment:"+dep.ID {
				got = fmt.Sprintf("own:%d", l.Limit)
			}
		}
		if got != want {
			return fmt.Errorf("deployment linked to %q, want %q", got, want)
		}
		for suffix, limit := range map[string]int{"a": 2, "b": 7} {
			l, err := c.ReadGlobalConcurrencyLimit(ctx, name+"-"+suffix)
			if err != nil {
				return fmt.Errorf("global limit %s-%s: %w", name, suffix, err)
			}
			if l.Limit != limit {
				return fmt.Errorf("global limit %s has limit %d, want %d: the deployment changed a shared limit", l.Name, l.Limit, limit)
			}
		}
		return nil
	}
}

// TestAccResource_deploymentGlobalConcurrencyLimit links a deployment to
// global concurrency limits, moves it between them and its own limit, and
// unlinks it, checking the server after each apply.
func TestAccResource_deploymentGlobalConcurrencyLimit(t *testing.T) {
	name := uniqueName(t, "deplimit")
	addr := "prefect_deployment.test"
	empty := resource.ConfigPlanChecks{PostApplyPostRefresh: []plancheck.PlanCheck{plancheck.ExpectEmptyPlan()}}
	update := resource.ConfigPlanChecks{
		PreApply:             []plancheck.PlanCheck{plancheck.ExpectResourceAction(addr, plancheck.ResourceActionUpdate)},
		PostApplyPostRefresh: []plancheck.PlanCheck{plancheck.ExpectEmptyPlan()},
	}
	resource.ParallelTest(t, resource.TestCase{
		ProtoV6ProviderFactories: protoV6(),
		Steps: []resource.TestStep{
			{
				Config: deploymentLimitConfig(name, `
  concurrency_limit           = 1
  global_concurrency_limit_id = "0b5c2b7e-1111-4e4e-8f8f-000000000001"`),
				PlanOnly:    true,
				ExpectError: regexp.MustCompile(`(?s)Invalid Attribute Combination.*global_concurrency_limit_id`),
			},
			{
				Config:           deploymentLimitConfig(name, "global_concurrency_limit_id = prefect_global_concurrency_limit.a.id"),
				ConfigPlanChecks: empty,
				Check: resource.ComposeAggregateTestCheckFunc(
					resource.TestCheckResourceAttrPair(addr, "global_concurrency_limit_id", "prefect_global_concurrency_limit.a", "id"),
					resource.TestCheckNoResourceAttr(addr, "concurrency_limit"),
					checkDeploymentLimit(t, name, name+"-a"),
				),
			},
			{ResourceName: addr, ImportState: true, ImportStateVerify: true},
			{
				Config:           deploymentLimitConfig(name, "global_concurrency_limit_id = prefect_global_concurrency_limit.b.id"),
				ConfigPlanChecks: update,
				Check: resource.ComposeAggregateTestCheckFunc(
					resource.TestCheckResourceAttrPair(addr, "global_concurrency_limit_id", "prefect_global_concurrency_limit.b", "id"),
					checkDeploymentLimit(t, name, name+"-b"),
				),
			},
			{
				// From a shared limit to the deployment's own: b is unlinked, not changed.
				Config:           deploymentLimitConfig(name, "concurrency_limit = 3"),
				ConfigPlanChecks: update,
				Check: resource.ComposeAggregateTestCheckFunc(
					resource.TestCheckNoResourceAttr(addr, "global_concurrency_limit_id"),
					resource.TestCheckResourceAttr(addr, "concurrency_limit", "3"),
					checkDeploymentLimit(t, name, "own:3"),
				),
			},
			{
				Config:           deploymentLimitConfig(name, "global_concurrency_limit_id = prefect_global_concurrency_limit.a.id"),
				ConfigPlanChecks: update,
				Check: resource.ComposeAggregateTestCheckFunc(
					resource.TestCheckNoResourceAttr(addr, "concurrency_limit"),
					checkDeploymentLimit(t, name, name+"-a"),
				),
			},
			{
				// Unset: unlinked, and limit a stays.
				Config:           deploymentLimitConfig(name, ""),
				ConfigPlanChecks: update,
				Check: resource.ComposeAggregateTestCheckFunc(
					resource.TestCheckNoResourceAttr(addr, "global_concurrency_limit_id"),
					checkDeploymentLimit(t, name, ""),
				),
			},
		},
	})
}
