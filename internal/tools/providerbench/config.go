package main

import "fmt"

// configuration is the measured Terraform configuration: units times a work
// pool with a base job template, a work queue, a flow, four deployments on
// the pool (job variables checked against its template at plan time), two
// schedules and a variable; 10 resources a unit.
func configuration(endpoint string, units int) string {
	return fmt.Sprintf(`terraform {
  required_providers {
    prefect = { source = "pushpool/prefect" }
  }
}

provider "prefect" {
  endpoint = %q
}

locals {
  units = %d
}

resource "prefect_work_pool" "pool" {
  count = local.units
  name  = "bench-pool-${count.index}"
  type  = "process"
  base_job_template = jsonencode({
    job_configuration = { command = "{{ command }}", env = "{{ env }}" }
    variables = {
      type       = "object"
      properties = {
        command = { type = "string" }
        env     = { type = "object", additionalProperties = { type = "string" } }
      }
    }
  })
}

resource "prefect_work_queue" "queue" {
  count          = local.units
  name           = "high"
  work_pool_name = prefect_work_pool.pool[count.index].name
  priority       = 1
}

resource "prefect_flow" "flow" {
  count = local.units
  name  = "bench-flow-${count.index}"
  tags  = ["bench"]
}

resource "prefect_deployment" "deployment" {
  count           = local.units * 4
  name            = "bench-${count.index}"
  flow_id         = prefect_flow.flow[floor(count.index / 4)].id
  work_pool_name  = prefect_work_pool.pool[floor(count.index / 4)].name
  work_queue_name = prefect_work_queue.queue[floor(count.index / 4)].name
  entrypoint      = "flows/etl.py:main"
  job_variables   = jsonencode({ env = { STAGE = "bench" } })
  parameters      = jsonencode({ n = count.index })
}

resource "prefect_deployment_schedule" "schedule" {
  count         = local.units * 2
  deployment_id = prefect_deployment.deployment[count.index * 2].id
  cron          = "0 ${count.index %% 24} * * *"
  active        = false
}

resource "prefect_variable" "variable" {
  count = local.units
  name  = "bench_variable_${count.index}"
  value = { unit = count.index }
}
`, endpoint, units)
}
