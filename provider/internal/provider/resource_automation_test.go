package provider

import (
	"context"
	"fmt"
	"regexp"
	"strings"
	"testing"

	"github.com/hashicorp/terraform-plugin-testing/helper/resource"
	"github.com/hashicorp/terraform-plugin-testing/knownvalue"
	"github.com/hashicorp/terraform-plugin-testing/plancheck"
	"github.com/hashicorp/terraform-plugin-testing/statecheck"
	"github.com/hashicorp/terraform-plugin-testing/tfjsonpath"

	"github.com/pushpool/pushpool/dispatch/prefect"
	"github.com/pushpool/pushpool/provider/internal/jsonattr"
)

// automationEventConfig is an event trigger running a deployment with
// Jinja-templated parameters; extra goes into the resource block.
func automationEventConfig(name, deploymentID, trigger, params, extra string) string {
	return fmt.Sprintf(`
resource "prefect_automation" "test" {
  name = %q
  trigger = {
    event = {
      posture = "Reactive"
      match   = jsonencode({ "prefect.resource.id" = "acme.order.*" })
      expect  = ["acme.order.placed"]
      %s
    }
  }
  actions = [
    {
      type          = "run-deployment"
      source        = "selected"
      deployment_id = %q
      parameters    = %s
    },
  ]
  %s
}
`, name, trigger, deploymentID, params, extra)
}

