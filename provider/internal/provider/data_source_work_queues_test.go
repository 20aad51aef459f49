package provider

import (
	"fmt"
	"testing"

	"github.com/hashicorp/terraform-plugin-testing/helper/resource"
)

func TestAccDataSource_workQueues(t *testing.T) {
	pool := uniqueName(t, "pool")
	config := fmt.Sprintf(`
resource "prefect_work_pool" "test" {
  name = %q
  type = "process"
}

resource "prefect_work_queue" "low" {
  work_pool_name    = prefect_work_pool.test.name
  name              = "low"
  priority          = 3
  concurrency_limit = 2
}

resource "prefect_work_queue" "high" {
  work_pool_name = prefect_work_pool.test.name
  name           = "high"
  priority       = 2
  description    = "urgent"
}

data "prefect_work_queues" "all" {
  work_pool_name = prefect_work_pool.test.name
  depends_on     = [prefect_work_queue.low, prefect_work_queue.high]
}

data "prefect_work_queues" "one" {
  work_pool_name = prefect_work_pool.test.name
  filter_any     = [prefect_work_queue.low.id]
}
`, pool)
	all := "data.prefect_work_queues.all"
	resource.ParallelTest(t, resource.TestCase{
		ProtoV6ProviderFactories: protoV6(),
		Steps: []resource.TestStep{{
			Config: config,
			Check: resource.ComposeAggregateTestCheckFunc(
				// The pool's default queue (priority 1), then by priority.
				resource.TestCheckResourceAttr(all, "work_queues.#", "3"),
				resource.TestCheckResourceAttr(all, "work_queues.0.name", "default"),
				resource.TestCheckResourceAttrPair(all, "work_queues.1.id", "prefect_work_queue.high", "id"),
				resource.TestCheckResourceAttr(all, "work_queues.1.description", "urgent"),
				resource.TestCheckResourceAttr(all, "work_queues.1.work_pool_name", pool),
				resource.TestCheckResourceAttrPair(all, "work_queues.2.id", "prefect_work_queue.low", "id"),
				resource.TestCheckResourceAttr(all, "work_queues.2.concurrency_limit", "2"),
				resource.TestCheckResourceAttr(all, "work_queues.2.priority", "3"),
				resource.TestCheckResourceAttr("data.prefect_work_queues.one", "work_queues.#", "1"),
				resource.TestCheckResourceAttrPair("data.prefect_work_queues.one", "work_queues.0.id", "prefect_work_queue.low", "id"),
			),
		}},
	})
}
