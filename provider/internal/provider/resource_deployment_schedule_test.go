package provider

import (
	"context"
	"fmt"
	"strings"
	"testing"

	"github.com/hashicorp/terraform-plugin-testing/helper/resource"
	"github.com/hashicorp/terraform-plugin-testing/knownvalue"
	"github.com/hashicorp/terraform-plugin-testing/plancheck"
	"github.com/hashicorp/terraform-plugin-testing/statecheck"
	"github.com/hashicorp/terraform-plugin-testing/tfjsonpath"

	"github.com/pushpool/pushpool/dispatch/prefect"
)

// scheduleConfig is a flow, a deployment and a schedule of it with body.
func scheduleConfig(name, body string) string {
	return fmt.Sprintf(`
resource "prefect_flow" "test" {
  name = %[1]q
}

resource "prefect_deployment" "test" {
  name    = %[1]q
  flow_id = prefect_flow.test.id
}

resource "prefect_deployment_schedule" "test" {
  deployment_id = prefect_deployment.test.id
  active        = false
  %[2]s
}
`, name, body)
}

func TestAccResource_deploymentSchedule(t *testing.T) {
	name := uniqueName(t, "sched")
	addr := "prefect_deployment_schedule.test"
	empty := []plancheck.PlanCheck{plancheck.ExpectEmptyPlan()}
	action := func(a plancheck.ResourceActionType) []plancheck.PlanCheck {
		return []plancheck.PlanCheck{plancheck.ExpectResourceAction(addr, a)}
	}
	importID := func(s *terraformState) (string, error) {
		r := s.RootModule().Resources[addr]
		return r.Primary.Attributes["deployment_id"] + "," + r.Primary.ID, nil
	}
	var depID, id string
	remember := func(s *terraformState) error {
		r := s.RootModule().Resources[addr]
		depID, id = r.Primary.Attributes["deployment_id"], r.Primary.ID
		return nil
	}
	interval := `
  interval           = 3600
  anchor_date        = "2024-01-01T02:00:00+02:00"
  timezone           = "Europe/Berlin"
  max_scheduled_runs = 3
  slug               = "hourly"
  parameters         = jsonencode({ region = "eu" })
`
	rrule := `
  rrule              = "FREQ=WEEKLY;BYDAY=MO"
  slug               = "hourly"
  max_scheduled_runs = 3
`
	resource.ParallelTest(t, resource.TestCase{
		ProtoV6ProviderFactories: protoV6(),
		Steps: []resource.TestStep{
			{
				Config:   scheduleConfig(name, "cron = \"0 * * * *\"\n  interval = 60"),
				PlanOnly: true, ExpectError: wrapped("Exactly one of these attributes must be configured", "cron,interval,rrule"),
			},
			{
				Config:   scheduleConfig(name, ""),
				PlanOnly: true, ExpectError: wrapped("Exactly one of these attributes must be configured", "cron,interval,rrule"),
			},
			{
				Config:      scheduleConfig(name, "cron = \"0 * * * *\"\n  anchor_date = \"2024-01-01T00:00:00Z\""),
				PlanOnly:    true,
				ExpectError: wrapped(`Attribute "cron" cannot be specified when "anchor_date" is specified`),
			},
			{
				Config: scheduleConfig(name, interval),
				ConfigStateChecks: []statecheck.StateCheck{
					statecheck.ExpectKnownValue(addr, tfjsonpath.New("interval"), knownvalue.Float64Exact(3600)),
					statecheck.ExpectKnownValue(addr, tfjsonpath.New("day_or"), knownvalue.Null()),
				},
				ConfigPlanChecks: resource.ConfigPlanChecks{PostApplyPostRefresh: empty},
				Check:            remember,
			},
			{ResourceName: addr, ImportState: true, ImportStateVerify: true, ImportStateIdFunc: importID},
			{
				// Unset anchor_date and timezone keep the server's while the kind stays.
				Config: scheduleConfig(name, "interval = 60\n  slug = \"hourly\"\n  max_scheduled_runs = 3"),
				ConfigPlanChecks: resource.ConfigPlanChecks{
					PreApply:             action(plancheck.ResourceActionUpdate),
					PostApplyPostRefresh: empty,
				},
				ConfigStateChecks: []statecheck.StateCheck{
					statecheck.ExpectKnownValue(addr, tfjsonpath.New("anchor_date"), knownvalue.StringExact("2024-01-01T02:00:00+02:00")),
					statecheck.ExpectKnownValue(addr, tfjsonpath.New("timezone"), knownvalue.StringExact("Europe/Berlin")),
				},
			},
			{
				// A cron schedule now.
				Config: scheduleConfig(name, "cron = \"0 6 * * 1-5\"\n  day_or = false\n  slug = \"hourly\"\n  max_scheduled_runs = 3"),
				ConfigPlanChecks: resource.ConfigPlanChecks{
					PreApply:             action(plancheck.ResourceActionUpdate),
					PostApplyPostRefresh: empty,
				},
				ConfigStateChecks: []statecheck.StateCheck{
					statecheck.ExpectKnownValue(addr, tfjsonpath.New("anchor_date"), knownvalue.Null()),
					statecheck.ExpectKnownValue(addr, tfjsonpath.New("interval"), knownvalue.Null()),
				},
				Check: remember,
			},
			{
				// An rrule: the DTSTART the server adds is not a change.
				Config: scheduleConfig(name, rrule),
				ConfigPlanChecks: resource.ConfigPlanChecks{
					PreApply:             action(plancheck.ResourceActionUpdate),
					PostApplyPostRefresh: empty,
				},
				Check: checkSchedule(&depID, &id, func(s prefect.DeploymentSchedule) error {
					if r, _ := s.Schedule["rrule"].(string); r == "FREQ=WEEKLY;BYDAY=MO" || s.Active {
						return fmt.Errorf("schedule = %+v; want an inactive rrule with the server's DTSTART", s)
					}
					return nil
				}),
			},
			{
				// Imported, the rule has the DTSTART line: still no change.
				Config: scheduleConfig(name, rrule), ResourceName: addr,
				ImportState: true, ImportStateKind: resource.ImportBlockWithID, ImportStateIdFunc: importID,
				ImportPlanChecks: resource.ImportPlanChecks{PreApply: []plancheck.PlanCheck{
					plancheck.ExpectResourceAction(addr, plancheck.ResourceActionNoop),
				}},
			},
			{
				// The API cannot unset slug or max_scheduled_runs: removing them
				// replaces the schedule.
				Config:           scheduleConfig(name, `rrule = "FREQ=WEEKLY;BYDAY=MO"`),
				ConfigPlanChecks: resource.ConfigPlanChecks{PreApply: action(plancheck.ResourceActionDestroyBeforeCreate), PostApplyPostRefresh: empty},
				Check:            remember,
			},
			{
				// Updating the deployment leaves its schedules alone.
				Config: strings.Replace(scheduleConfig(name, `rrule = "FREQ=WEEKLY;BYDAY=MO"`),
					"flow_id = prefect_flow.test.id", "flow_id = prefect_flow.test.id\n  description = \"changed\"", 1),
				ConfigPlanChecks: resource.ConfigPlanChecks{
					PreApply: []plancheck.PlanCheck{
						plancheck.ExpectResourceAction("prefect_deployment.test", plancheck.ResourceActionUpdate),
						plancheck.ExpectResourceAction(addr, plancheck.ResourceActionNoop),
					},
					PostApplyPostRefresh: empty,
				},
			},
			{
				// Drift: changed outside Terraform, shown as an update and corrected.
				PreConfig: outOfBand(t, "change the schedule", func(ctx context.Context, c *prefect.Client) error {
					return c.UpdateDeploymentSchedule(ctx, depID, id, prefect.ScheduleUpdate{
						Active: ptr(true), Schedule: prefect.Schedule{"cron": "1 1 * * *"}})
				}),
				Config:           scheduleConfig(name, `rrule = "FREQ=WEEKLY;BYDAY=MO"`),
				ConfigPlanChecks: resource.ConfigPlanChecks{PreApply: action(plancheck.ResourceActionUpdate), PostApplyPostRefresh: empty},
			},
			{
				// Deleted outside Terraform: gone from state on refresh, created again.
				PreConfig: outOfBand(t, "delete the schedule", func(ctx context.Context, c *prefect.Client) error {
					return c.DeleteDeploymentSchedule(ctx, depID, id)
				}),
				Config:           scheduleConfig(name, `rrule = "FREQ=WEEKLY;BYDAY=MO"`),
				ConfigPlanChecks: resource.ConfigPlanChecks{PreApply: action(plancheck.ResourceActionCreate), PostApplyPostRefresh: empty},
			},
		},
	})
}

// checkSchedule reads the schedule from the server and applies check.
func checkSchedule(depID, id *string, check func(prefect.DeploymentSchedule) error) resource.TestCheckFunc {
	return func(*terraformState) error {
		c, err := prefect.New(prefect.Config{URL: srv.URL})
		if err != nil {
			return err
		}
		all, err := c.ListDeploymentSchedules(context.Background(), *depID)
		if err != nil {
			return err
		}
		for _, s := range all {
			if s.ID == *id {
				return check(s)
			}
		}
		return fmt.Errorf("schedule %s is not on deployment %s", *id, *depID)
	}
}