func TestAccResource_automation(t *testing.T) {
	name := uniqueName(t, "auto")
	dep := testDeployment(t)
	addr := "prefect_automation.test"
	empty := []plancheck.PlanCheck{plancheck.ExpectEmptyPlan()}
	// Spelled unlike the server's answer (spaces, key order), and with templates.
	params := `<<-EOT
    { "order": "{{ event.resource.id }}",   "event_id": "{{ event.id }}" }
  EOT`
	created := automationEventConfig(name, dep, "", params, "")
	updated := automationEventConfig(name, dep, "threshold = 2\n      within = 300", `jsonencode({ event_id = "{{ event.id }}", retries = 3 })`, `
  description = "orders"
  enabled     = false
  actions_on_resolve = [{ type = "do-nothing" }]`) + `
data "prefect_automation" "test" {
  id = prefect_automation.test.id
}
`
	var id string
	resource.ParallelTest(t, resource.TestCase{
		ProtoV6ProviderFactories: protoV6(),
		CheckDestroy:             checkAutomationGone(&id),
		Steps: []resource.TestStep{
			{
				Config: created,
				ConfigStateChecks: []statecheck.StateCheck{
					statecheck.ExpectKnownValue(addr, tfjsonpath.New("enabled"), knownvalue.Bool(true)),
					statecheck.ExpectKnownValue(addr, tfjsonpath.New("description"), knownvalue.StringExact("")),
					statecheck.ExpectKnownValue(addr, tfjsonpath.New("trigger").AtMapKey("event").AtMapKey("within"), knownvalue.Float64Exact(0)),
					statecheck.ExpectKnownValue(addr, tfjsonpath.New("trigger").AtMapKey("event").AtMapKey("threshold"), knownvalue.Int64Exact(1)),
					statecheck.ExpectKnownValue(addr, tfjsonpath.New("actions").AtSliceIndex(0).AtMapKey("job_variables"), knownvalue.StringExact("{}")),
					statecheck.ExpectKnownValue(addr, tfjsonpath.New("actions_on_trigger"), knownvalue.ListSizeExact(0)),
				},
				ConfigPlanChecks: resource.ConfigPlanChecks{PostApplyPostRefresh: empty},
				Check: resource.ComposeAggregateTestCheckFunc(
					saveID(addr, &id),
					checkAutomation(&id, func(a prefect.Automation) error {
						got := a.Actions[0]["parameters"]
						want := map[string]any{"event_id": "{{ event.id }}", "order": "{{ event.resource.id }}"}
						if len(a.Actions) != 1 || a.Actions[0]["deployment_id"] != dep || !jsonattr.EqualValues(got, want) {
							return fmt.Errorf("actions = %v; want run-deployment of %s with parameters %v", a.Actions, dep, want)
						}
						return nil
					}),
				),
			},
			{
				ResourceName: addr, ImportState: true, ImportStateVerify: true,
				// State keeps the configured spelling of parameters; the next step
				// shows the import's spelling plans no change.
				ImportStateVerifyIgnore: []string{"actions.0.parameters"},
			},
			{
				Config: created, ResourceName: addr, ImportState: true, ImportStateKind: resource.ImportBlockWithID,
				ImportStateIdFunc: func(*terraformState) (string, error) { return id, nil },
				ImportPlanChecks: resource.ImportPlanChecks{PreApply: []plancheck.PlanCheck{
					plancheck.ExpectResourceAction(addr, plancheck.ResourceActionNoop),
				}},
			},
			{
				Config: updated,
				ConfigPlanChecks: resource.ConfigPlanChecks{
					PreApply:             []plancheck.PlanCheck{plancheck.ExpectResourceAction(addr, plancheck.ResourceActionUpdate)},
					PostApplyPostRefresh: empty,
				},
				Check: resource.ComposeAggregateTestCheckFunc(
					resource.TestCheckResourceAttrPair("data.prefect_automation.test", "name", addr, "name"),
					resource.TestCheckResourceAttr("data.prefect_automation.test", "trigger.event.within", "300"),
					resource.TestCheckResourceAttr("data.prefect_automation.test", "actions.0.source", "selected"),
					resource.TestCheckResourceAttr("data.prefect_automation.test", "actions_on_resolve.0.type", "do-nothing"),
					checkAutomation(&id, func(a prefect.Automation) error {
						if a.Enabled || a.Description != "orders" || fmt.Sprint(a.Trigger["threshold"]) != "2" ||
							!jsonattr.EqualValues(a.Actions[0]["parameters"], map[string]any{"event_id": "{{ event.id }}", "retries": 3}) {
							return fmt.Errorf("automation after update = %+v", a)
						}
						return nil
					}),
				),
			},
			{
				// Changed outside Terraform: shown as an update and put back.
				PreConfig: outOfBand(t, "change the automation", func(ctx context.Context, c *prefect.Client) error {
					a, err := c.ReadAutomation(ctx, id)
					if err != nil {
						return err
					}
					a.Enabled = true
					a.Trigger["within"] = 30
					a.Actions[0]["parameters"] = map[string]any{"event_id": "changed"}
					a.ActionsOnResolve = nil
					return c.ReplaceAutomation(ctx, id, a)
				}),
				Config: updated,
				ConfigPlanChecks: resource.ConfigPlanChecks{
					PreApply:             []plancheck.PlanCheck{plancheck.ExpectResourceAction(addr, plancheck.ResourceActionUpdate)},
					PostApplyPostRefresh: empty,
				},
				Check: checkAutomation(&id, func(a prefect.Automation) error {
					if a.Enabled || fmt.Sprint(a.Trigger["within"]) != "300.0" || len(a.ActionsOnResolve) != 1 ||
						a.Actions[0]["parameters"].(map[string]any)["event_id"] != "{{ event.id }}" {
						return fmt.Errorf("automation after correcting drift = %+v", a)
					}
					return nil
				}),
			},
			{
				// Deleted outside Terraform: gone from state on refresh, created again.
				PreConfig: outOfBand(t, "delete the automation", func(ctx context.Context, c *prefect.Client) error {
					return c.DeleteAutomation(ctx, id)
				}),
				Config: updated,
				ConfigPlanChecks: resource.ConfigPlanChecks{
					PreApply:             []plancheck.PlanCheck{plancheck.ExpectResourceAction(addr, plancheck.ResourceActionCreate)},
					PostApplyPostRefresh: empty,
				},
				Check: saveID(addr, &id),
			},
		},
	})
}

