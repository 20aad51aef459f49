# The dispatch tick: EventBridge Scheduler invokes the function directly
# (asynchronously) with the input {"pushpool":"tick"}, which functions/lambda
# takes as a tick. No retries: the next tick comes within minutes.
#
# Runs due before the next tick get a wake-up: an SQS message delayed until
# their due time (at most 15 minutes ahead). The function creates no
# schedules of its own; runs further out are left to later ticks.
resource "aws_scheduler_schedule" "tick" {
  name                = "${var.name}-tick"
  group_name          = "default"
  description         = "pushpool dispatch tick for ${var.name}"
  schedule_expression = var.tick_schedule_expression
  state               = var.tick_enabled ? "ENABLED" : "DISABLED"

  flexible_time_window {
    mode = "OFF"
  }

  target {
    arn      = aws_lambda_function.this.arn
    role_arn = aws_iam_role.tick.arn
    input    = local.tick_payload

    retry_policy {
      maximum_event_age_in_seconds = 60
      maximum_retry_attempts       = 0
    }
  }
}
