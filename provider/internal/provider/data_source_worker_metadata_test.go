package provider

import (
	"context"
	"encoding/json"
	"fmt"
	"reflect"
	"regexp"
	"testing"

	"github.com/hashicorp/terraform-plugin-testing/helper/resource"
	"github.com/hashicorp/terraform-plugin-testing/plancheck"
)

// TestAccDataSource_workerMetadata reads the server's worker catalogue and
// creates a work pool from one of its default templates with no diff after.
func TestAccDataSource_workerMetadata(t *testing.T) {
	name := uniqueName(t, "wm")
	addr := "data.prefect_worker_metadata.test"
	matchesCatalogue := func(attr, workerType string) resource.TestCheckFunc {
		return func(s *terraformState) error {
			got := s.RootModule().Resources[addr].Primary.Attributes["base_job_configs."+attr]
			catalogue, err := apiClient(t).ReadWorkerMetadata(context.Background())
			if err != nil {
				return err
			}
			for _, collection := range catalogue {
				if meta, ok := collection[workerType]; ok {
					var doc map[string]any
					if err := json.Unmarshal([]byte(got), &doc); err != nil {
						return fmt.Errorf("base_job_configs.%s is not JSON: %w", attr, err)
					}
					want, _ := json.Marshal(meta.DefaultBaseJobConfiguration)
					var wantDoc map[string]any
					_ = json.Unmarshal(want, &wantDoc)
					if !reflect.DeepEqual(doc, wantDoc) {
						return fmt.Errorf("base_job_configs.%s differs from the catalogue's %s template", attr, workerType)
					}
					if _, ok := doc["job_configuration"]; !ok {
						return fmt.Errorf("base_job_configs.%s has no job_configuration", attr)
					}
					return nil
				}
			}
			return fmt.Errorf("the server's catalogue has no %s worker", workerType)
		}
	}
	resource.ParallelTest(t, resource.TestCase{
		ProtoV6ProviderFactories: protoV6(),
		Steps: []resource.TestStep{{
			Config: fmt.Sprintf(`
data "prefect_worker_metadata" "test" {}

resource "prefect_work_pool" "test" {
  name              = %q
  type              = "process"
  base_job_template = data.prefect_worker_metadata.test.base_job_configs.process
}
`, name),
			ConfigPlanChecks: resource.ConfigPlanChecks{PostApplyPostRefresh: []plancheck.PlanCheck{plancheck.ExpectEmptyPlan()}},
			Check: resource.ComposeAggregateTestCheckFunc(
				matchesCatalogue("process", "process"),
				matchesCatalogue("azure_container_instances", "azure-container-instance"),
				matchesCatalogue("cloud_run_v2", "cloud-run-v2"),
				matchesCatalogue("ecs", "ecs"),
				resource.TestMatchResourceAttr("prefect_work_pool.test", "base_job_template", regexp.MustCompile(`"command"`)),
				// Prefect Cloud's push types are not in a self-hosted server's catalogue.
				resource.TestCheckNoResourceAttr(addr, "base_job_configs.ecs_push"),
			),
		}},
	})
}
