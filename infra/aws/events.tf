# ECS "Task State Change" events of the given clusters, so the reconciler
# learns of started, crashed and finished tasks without polling DescribeTasks.

resource "aws_cloudwatch_event_rule" "ecs_task_state" {
  count       = var.ecs_events_enabled ? 1 : 0
  name        = "${var.name}-ecs-task-state"
  description = "ECS task state changes for the pushpool dispatcher ${var.name}"
  event_pattern = jsonencode({
    source        = ["aws.ecs"]
    "detail-type" = ["ECS Task State Change"]
    detail = merge(
      { clusterArn = var.ecs_cluster_arns },
      length(var.ecs_event_last_statuses) > 0 ? { lastStatus = var.ecs_event_last_statuses } : {},
    )
  })
  tags = var.tags
}

resource "aws_cloudwatch_event_target" "ecs_task_state" {
  count     = var.ecs_events_enabled ? 1 : 0
  rule      = aws_cloudwatch_event_rule.ecs_task_state[0].name
  target_id = "pushpool"
  arn       = local.ecs_events_to_queue ? aws_sqs_queue.fanout.arn : aws_lambda_function.this.arn

  # Events EventBridge cannot deliver go to the dead-letter queue too.
  dead_letter_config {
    arn = aws_sqs_queue.dead_letter.arn
  }

  retry_policy {
    maximum_event_age_in_seconds = 3600
    maximum_retry_attempts       = 10
  }
}

# Target "queue": EventBridge may send to the fan-out queue, from this rule only.
data "aws_iam_policy_document" "fanout_queue" {
  count = local.ecs_events_to_queue ? 1 : 0

  statement {
    sid       = "EcsTaskStateChangesFromRule"
    effect    = "Allow"
    actions   = ["sqs:SendMessage"]
    resources = [aws_sqs_queue.fanout.arn]
    principals {
      type        = "Service"
      identifiers = ["events.amazonaws.com"]
    }
    condition {
      test     = "ArnEquals"
      variable = "aws:SourceArn"
      values   = [aws_cloudwatch_event_rule.ecs_task_state[0].arn]
    }
  }
}

resource "aws_sqs_queue_policy" "fanout" {
  count     = local.ecs_events_to_queue ? 1 : 0
  queue_url = aws_sqs_queue.fanout.id
  policy    = data.aws_iam_policy_document.fanout_queue[0].json
}

# Either target: EventBridge may put events it could not deliver into the
# dead-letter queue.
data "aws_iam_policy_document" "dead_letter_queue" {
  count = var.ecs_events_enabled ? 1 : 0

  statement {
    sid       = "UndeliverableEcsEventsFromRule"
    effect    = "Allow"
    actions   = ["sqs:SendMessage"]
    resources = [aws_sqs_queue.dead_letter.arn]
    principals {
      type        = "Service"
      identifiers = ["events.amazonaws.com"]
    }
    condition {
      test     = "ArnEquals"
      variable = "aws:SourceArn"
      values   = [aws_cloudwatch_event_rule.ecs_task_state[0].arn]
    }
  }
}

resource "aws_sqs_queue_policy" "dead_letter" {
  count     = var.ecs_events_enabled ? 1 : 0
  queue_url = aws_sqs_queue.dead_letter.id
  policy    = data.aws_iam_policy_document.dead_letter_queue[0].json
}

# Target "function": EventBridge may invoke the function, from this rule only.
resource "aws_lambda_permission" "ecs_task_state" {
  count         = local.ecs_events_to_function ? 1 : 0
  statement_id  = "EcsTaskStateChanges"
  action        = "lambda:InvokeFunction"
  function_name = aws_lambda_function.this.function_name
  principal     = "events.amazonaws.com"
  source_arn    = aws_cloudwatch_event_rule.ecs_task_state[0].arn
}
