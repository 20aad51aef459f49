# Run a deployment for each order event, passing event data to the flow run
# with Jinja templates. Unset trigger values (threshold 1, within 0) are the
# server's defaults and are planned as such.
resource "prefect_automation" "on_order" {
  name        = "process-order"
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
      deployment_id = var.orders_deployment_id # e.g. prefect_deployment.orders.id
      parameters = jsonencode({
        order_id = "{{ event.resource.id }}"
        event_id = "{{ event.id }}"
      })
      job_variables = jsonencode({ env = { ORDER_SOURCE = "automation" } })
    },
  ]
}

# Prefect's zombie flow detection: a flow run that sent a heartbeat and then
# neither another heartbeat nor a final state within 90 seconds is crashed.
# Runs emit heartbeats when PREFECT_RUNNER_HEARTBEAT_FREQUENCY is set (>= 30).
resource "prefect_automation" "crash_zombie_flows" {
  name = "crash-zombie-flows"

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

# Pause the work pool when two flow runs of the ETL flow fail or crash within
# ten minutes, and notify; resume it when the trigger resolves.
resource "prefect_automation" "etl_circuit_breaker" {
  name = "etl-circuit-breaker"

  trigger = {
    compound = {
      require = "any"
      within  = 600
      triggers = [
        for state in ["Failed", "Crashed"] : {
          event = {
            posture       = "Reactive"
            expect        = ["prefect.flow-run.${state}"]
            match         = jsonencode({ "prefect.resource.id" = "prefect.flow-run.*" })
            match_related = jsonencode({ "prefect.resource.role" = "flow", "prefect.resource.name" = "etl" })
            threshold     = 2
            within        = 600
          }
        }
      ]
    }
  }

  actions_on_trigger = [
    { type = "pause-work-pool", work_pool_id = prefect_work_pool.ecs.id },
    {
      type              = "send-notification"
      block_document_id = var.slack_webhook_block_id
      subject           = "ETL paused"
      body              = "{{ event.resource['prefect.resource.name'] }} entered {{ event.event }}; work pool paused."
    },
  ]
  actions_on_resolve = [
    { type = "resume-work-pool", work_pool_id = prefect_work_pool.ecs.id },
  ]
}

# Call a webhook when a flow run goes Pending, Running and Completed in order
# within five minutes.
resource "prefect_automation" "fast_runs" {
  name    = "fast-runs"
  enabled = false

  trigger = {
    sequence = {
      within = 300
      triggers = [
        for state in ["Pending", "Running", "Completed"] : {
          event = {
            posture  = "Reactive"
            expect   = ["prefect.flow-run.${state}"]
            for_each = ["prefect.resource.id"]
          }
        }
      ]
    }
  }

  actions = [
    {
      type              = "call-webhook"
      block_document_id = var.webhook_block_id
      payload           = jsonencode({ flow_run = "{{ event.resource.id }}", at = "{{ event.occurred }}" })
    },
  ]
}
