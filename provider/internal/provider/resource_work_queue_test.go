package provider

import (
	"context"
	"fmt"
	"testing"

	"github.com/hashicorp/terraform-plugin-testing/helper/resource"
	"github.com/hashicorp/terraform-plugin-testing/plancheck"

	"github.com/pushpool/pushpool/dispatch/prefect"
)

func workQueueConfig(pool, queue, extra string) string {
	return fmt.Sprintf(`
resource "prefect_work_pool" "test" {
  name = %q
  type = "process"
}

resource "prefect_work_queue" "test" {
  work_pool_name = prefect_work_pool.test.name
  name           = %q
  %s
}

data "prefect_work_queue" "test" {
  work_pool_name = prefect_work_queue.test.work_pool_name
  name           = prefect_work_queue.test.name
}
`, pool, queue, extra)
}

func TestAccResource_workQueue(t *testing.T) {
	pool := uniqueName(t, "pool")
	addr := "prefect_work_queue.test"
	full := "description = \"urgent runs\"\n  concurrency_limit = 3\n  priority = 1"
	empty := []plancheck.PlanCheck{plancheck.ExpectEmptyPlan()}
	resource.ParallelTest(t, resource.TestCase{
		ProtoV6ProviderFactories: protoV6(),
		Steps: []resource.TestStep{
			{
				Config:           workQueueConfig(pool, "critical", full),
				ConfigPlanChecks: resource.ConfigPlanChecks{PostApplyPostRefresh: empty},
				Check: resource.ComposeAggregateTestCheckFunc(
					resource.TestCheckResourceAttr(addr, "priority", "1"),
					resource.TestCheckResourceAttrPair("data.prefect_work_queue.test", "id", addr, "id"),
					resource.TestCheckResourceAttr("data.prefect_work_queue.test", "concurrency_limit", "3"),
				),
			},
			{
				ResourceName: addr, ImportState: true, ImportStateVerify: true,
				ImportStateId: pool + ",critical", ImportStateVerifyIdentifierAttribute: "name",
			},
			{
				Config: workQueueConfig(pool, "critical", full), ResourceName: addr,
				ImportState: true, ImportStateKind: resource.ImportBlockWithID, ImportStateId: pool + ",critical",
			},
			{
				// Rename in place; description and limit cleared; paused.
				Config: workQueueConfig(pool, "renamed", "is_paused = true\n  priority = 1"),
				ConfigPlanChecks: resource.ConfigPlanChecks{
					PreApply:             []plancheck.PlanCheck{plancheck.ExpectResourceAction(addr, plancheck.ResourceActionUpdate)},
					PostApplyPostRefresh: empty,
				},
				Check: checkWorkQueue(pool, "renamed", func(q prefect.WorkQueue) error {
					if q.ConcurrencyLimit != nil || !q.IsPaused || (q.Description != nil && *q.Description != "") {
						return fmt.Errorf("queue after update = %+v; want no limit, paused, no description", q)
					}
					return nil
				}),
			},
			{
				PreConfig: outOfBand(t, "change the queue", func(ctx context.Context, c *prefect.Client) error {
					return c.SetWorkQueue(ctx, pool, "renamed", prefect.WorkQueueSettings{Description: "ui", ConcurrencyLimit: ptr(9)})
				}),
				Config: workQueueConfig(pool, "renamed", "is_paused = true\n  priority = 1"),
				ConfigPlanChecks: resource.ConfigPlanChecks{
					PreApply:             []plancheck.PlanCheck{plancheck.ExpectResourceAction(addr, plancheck.ResourceActionUpdate)},
					PostApplyPostRefresh: empty,
				},
			},
			{
				PreConfig: outOfBand(t, "delete the queue", func(ctx context.Context, c *prefect.Client) error {
					return c.DeleteWorkQueue(ctx, pool, "renamed")
				}),
				Config: workQueueConfig(pool, "renamed", "is_paused = true\n  priority = 1"),
				ConfigPlanChecks: resource.ConfigPlanChecks{
					PreApply:             []plancheck.PlanCheck{plancheck.ExpectResourceAction(addr, plancheck.ResourceActionCreate)},
					PostApplyPostRefresh: empty,
				},
			},
		},
	})
}

func checkWorkQueue(pool, name string, check func(prefect.WorkQueue) error) resource.TestCheckFunc {
	return func(*terraformState) error {
		c, err := prefect.New(prefect.Config{URL: srv.URL})
		if err != nil {
			return err
		}
		q, err := c.ReadWorkQueue(context.Background(), pool, name)
		if err != nil {
			return err
		}
		return check(q)
	}
}
