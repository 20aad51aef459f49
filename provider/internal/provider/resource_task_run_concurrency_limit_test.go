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

func taskLimitConfig(tag string, limit int) string {
	return fmt.Sprintf(`
resource "prefect_task_run_concurrency_limit" "test" {
  tag               = %q
  concurrency_limit = %d
}
`, tag, limit)
}

func TestAccResource_taskRunConcurrencyLimit(t *testing.T) {
	tag := uniqueName(t, "tag")
	addr := "prefect_task_run_concurrency_limit.test"
	empty := []plancheck.PlanCheck{plancheck.ExpectEmptyPlan()}
	var id string
	sameID := resource.TestCheckResourceAttrWith(addr, "id", func(v string) error {
		if v != id {
			return fmt.Errorf("id %s; want %s (changed in place)", v, id)
		}
		return nil
	})
	resource.ParallelTest(t, resource.TestCase{
		ProtoV6ProviderFactories: protoV6(),
		Steps: []resource.TestStep{
			{
				Config:      taskLimitConfig("db/primary", 1),
				PlanOnly:    true,
				ExpectError: regexp.MustCompile(`must not contain / % & > or <`),
			},
			{
				Config:           taskLimitConfig(tag, 2),
				ConfigPlanChecks: resource.ConfigPlanChecks{PostApplyPostRefresh: empty},
				Check: resource.ComposeAggregateTestCheckFunc(
					func(s *terraformState) error { id = s.RootModule().Resources[addr].Primary.ID; return nil },
					checkTaskLimit(tag, 2),
				),
			},
			{ResourceName: addr, ImportState: true, ImportStateVerify: true},
			{ResourceName: addr, ImportState: true, ImportStateVerify: true, ImportStateId: tag},
			{
				Config: taskLimitConfig(tag, 2), ResourceName: addr,
				ImportState: true, ImportStateKind: resource.ImportBlockWithID, ImportStateId: tag,
			},
			{
				// The API sets the limit of an existing tag: an update in place.
				Config: taskLimitConfig(tag, 5),
				ConfigPlanChecks: resource.ConfigPlanChecks{
					PreApply:             []plancheck.PlanCheck{plancheck.ExpectResourceAction(addr, plancheck.ResourceActionUpdate)},
					PostApplyPostRefresh: empty,
				},
				Check: resource.ComposeAggregateTestCheckFunc(sameID, checkTaskLimit(tag, 5)),
			},
			{
				PreConfig: outOfBand(t, "change the limit", func(ctx context.Context, c *prefect.Client) error {
					_, err := c.CreateTaskRunConcurrencyLimit(ctx, prefect.TaskRunConcurrencyLimit{Tag: tag, ConcurrencyLimit: 7})
					return err
				}),
				Config: taskLimitConfig(tag, 5),
				ConfigPlanChecks: resource.ConfigPlanChecks{
					PreApply:             []plancheck.PlanCheck{plancheck.ExpectResourceAction(addr, plancheck.ResourceActionUpdate)},
					PostApplyPostRefresh: empty,
				},
				Check: resource.ComposeAggregateTestCheckFunc(sameID, checkTaskLimit(tag, 5)),
			},
			{
				PreConfig: outOfBand(t, "delete the limit", func(ctx context.Context, c *prefect.Client) error {
					return c.DeleteTaskRunConcurrencyLimit(ctx, tag)
				}),
				Config: taskLimitConfig(tag, 5),
				ConfigPlanChecks: resource.ConfigPlanChecks{
					PreApply:             []plancheck.PlanCheck{plancheck.ExpectResourceAction(addr, plancheck.ResourceActionCreate)},
					PostApplyPostRefresh: empty,
				},
				Check: checkTaskLimit(tag, 5),
			},
			{
				Config: taskLimitConfig(tag+"-2", 5),
				ConfigPlanChecks: resource.ConfigPlanChecks{
					PreApply:             []plancheck.PlanCheck{plancheck.ExpectResourceAction(addr, plancheck.ResourceActionDestroyBeforeCreate)},
					PostApplyPostRefresh: empty,
				},
				Check: checkTaskLimit(tag+"-2", 5),
			},
		},
	})
}

// TestAccResource_taskRunConcurrencyLimit_existingTag: the API's create would
// silently take over a tag's existing limit; the provider refuses.
func TestAccResource_taskRunConcurrencyLimit_existingTag(t *testing.T) {
	tag := uniqueName(t, "tag")
	c := apiClient(t)
	if _, err := c.CreateTaskRunConcurrencyLimit(context.Background(), prefect.TaskRunConcurrencyLimit{Tag: tag, ConcurrencyLimit: 1}); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = c.DeleteTaskRunConcurrencyLimit(context.Background(), tag) })
	resource.ParallelTest(t, resource.TestCase{
		ProtoV6ProviderFactories: protoV6(),
		Steps: []resource.TestStep{{
			Config:      taskLimitConfig(tag, 3),
			ExpectError: regexp.MustCompile(`The tag already has a\s+concurrency limit[\s\S]*terraform\s+import`),
		}},
	})
}

func checkTaskLimit(tag string, want int) resource.TestCheckFunc {
	return func(*terraformState) error {
		c, err := prefect.New(prefect.Config{URL: srv.URL})
		if err != nil {
			return err
		}
		l, err := c.ReadTaskRunConcurrencyLimit(context.Background(), tag)
		if err != nil {
			return err
		}
		if l.ConcurrencyLimit != want {
			return fmt.Errorf("limit of tag %s = %d; want %d", tag, l.ConcurrencyLimit, want)
		}
		return nil
	}
}
