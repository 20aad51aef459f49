package provider

import (
	"fmt"
	"regexp"
	"testing"

	"github.com/hashicorp/terraform-plugin-testing/helper/resource"
)

// TestAccDataSource_globalConcurrencyLimit reads a limit by name, by id and
// by both, and refuses a name that does not match the id.
func TestAccDataSource_globalConcurrencyLimit(t *testing.T) {
	name := uniqueName(t, "gcl-ds")
	cfg := func(data string) string {
		return fmt.Sprintf(`
resource "prefect_global_concurrency_limit" "test" {
  name                  = %q
  limit                 = 3
  slot_decay_per_second = 0.5
}
%s
`, name, data)
	}
	const byBoth = `
data "prefect_global_concurrency_limit" "by_name" {
  name = prefect_global_concurrency_limit.test.name
}

data "prefect_global_concurrency_limit" "by_id" {
  id = prefect_global_concurrency_limit.test.id
}

data "prefect_global_concurrency_limit" "by_both" {
  id   = prefect_global_concurrency_limit.test.id
  name = prefect_global_concurrency_limit.test.name
}
`
	var checks []resource.TestCheckFunc
	for _, ds := range []string{"by_name", "by_id", "by_both"} {
		for _, attr := range []string{"id", "name", "limit", "active", "active_slots", "slot_decay_per_second", "created", "updated"} {
			checks = append(checks, resource.TestCheckResourceAttrPair("data.prefect_global_concurrency_limit."+ds, attr,
				"prefect_global_concurrency_limit.test", attr))
		}
	}
	resource.ParallelTest(t, resource.TestCase{
		ProtoV6ProviderFactories: protoV6(),
		Steps: []resource.TestStep{
			{
				Config:      cfg(`data "prefect_global_concurrency_limit" "none" {}`),
				PlanOnly:    true,
				ExpectError: regexp.MustCompile(`At least one of these attributes must be configured: \[id,name\]`),
			},
			{
				Config:      cfg(`data "prefect_global_concurrency_limit" "missing" { name = "` + name + `-missing" }`),
				ExpectError: regexp.MustCompile(`Unable to read global concurrency limit[\s\S]*404`),
			},
			{
				Config: cfg(`
data "prefect_global_concurrency_limit" "wrong" {
  id   = prefect_global_concurrency_limit.test.id
  name = "not-its-name"
}
`),
				ExpectError: regexp.MustCompile(`is\s+named\s+"` + regexp.QuoteMeta(name) + `",\s+not\s+"not-its-name"`),
			},
			{Config: cfg(byBoth), Check: resource.ComposeAggregateTestCheckFunc(checks...)},
		},
	})
}
