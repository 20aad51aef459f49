# The fan-out queue: shards of a busy tick, delayed wake-ups (DelaySeconds up
# to 15 minutes; runs due later are left to later ticks) and, with
# ecs_events_target = "queue", ECS task state changes. Messages that keep
# failing land in the dead-letter queue after queue_max_receive_count tries.

resource "aws_sqs_queue" "dead_letter" {
  name                      = "${var.name}-dlq"
  message_retention_seconds = 1209600 # 14 days, the maximum
  sqs_managed_sse_enabled   = true
  tags                      = var.tags
}

resource "aws_sqs_queue" "fanout" {
  name                       = "${var.name}-queue"
  visibility_timeout_seconds = local.queue_visibility_timeout
  message_retention_seconds  = 345600 # 4 days
  sqs_managed_sse_enabled    = true
  redrive_policy = jsonencode({
    deadLetterTargetArn = aws_sqs_queue.dead_letter.arn
    maxReceiveCount     = var.queue_max_receive_count
  })
  tags = var.tags
}

resource "aws_sqs_queue_redrive_allow_policy" "dead_letter" {
  queue_url = aws_sqs_queue.dead_letter.id
  redrive_allow_policy = jsonencode({
    redrivePermission = "byQueue"
    sourceQueueArns   = [aws_sqs_queue.fanout.arn]
  })
}

# Failed records are reported one by one (ReportBatchItemFailures), so one bad
# message does not make a whole batch retry.
resource "aws_lambda_event_source_mapping" "fanout" {
  event_source_arn                   = aws_sqs_queue.fanout.arn
  function_name                      = aws_lambda_function.this.arn
  batch_size                         = var.queue_batch_size
  maximum_batching_window_in_seconds = 0
  function_response_types            = ["ReportBatchItemFailures"]

  dynamic "scaling_config" {
    for_each = var.queue_max_concurrency == null ? [] : [var.queue_max_concurrency]
    content {
      maximum_concurrency = scaling_config.value
    }
  }

  tags = var.tags
}
