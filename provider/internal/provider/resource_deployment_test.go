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

// deploymentPoolTemplate is a pool whose variables schema types cpu as an
// integer and allows no variables it does not define.
const deploymentPoolTemplate = `jsonencode({
    job_configuration = { command = "{{ command }}", cpu = "{{ cpu }}", env = "{{ env }}" }
    variables = {
      type                 = "object"
      additionalProperties = false
      properties = {
        command = { type = "string" }
        cpu     = { type = "integer", default = 1 }
        env     = { type = "object", additionalProperties = { type = "string" } }
      }
    }
  })`

// deploymentConfig is a pool, a flow and a deployment of it with body.
func deploymentConfig(name, body string) string {
	return fmt.Sprintf(`
resource "prefect_work_pool" "test" {
  name              = %[1]q
  type              = "process"
  base_job_template = %[2]s
}

resource "prefect_flow" "test" {
  name = %[1]q
}

resource "prefect_deployment" "test" {
  name    = %[1]q
  flow_id = prefect_flow.test.id
  %[3]s
}
`, name, deploymentPoolTemplate, body)
}

// The full configuration: JSON spelled unlike the server's answer, a
// parameter written as a Prefect template the server resolves on update, and
// every kind of attribute.
const deploymentFull = `
  description    = "first"
  version        = "v1"
  entrypoint     = "flows/etl.py:nightly"
  path           = "/opt/flows"
  tags           = ["etl", "nightly"]
  work_pool_name = prefect_work_pool.test.name
  job_variables  = <<-EOT
    { "env": {"STAGE": "prod"},   "cpu": 2.0 }
  EOT
  parameters = jsonencode({
    region = "eu"
    label  = { __prefect_kind = "json", value = "\"resolved\"" }
  })
  parameter_openapi_schema = jsonencode({
    type       = "object"
    properties = { region = { type = "string", default = "eu" }, label = { title = "Label" } }
  })
  pull_steps = [
    { type = "git_clone", repository = "https://github.com/acme/flows", branch = "main" },
    { type = "set_working_directory", directory = "/opt/flows" },
    { type = "run_shell_script", script = "make deps", env = { CI = "1" }, stream_output = false },
  ]
  concurrency_limit   = 2
  concurrency_options = { collision_strategy = "CANCEL_NEW" }
`