func TestAccResource_automationCompositeTriggers(t *testing.T) {
	name := uniqueName(t, "auto")
	config := func(require, sequenceWithin string) string {
		return fmt.Sprintf(`
resource "prefect_automation" "compound" {
  name = "%[1]s-compound"
  trigger = {
    compound = {
      require = %[2]s
      within  = 300
      triggers = [
        { event = { posture = "Reactive", expect = ["prefect.flow-run.Failed"], match = jsonencode({ "prefect.resource.id" = "prefect.flow-run.*" }) } },
        { event = {
            posture       = "Reactive"
            expect        = ["prefect.flow-run.Crashed"]
            match_related = jsonencode([{ "prefect.resource.role" = "flow", "prefect.resource.name" = "etl" }, { "prefect.resource.role" = "tag", "prefect.resource.id" = "prefect.tag.nightly" }])
            threshold     = 2
            within        = 60
        } },
      ]
    }
  }
  actions = [{ type = "cancel-flow-run" }]
}

resource "prefect_automation" "sequence" {
  name = "%[1]s-sequence"
  trigger = {
    sequence = {
      %[3]s
      triggers = [
        { event = { posture = "Reactive", expect = ["prefect.flow-run.Pending"], for_each = ["prefect.resource.id"] } },
        { event = { posture = "Reactive", expect = ["prefect.flow-run.Running"], for_each = ["prefect.resource.id"] } },
        { event = { posture = "Proactive", expect = ["prefect.flow-run.Completed"], for_each = ["prefect.resource.id"] } },
      ]
    }
  }
  actions_on_trigger = [{ type = "suspend-flow-run" }]
  actions_on_resolve = [{ type = "resume-flow-run" }]
}
`, name, require, sequenceWithin)
	}
	empty := []plancheck.PlanCheck{plancheck.ExpectEmptyPlan()}
	seq := "prefect_automation.sequence"
	resource.ParallelTest(t, resource.TestCase{
		ProtoV6ProviderFactories: protoV6(),
		Steps: []resource.TestStep{
			{
				Config:           config(`"any"`, ""),
				ConfigPlanChecks: resource.ConfigPlanChecks{PostApplyPostRefresh: empty},
				ConfigStateChecks: []statecheck.StateCheck{
					// The Proactive trigger's unset within is planned as the server's 10 seconds.
					statecheck.ExpectKnownValue(seq, tfjsonpath.New("trigger").AtMapKey("sequence").AtMapKey("triggers").AtSliceIndex(2).
						AtMapKey("event").AtMapKey("within"), knownvalue.Float64Exact(10)),
					statecheck.ExpectKnownValue(seq, tfjsonpath.New("trigger").AtMapKey("sequence").AtMapKey("within"), knownvalue.Null()),
					statecheck.ExpectKnownValue(seq, tfjsonpath.New("actions"), knownvalue.ListSizeExact(0)),
				},
			},
			{ResourceName: "prefect_automation.compound", ImportState: true, ImportStateVerify: true},
			{ResourceName: seq, ImportState: true, ImportStateVerify: true},
			{
				Config: config("2", "within = 600"),
				ConfigPlanChecks: resource.ConfigPlanChecks{
					PreApply: []plancheck.PlanCheck{
						plancheck.ExpectResourceAction("prefect_automation.compound", plancheck.ResourceActionUpdate),
						plancheck.ExpectResourceAction(seq, plancheck.ResourceActionUpdate),
					},
					PostApplyPostRefresh: empty,
				},
				ConfigStateChecks: []statecheck.StateCheck{
					statecheck.ExpectKnownValue("prefect_automation.compound", tfjsonpath.New("trigger").AtMapKey("compound").AtMapKey("require"),
						knownvalue.Int64Exact(2)),
					statecheck.ExpectKnownValue(seq, tfjsonpath.New("trigger").AtMapKey("sequence").AtMapKey("within"), knownvalue.Float64Exact(600)),
				},
			},
			{ResourceName: "prefect_automation.compound", ImportState: true, ImportStateVerify: true},
		},
	})
}

