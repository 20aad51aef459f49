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

func globalLimitConfig(name, extra string) string {
	return fmt.Sprintf(`
resource "prefect_global_concurrency_limit" "test" {
  name  = %q
  %s
}
`, name, extra)
}

func TestAccResource_globalConcurrencyLimit(t *testing.T) {
	name := uniqueName(t, "gcl")
	addr := "prefect_global_concurrency_limit.test"
	empty := []plancheck.PlanCheck{plancheck.ExpectEmptyPlan()}
	updated := "limit = 5\n  active = false\n  slot_decay_per_second = 1.5\n  active_slots = 0"
	var id string
	resource.ParallelTest(t, resource.TestCase{
		ProtoV6ProviderFactories: protoV6(),
		Steps: []resource.TestStep{
			{
				Config:      globalLimitConfig("a/b", "limit = 1"),
				PlanOnly:    true,
				ExpectError: regexp.MustCompile(`must not contain / % & > or <`),
			},
			{
				Config:           globalLimitConfig(name, "limit = 2"),
				ConfigPlanChecks: resource.ConfigPlanChecks{PostApplyPostRefresh: empty},
				Check: resource.ComposeAggregateTestCheckFunc(
					func(s *terraformState) error { id = s.RootModule().Resources[addr].Primary.ID; return nil },
					resource.TestCheckResourceAttr(addr, "active", "true"),
					resource.TestCheckResourceAttr(addr, "active_slots", "0"),
					resource.TestCheckResourceAttr(addr, "slot_decay_per_second", "0"),
					checkGlobalLimit(&id, func(l prefect.GlobalConcurrencyLimit) error {
						if l.Name != name || l.Limit != 2 || !l.Active {
							return fmt.Errorf("limit = %+v; want %s, 2, active", l, name)
						}
						return nil
					}),
				),
			},
			{ResourceName: addr, ImportState: true, ImportStateVerify: true},
			{ResourceName: addr, ImportState: true, ImportStateVerify: true, ImportStateId: name},
			{
				Config: globalLimitConfig(name, "limit = 2"), ResourceName: addr,
				ImportState: true, ImportStateKind: resource.ImportBlockWithID, ImportStateId: name,
			},
			{
				// Slots taken by running code are reported, never reset, while active_slots is unset.
				PreConfig: outOfBand(t, "take a slot", func(ctx context.Context, c *prefect.Client) error {
					return c.UpdateGlobalConcurrencyLimit(ctx, id, prefect.GlobalConcurrencyLimitUpdate{ActiveSlots: ptr(1)})
				}),
				Config:           globalLimitConfig(name, "limit = 2"),
				ConfigPlanChecks: resource.ConfigPlanChecks{PreApply: empty},
				Check:            resource.TestCheckResourceAttr(addr, "active_slots", "1"),
			},
			{
				// Rename in place, deactivate, make it a rate limit and reset the slots.
				Config: globalLimitConfig(name+"-2", updated),
				ConfigPlanChecks: resource.ConfigPlanChecks{
					PreApply:             []plancheck.PlanCheck{plancheck.ExpectResourceAction(addr, plancheck.ResourceActionUpdate)},
					PostApplyPostRefresh: empty,
				},
				Check: checkGlobalLimit(&id, func(l prefect.GlobalConcurrencyLimit) error {
					if l.Name != name+"-2" || l.Limit != 5 || l.Active || l.SlotDecayPerSecond != 1.5 || l.ActiveSlots != 0 {
						return fmt.Errorf("limit after update = %+v", l)
					}
					return nil
				}),
			},
			{
				PreConfig: outOfBand(t, "change the limit", func(ctx context.Context, c *prefect.Client) error {
					return c.UpdateGlobalConcurrencyLimit(ctx, id, prefect.GlobalConcurrencyLimitUpdate{Limit: ptr(9), Active: ptr(true)})
				}),
				Config: globalLimitConfig(name+"-2", updated),
				ConfigPlanChecks: resource.ConfigPlanChecks{
					PreApply:             []plancheck.PlanCheck{plancheck.ExpectResourceAction(addr, plancheck.ResourceActionUpdate)},
					PostApplyPostRefresh: empty,
				},
				Check: checkGlobalLimit(&id, func(l prefect.GlobalConcurrencyLimit) error {
					if l.Limit != 5 || l.Active {
						return fmt.Errorf("limit after apply = %+v; want 5, inactive", l)
					}
					return nil
				}),
			},
			{
				PreConfig: outOfBand(t, "delete the limit", func(ctx context.Context, c *prefect.Client) error {
					return c.DeleteGlobalConcurrencyLimit(ctx, id)
				}),
				Config: globalLimitConfig(name+"-2", updated),
				ConfigPlanChecks: resource.ConfigPlanChecks{
					PreApply:             []plancheck.PlanCheck{plancheck.ExpectResourceAction(addr, plancheck.ResourceActionCreate)},
					PostApplyPostRefresh: empty,
				},
			},
		},
	})
}

func checkGlobalLimit(id *string, check func(prefect.GlobalConcurrencyLimit) error) resource.TestCheckFunc {
	return func(*terraformState) error {
		c, err := prefect.New(prefect.Config{URL: srv.URL})
		if err != nil {
			return err
		}
		l, err := c.ReadGlobalConcurrencyLimit(context.Background(), *id)
		if err != nil {
			return err
		}
		return check(l)
	}
}