func TestAccResource_deployment(t *testing.T) {
	name := uniqueName(t, "dep")
	addr := "prefect_deployment.test"
	empty := []plancheck.PlanCheck{plancheck.ExpectEmptyPlan()}
	update := []plancheck.PlanCheck{plancheck.ExpectResourceAction(addr, plancheck.ResourceActionUpdate)}
	var id string
	resource.ParallelTest(t, resource.TestCase{
		ProtoV6ProviderFactories: protoV6(),
		CheckDestroy:             checkDeploymentGone(&id),
		Steps: []resource.TestStep{
			{
				Config: deploymentConfig(name, deploymentFull),
				ConfigStateChecks: []statecheck.StateCheck{
					statecheck.ExpectKnownValue(addr, tfjsonpath.New("work_queue_name"), knownvalue.StringExact("default")),
					statecheck.ExpectKnownValue(addr, tfjsonpath.New("concurrency_limit"), knownvalue.Int64Exact(2)),
					statecheck.ExpectKnownValue(addr, tfjsonpath.New("enforce_parameter_schema"), knownvalue.Bool(true)),
					statecheck.ExpectKnownValue(addr, tfjsonpath.New("pull_steps").AtSliceIndex(2).AtMapKey("env").AtMapKey("CI"), knownvalue.StringExact("1")),
				},
				ConfigPlanChecks: resource.ConfigPlanChecks{PostApplyPostRefresh: empty},
				Check: resource.ComposeAggregateTestCheckFunc(
					func(s *terraformState) error { id = s.RootModule().Resources[addr].Primary.ID; return nil },
					checkDeployment(&id, func(d prefect.Deployment) error {
						step, _ := d.PullSteps[0]["prefect.deployments.steps.git_clone"].(map[string]any)
						if step["repository"] != "https://github.com/acme/flows" || len(d.PullSteps) != 3 {
							return fmt.Errorf("pull steps = %v; want git_clone, set_working_directory, run_shell_script", d.PullSteps)
						}
						if d.GlobalConcurrencyLimit == nil || d.GlobalConcurrencyLimit.Limit != 2 || d.ConcurrencyOptions.CollisionStrategy != "CANCEL_NEW" {
							return fmt.Errorf("concurrency = %+v %+v; want limit 2, CANCEL_NEW", d.GlobalConcurrencyLimit, d.ConcurrencyOptions)
						}
						return nil
					}),
				),
			},
			{
				ResourceName:      addr,
				ImportState:       true,
				ImportStateVerify: true,
				// State keeps the configured spelling of JSON; an import stores
				// the server's. The next step shows they are equal: its import
				// plans no change.
				ImportStateVerifyIgnore: []string{"job_variables", "parameters", "parameter_openapi_schema"},
			},
			{
				Config: deploymentConfig(name, deploymentFull), ResourceName: addr,
				ImportState: true, ImportStateKind: resource.ImportBlockWithID,
				ImportStateIdFunc: func(*terraformState) (string, error) { return id, nil },
				ImportPlanChecks: resource.ImportPlanChecks{PreApply: []plancheck.PlanCheck{
					plancheck.ExpectResourceAction(addr, plancheck.ResourceActionNoop),
				}},
			},
			{
				// By flow and deployment name.
				ResourceName: addr, ImportState: true, ImportStateVerify: true, ImportStateId: name + "/" + name,
				ImportStateVerifyIgnore: []string{"job_variables", "parameters", "parameter_openapi_schema"},
			},
			{
				// Update: most things changed or cleared; the server resolves the
				// templated parameter, which is not a change.
				Config: deploymentConfig(name, `
  work_pool_name  = prefect_work_pool.test.name
  work_queue_name = "other"
  paused          = true
  tags            = ["etl"]
  job_variables   = jsonencode({ cpu = 4 })
  parameters = jsonencode({
    region = "eu"
    label  = { __prefect_kind = "json", value = "\"resolved\"" }
  })
  parameter_openapi_schema = jsonencode({
    type       = "object"
    properties = { region = { type = "string", default = "eu" }, label = { title = "Label" } }
  })
`),
				ConfigPlanChecks: resource.ConfigPlanChecks{PreApply: update, PostApplyPostRefresh: empty},
				Check: checkDeployment(&id, func(d prefect.Deployment) error {
					if d.Description != nil || d.Version != nil || d.Entrypoint != nil || d.Path != nil || !d.Paused ||
						len(d.PullSteps) != 0 || d.GlobalConcurrencyLimit != nil || d.ConcurrencyOptions != nil ||
						derefString(d.WorkQueueName) != "other" || d.Parameters["label"] != "resolved" {
						return fmt.Errorf("deployment after update = %+v; want cleared fields, paused, queue other, the label resolved", d)
					}
					return nil
				}),
			},
			{
				// Imported after the server resolved the template: still no change.
				Config: deploymentConfig(name, `
  work_pool_name  = prefect_work_pool.test.name
  work_queue_name = "other"
  paused          = true
  tags            = ["etl"]
  job_variables   = jsonencode({ cpu = 4 })
  parameters = jsonencode({
    region = "eu"
    label  = { __prefect_kind = "json", value = "\"resolved\"" }
  })
  parameter_openapi_schema = jsonencode({
    type       = "object"
    properties = { region = { type = "string", default = "eu" }, label = { title = "Label" } }
  })
`), ResourceName: addr,
				ImportState: true, ImportStateKind: resource.ImportBlockWithID,
				ImportStateIdFunc: func(*terraformState) (string, error) { return id, nil },
				ImportPlanChecks: resource.ImportPlanChecks{PreApply: []plancheck.PlanCheck{
					plancheck.ExpectResourceAction(addr, plancheck.ResourceActionNoop),
				}},
			},
			{
				// Drift: changed outside Terraform, shown as an update and corrected.
				PreConfig: outOfBand(t, "change the deployment", func(ctx context.Context, c *prefect.Client) error {
					return c.UpdateDeployment(ctx, id, prefect.DeploymentUpdate{Description: ptr("ui"), Paused: ptr(false),
						JobVariables: map[string]any{"cpu": 9}, ConcurrencyLimit: ptr(5), Tags: []string{"ui"}})
				}),
				Config:           deploymentConfig(name, deploymentFull),
				ConfigPlanChecks: resource.ConfigPlanChecks{PreApply: update, PostApplyPostRefresh: empty},
				Check: checkDeployment(&id, func(d prefect.Deployment) error {
					if derefString(d.Description) != "first" || d.Paused || d.GlobalConcurrencyLimit == nil || d.GlobalConcurrencyLimit.Limit != 2 ||
						!jsonattr.EqualValues(d.JobVariables["cpu"], 2) || derefString(d.WorkQueueName) != "default" {
						return fmt.Errorf("deployment after correcting drift = %+v; want description first, unpaused, limit 2, cpu 2, queue default", d)
					}
					return nil
				}),
			},
			{
				// Deleted outside Terraform: gone from state on refresh, created again.
				PreConfig: outOfBand(t, "delete the deployment", func(ctx context.Context, c *prefect.Client) error {
					return c.DeleteDeployment(ctx, id)
				}),
				Config: deploymentConfig(name, deploymentFull),
				ConfigPlanChecks: resource.ConfigPlanChecks{
					PreApply:             []plancheck.PlanCheck{plancheck.ExpectResourceAction(addr, plancheck.ResourceActionCreate)},
					PostApplyPostRefresh: empty,
				},
				Check: func(s *terraformState) error { id = s.RootModule().Resources[addr].Primary.ID; return nil },
			},
		},
	})
}