func TestAccResource_automationZombieDetection(t *testing.T) {
	name := uniqueName(t, "auto")
	// As in Prefect's "Detect zombie flows" guide; a second automation writes
	// within = 0, which the server stores as 10 seconds.
	config := fmt.Sprintf(`
resource "prefect_automation" "zombie" {
  name        = "%[1]s"
  description = "Crash zombie flows"
  trigger = {
    event = {
      posture   = "Proactive"
      after     = ["prefect.flow-run.heartbeat"]
      expect    = ["prefect.flow-run.heartbeat", "prefect.flow-run.Completed", "prefect.flow-run.Failed", "prefect.flow-run.Cancelled", "prefect.flow-run.Crashed"]
      match     = jsonencode({ "prefect.resource.id" = ["prefect.flow-run.*"] })
      for_each  = ["prefect.resource.id"]
      threshold = 1
      within    = 90
    }
  }
  actions = [
    {
      type    = "change-flow-run-state"
      state   = "CRASHED"
      message = "Flow run marked as crashed due to missing heartbeats."
    },
  ]
}

resource "prefect_automation" "quick" {
  name = "%[1]s-quick"
  trigger = {
    event = {
      posture = "Proactive"
      expect  = ["acme.ping"]
      within  = 0
    }
  }
  actions = [{ type = "change-flow-run-state", state = "FAILED", name = "Silent" }]
}
`, name)
	zombie, quick := "prefect_automation.zombie", "prefect_automation.quick"
	var zombieID, quickID string
	resource.ParallelTest(t, resource.TestCase{
		ProtoV6ProviderFactories: protoV6(),
		Steps: []resource.TestStep{
			{
				Config:           config,
				ConfigPlanChecks: resource.ConfigPlanChecks{PostApplyPostRefresh: []plancheck.PlanCheck{plancheck.ExpectEmptyPlan()}},
				ConfigStateChecks: []statecheck.StateCheck{
					statecheck.ExpectKnownValue(quick, tfjsonpath.New("trigger").AtMapKey("event").AtMapKey("within"), knownvalue.Float64Exact(0)),
				},
				Check: resource.ComposeAggregateTestCheckFunc(
					saveID(zombie, &zombieID), saveID(quick, &quickID),
					checkAutomation(&zombieID, func(a prefect.Automation) error {
						if a.Trigger["posture"] != "Proactive" || fmt.Sprint(a.Trigger["within"]) != "90.0" ||
							a.Actions[0]["state"] != "CRASHED" || a.Actions[0]["type"] != "change-flow-run-state" {
							return fmt.Errorf("zombie automation = %+v", a)
						}
						return nil
					}),
					checkAutomation(&quickID, func(a prefect.Automation) error {
						if fmt.Sprint(a.Trigger["within"]) != "10.0" {
							return fmt.Errorf("within of a Proactive trigger set to 0 = %v; the server stores 10", a.Trigger["within"])
						}
						return nil
					}),
				),
			},
			{ResourceName: zombie, ImportState: true, ImportStateVerify: true},
			{
				// The import stores 10; configured 0 means the same and plans no change.
				Config: config, ResourceName: quick, ImportState: true, ImportStateKind: resource.ImportBlockWithID,
				ImportStateIdFunc: func(*terraformState) (string, error) { return quickID, nil },
				ImportPlanChecks: resource.ImportPlanChecks{PreApply: []plancheck.PlanCheck{
					plancheck.ExpectResourceAction(quick, plancheck.ResourceActionNoop),
				}},
			},
		},
	})
}

