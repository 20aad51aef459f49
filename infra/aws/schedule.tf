# The dispatch tick: EventBridge Scheduler invokes the function directly with
# the payload {"kind":"tick"}. No retries: the next tick comes within minutes.
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

# The group the function creates its one-time wake-up schedules in
# (PUSHPOOL_SCHEDULER_GROUP); the function may create and delete schedules in
# this group only. Schedules should be created with ActionAfterCompletion
# DELETE so that fired ones do not accumulate.
resource "aws_scheduler_schedule_group" "wakeups" {
  name = "${var.name}-wakeups"
  tags = var.tags
}