func TestAccResource_deploymentJobVariablesAtPlan(t *testing.T) {
	name := uniqueName(t, "dep")
	withVars := func(vars string) string {
		return deploymentConfig(name, "work_pool_name = prefect_work_pool.test.name\n  job_variables = jsonencode("+vars+")")
	}
	resource.ParallelTest(t, resource.TestCase{
		ProtoV6ProviderFactories: protoV6(),
		Steps: []resource.TestStep{
			{
				// The pool does not exist at the first plan: the server checks at apply.
				Config:           withVars(`{ cpu = 2 }`),
				ConfigPlanChecks: resource.ConfigPlanChecks{PostApplyPostRefresh: []plancheck.PlanCheck{plancheck.ExpectEmptyPlan()}},
			},
			{
				Config:   withVars(`{ cpu = "lots" }`),
				PlanOnly: true,
				ExpectError: wrapped(`Invalid job variables for work pool "`+name+`"`, `job variable "cpu" of deployment`,
					`does not fit work pool`, `want integer`),
			},
			{
				Config:      withVars(`{ cpu = 2, gpu = 1 }`),
				PlanOnly:    true,
				ExpectError: wrapped(`Invalid job variables for work pool`, `job variable "gpu"`, `does not define it`),
			},
			{
				// Valid variables plan as an update.
				Config: withVars(`{ cpu = 3, env = { A = "b" } }`),
				ConfigPlanChecks: resource.ConfigPlanChecks{
					PreApply:             []plancheck.PlanCheck{plancheck.ExpectResourceAction("prefect_deployment.test", plancheck.ResourceActionUpdate)},
					PostApplyPostRefresh: []plancheck.PlanCheck{plancheck.ExpectEmptyPlan()},
				},
			},
		},
	})
}

// TestAccResource_deploymentJobVariablesEmptyTemplate is a pool created
// without a base job template (the server stores {}) and a deployment with
// job variables on it: the server checks nothing, so neither does the plan,
// and plan, apply, update and destroy succeed.
func TestAccResource_deploymentJobVariablesEmptyTemplate(t *testing.T) {
	name := uniqueName(t, "dep")
	pool := fmt.Sprintf(`
resource "prefect_work_pool" "test" {
  name = %[1]q
  type = "process"
}

resource "prefect_flow" "test" {
  name = %[1]q
}
`, name)
	withDeployment := func(vars string) string {
		return pool + fmt.Sprintf(`
resource "prefect_deployment" "test" {
  name           = %q
  flow_id        = prefect_flow.test.id
  work_pool_name = prefect_work_pool.test.name
  job_variables  = jsonencode(%s)
}
`, name, vars)
	}
	empty := resource.ConfigPlanChecks{PostApplyPostRefresh: []plancheck.PlanCheck{plancheck.ExpectEmptyPlan()}}
	resource.ParallelTest(t, resource.TestCase{
		ProtoV6ProviderFactories: protoV6(),
		Steps: []resource.TestStep{
			{Config: pool, ConfigPlanChecks: empty},
			{
				// The pool exists at this plan, with the empty template.
				Config:            withDeployment(`{ cpu = 2, image = "etl:1" }`),
				ConfigPlanChecks:  empty,
				ConfigStateChecks: []statecheck.StateCheck{statecheck.ExpectKnownValue("prefect_work_pool.test", tfjsonpath.New("base_job_template"), knownvalue.StringExact("{}"))},
			},
			{Config: withDeployment(`{ cpu = "lots", anything = { goes = true } }`), ConfigPlanChecks: empty},
			{Config: withDeployment(`{ cpu = 1 }`), Destroy: true},
		},
	})
}