func TestAccResource_automationPauseResumeActions(t *testing.T) {
	name := uniqueName(t, "auto")
	dep := testDeployment(t)
	config := fmt.Sprintf(`
resource "prefect_work_pool" "p" {
  name = "%[1]s"
  type = "process"
}

resource "prefect_work_queue" "q" {
  work_pool_name = prefect_work_pool.p.name
  name           = "urgent"
}

resource "prefect_automation" "target" {
  name    = "%[1]s-target"
  trigger = { event = { posture = "Reactive", expect = ["acme.never"] } }
  actions = [{ type = "do-nothing" }]
}

resource "prefect_automation" "test" {
  name    = "%[1]s"
  enabled = false
  trigger = { event = { posture = "Reactive", expect = ["acme.maintenance.*"] } }
  actions = [
    { type = "pause-deployment", deployment_id = %[2]q },
    { type = "resume-deployment", source = "inferred" },
    { type = "pause-work-pool", source = "selected", work_pool_id = prefect_work_pool.p.id },
    { type = "resume-work-pool", source = "inferred" },
    { type = "pause-work-queue", work_queue_id = prefect_work_queue.q.id },
    { type = "resume-work-queue", source = "inferred" },
    { type = "pause-automation", automation_id = prefect_automation.target.id },
    { type = "resume-automation", source = "inferred" },
  ]
  actions_on_trigger = [
    { type = "cancel-flow-run" },
    { type = "suspend-flow-run" },
    { type = "resume-flow-run" },
    { type = "change-flow-run-state", state = "CANCELLED", name = "Maintenance", message = "Stopped for maintenance" },
  ]
  actions_on_resolve = [
    { type = "send-notification", block_document_id = "00000000-0000-4000-8000-000000000001", body = "Maintenance over: {{ event.occurred }}" },
    { type = "call-webhook", block_document_id = "00000000-0000-4000-8000-000000000002", payload = jsonencode({ text = "{{ event.event }}" }) },
    { type = "do-nothing" },
  ]
}
`, name, dep)
	addr := "prefect_automation.test"
	var id string
	resource.ParallelTest(t, resource.TestCase{
		ProtoV6ProviderFactories: protoV6(),
		Steps: []resource.TestStep{
			{
				Config:           config,
				ConfigPlanChecks: resource.ConfigPlanChecks{PostApplyPostRefresh: []plancheck.PlanCheck{plancheck.ExpectEmptyPlan()}},
				ConfigStateChecks: []statecheck.StateCheck{
					statecheck.ExpectKnownValue(addr, tfjsonpath.New("actions").AtSliceIndex(0).AtMapKey("source"), knownvalue.StringExact("selected")),
					statecheck.ExpectKnownValue(addr, tfjsonpath.New("actions").AtSliceIndex(1).AtMapKey("deployment_id"), knownvalue.Null()),
					statecheck.ExpectKnownValue(addr, tfjsonpath.New("actions_on_trigger").AtSliceIndex(0).AtMapKey("source"), knownvalue.Null()),
					statecheck.ExpectKnownValue(addr, tfjsonpath.New("actions_on_resolve").AtSliceIndex(0).AtMapKey("subject"),
						knownvalue.StringExact("Prefect automated notification")),
				},
				Check: resource.ComposeAggregateTestCheckFunc(
					saveID(addr, &id),
					resource.TestCheckResourceAttrPair(addr, "actions.2.work_pool_id", "prefect_work_pool.p", "id"),
					resource.TestCheckResourceAttrPair(addr, "actions.6.automation_id", "prefect_automation.target", "id"),
					checkAutomation(&id, func(a prefect.Automation) error {
						if len(a.Actions) != 8 || len(a.ActionsOnTrigger) != 4 || len(a.ActionsOnResolve) != 3 ||
							a.Actions[4]["source"] != "selected" || a.ActionsOnResolve[1]["payload"] != `{"text":"{{ event.event }}"}` {
							return fmt.Errorf("automation = %+v", a)
						}
						return nil
					}),
				),
			},
			{ResourceName: addr, ImportState: true, ImportStateVerify: true},
		},
	})
}

