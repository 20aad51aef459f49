# A push work pool served by pushpool on AWS ECS, a scheduled deployment,
# an event-driven deployment run with templated parameters, and Prefect's
# zombie flow detection. Deploy the dispatcher itself with infra/aws.

data "prefect_pushpool_base_job_templates" "this" {}

locals {
  ecs_template = jsondecode(data.prefect_pushpool_base_job_templates.this.ecs)
}

# Starts from pushpool's ECS template (Prefect's ECS worker template) with a
# few defaults changed; every deployment may still override them.
resource "prefect_work_pool" "ecs" {
  name        = "${var.name_prefix}-ecs-push"
  type        = "ecs:push"
  description = "Flow runs on ECS Fargate, dispatched by pushpool: no worker to run."
  base_job_template = jsonencode(merge(local.ecs_template, {
    variables = merge(local.ecs_template.variables, {
      properties = merge(local.ecs_template.variables.properties, {
        cluster = merge(local.ecs_template.variables.properties.cluster, { default = var.ecs_cluster })
        image   = merge(local.ecs_template.variables.properties.image, { default = var.image })
        cpu     = merge(local.ecs_template.variables.properties.cpu, { default = 512 })
        memory  = merge(local.ecs_template.variables.properties.memory, { default = 1024 })
      })
    })
  }))
}

resource "prefect_flow" "etl" {
  name = "${var.name_prefix}-nightly-etl"
}

resource "prefect_deployment" "etl" {
  name           = "prod"
  flow_id        = prefect_flow.etl.id
  entrypoint     = "flows/etl.py:nightly"
  work_pool_name = prefect_work_pool.ecs.name
  tags           = ["etl", "prod"]

  # Checked at plan time against the pool's variables schema and rendered
  # as the dispatcher renders it: cpu = "lots" fails `terraform plan`.
  job_variables = jsonencode({
    cpu    = 1024
    memory = 4096
    env    = { STAGE = "prod" }
  })
  parameters = jsonencode({ mode = "full" })

  pull_steps = [
    {
      type       = "git_clone"
      repository = var.flows_repository
      branch     = "main"
    },
  ]
}

resource "prefect_deployment_schedule" "nightly" {
  deployment_id = prefect_deployment.etl.id
  cron          = "0 2 * * *"
  timezone      = "Europe/Berlin"
}

resource "prefect_flow" "orders" {
  name = "${var.name_prefix}-process-order"
}

resource "prefect_deployment" "orders" {
  name           = "prod"
  flow_id        = prefect_flow.orders.id
  entrypoint     = "flows/orders.py:process_order"
  work_pool_name = prefect_work_pool.ecs.name
  job_variables  = jsonencode({ cpu = 256, memory = 512 })
  pull_steps = [
    { type = "git_clone", repository = var.flows_repository, branch = "main" },
  ]
}

# Every order event runs the orders deployment. The flow gets the order id
# and the event id; it reads the full event from /events/filter rather than
# receiving it as a parameter (Prefect caps parameters at 512 KB).
resource "prefect_automation" "on_order" {
  name        = "${var.name_prefix}-process-order"
  description = "Runs the order flow for every order placed"

  trigger = {
    event = {
      posture = "Reactive"
      expect  = ["acme.order.placed"]
      match   = jsonencode({ "prefect.resource.id" = "acme.order.*" })
    }
  }

  actions = [
    {
      type          = "run-deployment"
      source        = "selected"
      deployment_id = prefect_deployment.orders.id
      parameters = jsonencode({
        order_id = "{{ event.resource.id }}"
        event_id = "{{ event.id }}"
      })
    },
  ]
}

# Prefect's zombie flow detection: a run that sent a heartbeat and then
# neither another heartbeat nor a final state within 90 seconds is crashed.
# pushpool's reconciler does the same from the dispatcher's side; the
# automation also covers runs on pools pushpool does not serve.
resource "prefect_automation" "crash_zombie_flows" {
  name = "${var.name_prefix}-crash-zombie-flows"

  trigger = {
    event = {
      posture = "Proactive"
      after   = ["prefect.flow-run.heartbeat"]
      expect = [
        "prefect.flow-run.heartbeat",
        "prefect.flow-run.Completed",
        "prefect.flow-run.Failed",
        "prefect.flow-run.Cancelled",
        "prefect.flow-run.Crashed",
      ]
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