// poolTemplateConfig is a pool whose variables schema allows exactly the
// given integer variables, each rendered into the job, a flow, and a
// deployment on the pool with job variables vars.
func poolTemplateConfig(name string, variables []string, vars string) string {
	props, config := make([]string, len(variables)), make([]string, len(variables))
	for i, v := range variables {
		props[i] = fmt.Sprintf("%s = { type = \"integer\" }", v)
		config[i] = fmt.Sprintf("%[1]s = \"{{ %[1]s }}\"", v)
	}
	return fmt.Sprintf(`
resource "prefect_work_pool" "test" {
  name = %[1]q
  type = "process"
  base_job_template = jsonencode({
    job_configuration = { %[2]s }
    variables = { type = "object", additionalProperties = false, properties = { %[3]s } }
  })
}

resource "prefect_flow" "test" {
  name = %[1]q
}

resource "prefect_deployment" "test" {
  name           = %[1]q
  flow_id        = prefect_flow.test.id
  work_pool_name = prefect_work_pool.test.name
  job_variables  = jsonencode(%[4]s)
}
`, name, strings.Join(config, ", "), strings.Join(props, ", "), vars)
}

// TestAccResource_deploymentJobVariablesPoolChangedTogether changes a pool's
// base job template and a deployment's job variables in one apply: the plan
// checks the variables against the template the plan gives the pool, not the
// server's old one, and leaves a template known only after apply to the
// server.
func TestAccResource_deploymentJobVariablesPoolChangedTogether(t *testing.T) {
	name := uniqueName(t, "dep")
	empty := resource.ConfigPlanChecks{PostApplyPostRefresh: []plancheck.PlanCheck{plancheck.ExpectEmptyPlan()}}
	// The template's variables come from a terraform_data whose output is
	// unknown when its input changes.
	unknownTemplate := func(input, vars string) string {
		return strings.Replace(poolTemplateConfig(name, []string{"cpu"}, vars),
			`properties = { cpu = { type = "integer" } }`,
			`properties = merge({ cpu = { type = "integer" } }, { for v in terraform_data.vars.output : v => { type = "integer" } })`, 1) +
			fmt.Sprintf(`
resource "terraform_data" "vars" {
  input = %s
}
`, input)
	}
	resource.ParallelTest(t, resource.TestCase{
		ProtoV6ProviderFactories: protoV6(),
		Steps: []resource.TestStep{
			{Config: poolTemplateConfig(name, []string{"cpu"}, `{ cpu = 1 }`), ConfigPlanChecks: empty},
			{
				// gpu is defined only by the template this apply sets.
				Config: poolTemplateConfig(name, []string{"cpu", "gpu"}, `{ cpu = 1, gpu = 1 }`),
				ConfigPlanChecks: resource.ConfigPlanChecks{
					PreApply: []plancheck.PlanCheck{
						plancheck.ExpectResourceAction("prefect_work_pool.test", plancheck.ResourceActionUpdate),
						plancheck.ExpectResourceAction("prefect_deployment.test", plancheck.ResourceActionUpdate),
					},
					PostApplyPostRefresh: empty.PostApplyPostRefresh,
				},
			},
			{
				// The planned template still decides: mem is not in it.
				Config:   poolTemplateConfig(name, []string{"cpu"}, `{ cpu = 1, mem = 2 }`),
				PlanOnly: true,
				ExpectError: wrapped(`Invalid job variables for work pool "`+name+`"`, `job variable "mem"`,
					`with the base job template this plan gives it`),
			},
			{Config: unknownTemplate(`["gpu"]`, `{ cpu = 1, gpu = 2 }`), ConfigPlanChecks: empty},
			{
				// mem is in the template only once terraform_data is applied:
				// the plan leaves the check to the apply.
				Config: unknownTemplate(`["gpu", "mem"]`, `{ cpu = 1, gpu = 2, mem = 4 }`),
				ConfigPlanChecks: resource.ConfigPlanChecks{
					PreApply: []plancheck.PlanCheck{
						plancheck.ExpectUnknownValue("prefect_work_pool.test", tfjsonpath.New("base_job_template")),
					},
					PostApplyPostRefresh: empty.PostApplyPostRefresh,
				},
			},
		},
	})
}