func TestAccResource_automationValidation(t *testing.T) {
	config := func(trigger, actions string) string {
		return fmt.Sprintf(`
resource "prefect_automation" "bad" {
  name    = "never-created"
  trigger = %s
  actions = [%s]
}
`, trigger, actions)
	}
	event := `{ event = { posture = "Reactive", expect = ["acme.x"] } }`
	dep := `"00000000-0000-4000-8000-000000000001"`
	steps := []struct{ trigger, actions, want string }{
		{`{}`, `{ type = "do-nothing" }`, `exactly one of event, metric, compound or sequence; it sets none`},
		{`{ event = { posture = "Reactive" }, sequence = { triggers = [] } }`, ``, `it sets event and sequence`},
		{event, `{ type = "run-deployment" }`, `"run-deployment" action with source = "selected" \(the default\)[\s\S]*needs deployment_id`},
		{event, `{ type = "pause-deployment", source = "inferred", deployment_id = ` + dep + ` }`, `deployment_id must not be set`},
		{event, `{ type = "change-flow-run-state", state = "Crashed" }`, `value must be one of[\s\S]*"CRASHED"`},
		{event, `{ type = "change-flow-run-state" }`, `"change-flow-run-state" action needs state`},
		{event, `{ type = "do-nothing", deployment_id = ` + dep + ` }`, `"do-nothing" action does not use[\s\S]*deployment_id`},
		{event, `{ type = "send-notification", block_document_id = ` + dep + ` }`, `"send-notification" action needs body`},
		{event, `{ type = "run-deployment", deployment_id = ` + dep + `, parameters = "[1]" }`, `must be a JSON object`},
		{`{ event = { posture = "Proactive", within = 5 } }`, ``, `within = 5 is shorter`},
		{`{ compound = { require = 3, triggers = [` + event + `, ` + event + `] } }`, ``, `require must be between 1 and 2`},
		{`{ sequence = { triggers = [{}] } }`, ``, `sets neither`},
	}
	var ts []resource.TestStep
	for _, s := range steps {
		ts = append(ts, resource.TestStep{Config: config(s.trigger, s.actions), PlanOnly: true, ExpectError: wrappedPattern(s.want)})
	}
	// Caught by the server, with a hint: metric triggers exist only on Prefect Cloud.
	ts = append(ts, resource.TestStep{
		Config: config(`{ metric = { metric = { name = "duration", operator = ">", threshold = 60, range = 300, firing_for = 60 } } }`,
			`{ type = "do-nothing" }`),
		ExpectError: wrappedPattern(`Unable to create automation "never-created"[\s\S]*uses metric triggers, which only Prefect Cloud has`),
	})
	resource.ParallelTest(t, resource.TestCase{ProtoV6ProviderFactories: protoV6(), Steps: ts})
}

// wrappedPattern compiles a pattern of an error message that terraform may wrap:
// each space matches any whitespace.
func wrappedPattern(pattern string) *regexp.Regexp {
	return regexp.MustCompile(strings.ReplaceAll(pattern, " ", `\s+`))
}

// testDeployment creates a flow and a deployment of it for run-deployment
// actions, deleted when the test ends.
func testDeployment(t *testing.T) string {
	t.Helper()
	c := apiClient(t)
	flow, err := c.CreateFlow(t.Context(), uniqueName(t, "flow"), nil)
	if err != nil {
		t.Fatalf("create a flow: %v", err)
	}
	t.Cleanup(func() { _ = c.DeleteFlow(context.Background(), flow.ID) })
	d, err := c.CreateDeployment(t.Context(), prefect.DeploymentCreate{Name: "orders", FlowID: flow.ID})
	if err != nil {
		t.Fatalf("create a deployment: %v", err)
	}
	return d.ID
}

// saveID stores the resource's id for checks and out-of-band changes.
func saveID(addr string, id *string) resource.TestCheckFunc {
	return func(s *terraformState) error {
		rs, ok := s.RootModule().Resources[addr]
		if !ok {
			return fmt.Errorf("%s is not in state", addr)
		}
		*id = rs.Primary.ID
		return nil
	}
}

// checkAutomation reads the automation from the server and applies check.
func checkAutomation(id *string, check func(prefect.Automation) error) resource.TestCheckFunc {
	return func(*terraformState) error {
		c, err := prefect.New(prefect.Config{URL: srv.URL})
		if err != nil {
			return err
		}
		a, err := c.ReadAutomation(context.Background(), *id)
		if err != nil {
			return err
		}
		return check(a)
	}
}

// checkAutomationGone checks that destroy deleted the automation.
func checkAutomationGone(id *string) resource.TestCheckFunc {
	return func(*terraformState) error {
		c, err := prefect.New(prefect.Config{URL: srv.URL})
		if err != nil {
			return err
		}
		if _, err := c.ReadAutomation(context.Background(), *id); !prefect.IsNotFound(err) {
			return fmt.Errorf("automation %s after destroy: %v; want not found", *id, err)
		}
		return nil
	}
}
