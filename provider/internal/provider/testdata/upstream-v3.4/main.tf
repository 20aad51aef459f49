# A configuration written for the prefecthq/prefect provider v3.4 against a
# self-hosted server: one of every resource type both providers have, with
# the attributes users leave unset left unset. terraform.tfstate.tmpl is the
# state that provider writes for it, with [[ ]] placeholders for the ids the
# test creates.

terraform {
  required_providers {
    prefect = {
      source = "prefecthq/prefect"
    }
  }
}

variable "prefix" {
  type = string
}

resource "prefect_work_pool" "test" {
  name = "${var.prefix}-pool"
  type = "process"
  base_job_template = jsonencode({
    job_configuration = { command = "{{ command }}", env = "{{ env }}" }
    variables = {
      type = "object"
      properties = {
        command = { type = "string" }
        env     = { type = "object", additionalProperties = { type = "string" } }
      }
    }
  })
}

resource "prefect_work_pool" "bare" {
  name = "${var.prefix}-bare"
}

resource "prefect_work_queue" "test" {
  name           = "${var.prefix}-queue"
  work_pool_name = prefect_work_pool.test.name
  priority       = 5
}

resource "prefect_flow" "test" {
  name = "${var.prefix}-flow"
  tags = ["nightly", "etl"]
}

resource "prefect_deployment" "test" {
  name            = "prod"
  flow_id         = prefect_flow.test.id
  work_pool_name  = prefect_work_pool.test.name
  work_queue_name = prefect_work_queue.test.name
  entrypoint      = "flows/etl.py:main"
  tags            = ["etl"]
  parameters      = jsonencode({ day = "mon" })
  job_variables   = jsonencode({ env = { STAGE = "prod" } })
  pull_steps = [
    { type = "git_clone", repository = "https://github.com/example/flows.git", branch = "main" },
  ]
  concurrency_limit   = 2
  concurrency_options = { collision_strategy = "ENQUEUE" }
}

resource "prefect_deployment" "minimal" {
  name    = "minimal"
  flow_id = prefect_flow.test.id
}

resource "prefect_deployment_schedule" "cron" {
  deployment_id = prefect_deployment.test.id
  cron          = "0 6 * * 1-5"
  timezone      = "Europe/Berlin"
}

resource "prefect_deployment_schedule" "interval" {
  deployment_id = prefect_deployment.test.id
  active        = false
  interval      = 3600
  anchor_date   = "2024-01-01T00:00:00Z"
}

resource "prefect_deployment_schedule" "rrule" {
  deployment_id = prefect_deployment.test.id
  rrule         = "FREQ=WEEKLY;BYDAY=MO"
  slug          = "weekly"
}

resource "prefect_automation" "test" {
  name = "${var.prefix}-automation"
  trigger = {
    event = {
      posture   = "Reactive"
      expect    = ["prefect.flow-run.Failed"]
      match     = jsonencode({ "prefect.resource.id" = "prefect.flow-run.*" })
      threshold = 1
      within    = 0
    }
  }
  actions = [{
    type          = "run-deployment"
    source        = "selected"
    deployment_id = prefect_deployment.test.id
    parameters    = jsonencode({ day = "tue" })
  }]
}

resource "prefect_automation" "compound" {
  name        = "${var.prefix}-compound"
  description = "zombies"
  trigger = {
    compound = {
      require = "all"
      within  = 300
      triggers = [
        { event = { posture = "Reactive", expect = ["prefect.flow-run.Running"], for_each = ["prefect.resource.id"] } },
        { event = { posture = "Proactive", expect = ["prefect.flow-run.heartbeat"], for_each = ["prefect.resource.id"], within = 90 } },
      ]
    }
  }
  actions = [{
    type    = "change-flow-run-state"
    state   = "CRASHED"
    name    = "Zombie"
    message = "No heartbeat"
  }]
  actions_on_trigger = [{ type = "cancel-flow-run" }]
}

resource "prefect_block" "test" {
  name      = "${var.prefix}-secret"
  type_slug = "secret"
  data      = jsonencode({ value = "s3cr3t" })
}

resource "prefect_global_concurrency_limit" "test" {
  name  = "${var.prefix}-gcl"
  limit = 5
}

resource "prefect_task_run_concurrency_limit" "test" {
  tag               = "${var.prefix}-tag"
  concurrency_limit = 3
}

resource "prefect_variable" "string" {
  name  = "${var.prefix}_string"
  value = "hello"
}

resource "prefect_variable" "object" {
  name  = "${var.prefix}_object"
  value = { retries = 3, regions = ["eu", "us"] }
  tags  = ["config", "b-team"]
}

# Written by the prefecthq/prefect provider before v2.x moved value to a
# dynamic attribute (its schema version 0).
resource "prefect_variable" "legacy" {
  name  = "${var.prefix}_legacy"
  value = "old"
}