func TestAccResource_deploymentExisting(t *testing.T) {
	name := uniqueName(t, "dep")
	resource.ParallelTest(t, resource.TestCase{
		ProtoV6ProviderFactories: protoV6(),
		Steps: []resource.TestStep{
			{
				Config:      deploymentConfig(name, `pull_steps = [{ type = "git_clone", directory = "/x" }]`),
				PlanOnly:    true,
				ExpectError: wrapped("directory does not apply to a git_clone pull step", "A git_clone pull step needs repository"),
			},
			{Config: deploymentConfig(name, "")},
			{
				// A second resource for the same flow and name is refused with the fix.
				Config: deploymentConfig(name, "") + `
resource "prefect_deployment" "dup" {
  name    = prefect_deployment.test.name
  flow_id = prefect_flow.test.id
}`,
				ExpectError: wrapped(`already has a deployment`, "terraform import"),
			},
		},
	})
}

func TestAccDataSource_deployment(t *testing.T) {
	name := uniqueName(t, "dep")
	config := deploymentConfig(name, `tags = ["etl"]`+"\n  work_pool_name = prefect_work_pool.test.name") + `
data "prefect_deployment" "by_id" {
  id = prefect_deployment.test.id
}

data "prefect_deployment" "by_name" {
  name      = prefect_deployment.test.name
  flow_name = prefect_flow.test.name
}
`
	resource.ParallelTest(t, resource.TestCase{
		ProtoV6ProviderFactories: protoV6(),
		Steps: []resource.TestStep{{
			Config:      `data "prefect_deployment" "x" { name = "only-a-name" }`,
			ExpectError: wrapped("must be configured together", "name,flow_name"),
		}, {
			Config: config,
			Check: resource.ComposeAggregateTestCheckFunc(
				resource.TestCheckResourceAttrPair("data.prefect_deployment.by_id", "name", "prefect_deployment.test", "name"),
				resource.TestCheckResourceAttr("data.prefect_deployment.by_id", "flow_name", name),
				resource.TestCheckResourceAttr("data.prefect_deployment.by_id", "work_queue_name", "default"),
				resource.TestCheckResourceAttrPair("data.prefect_deployment.by_name", "id", "prefect_deployment.test", "id"),
				resource.TestCheckResourceAttr("data.prefect_deployment.by_name", "tags.#", "1"),
				resource.TestCheckResourceAttr("data.prefect_deployment.by_name", "job_variables", "{}"),
			),
		}},
	})
}

// wrapped matches the parts in order, in a message terraform may have
// wrapped at any space.
func wrapped(parts ...string) *regexp.Regexp {
	quoted := make([]string, len(parts))
	for i, p := range parts {
		quoted[i] = strings.ReplaceAll(regexp.QuoteMeta(p), " ", `\s+`)
	}
	return regexp.MustCompile(`(?s)` + strings.Join(quoted, ".*"))
}

// checkDeployment reads the deployment from the server and applies check.
func checkDeployment(id *string, check func(prefect.Deployment) error) resource.TestCheckFunc {
	return func(*terraformState) error {
		c, err := prefect.New(prefect.Config{URL: srv.URL})
		if err != nil {
			return err
		}
		d, err := c.ReadDeployment(context.Background(), *id)
		if err != nil {
			return err
		}
		return check(d)
	}
}

// checkDeploymentGone checks that destroy deleted the deployment.
func checkDeploymentGone(id *string) resource.TestCheckFunc {
	return func(*terraformState) error {
		if *id == "" {
			return nil // never created
		}
		c, err := prefect.New(prefect.Config{URL: srv.URL})
		if err != nil {
			return err
		}
		if _, err := c.ReadDeployment(context.Background(), *id); !prefect.IsNotFound(err) {
			return fmt.Errorf("deployment %s after destroy: %v; want not found", *id, err)
		}
		return nil
	}
}
