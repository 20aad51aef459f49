data "aws_partition" "current" {}
data "aws_region" "current" {}
data "aws_caller_identity" "current" {}

locals {
  partition  = data.aws_partition.current.partition
  region     = data.aws_region.current.region
  account_id = data.aws_caller_identity.current.account_id

  worker_name = coalesce(var.worker_name, var.name)

  # Whether a secret value was given. Only that fact is not secret; count and
  # conditionals may not depend on sensitive values themselves.
  has_prefect_api_key = nonsensitive(var.prefect_api_key != null)
  has_webhook_secret  = nonsensitive(var.webhook_secret != null)

  # Null when the Prefect server takes no API key: the function then gets "".
  prefect_api_key_secret_arn = local.has_prefect_api_key ? aws_secretsmanager_secret.prefect_api_key[0].arn : var.prefect_api_key_secret_arn
  webhook_secret_arn         = var.webhook_secret_arn != null ? var.webhook_secret_arn : aws_secretsmanager_secret.webhook[0].arn

  # The tick interval, when tick_schedule_expression is a rate(): runs due
  # within it (plus a margin) get an SQS wake-up. A cron() expression needs
  # wake_horizon_seconds (the variable's validation says so).
  tick_rate             = try(regex("^rate\\(([0-9]+) (minute|hour|day)s?\\)$", var.tick_schedule_expression), null)
  tick_interval_seconds = local.tick_rate == null ? null : tonumber(local.tick_rate[0]) * { minute = 60, hour = 3600, day = 86400 }[local.tick_rate[1]]
  wake_horizon_seconds  = var.wake_horizon_seconds != null ? var.wake_horizon_seconds : local.tick_interval_seconds + 30

  # How long before the invocation deadline a pass stops claiming runs, so
  # the last submission still has time to finish and be recorded: a tenth
  # of the timeout, between 20 s (the function's default) and 60 s.
  submit_reserve_seconds = var.submit_reserve_seconds != null ? var.submit_reserve_seconds : min(60, max(20, floor(var.timeout_seconds / 10)))

  # What the function reads: functions/lambda/function.go and
  # functions/internal/fnapp. infra/infra_test.go checks these names against
  # the Go code. No secret values here: only ARNs ("" means none).
  contract_environment = {
    PREFECT_API_URL                     = var.prefect_api_url
    PUSHPOOL_POOLS                      = join(",", var.work_pools)
    PUSHPOOL_WORKER_NAME                = local.worker_name
    PUSHPOOL_SHARD_SIZE                 = tostring(var.shard_size)
    PUSHPOOL_WAKE_HORIZON_SECONDS       = tostring(local.wake_horizon_seconds)
    PUSHPOOL_SUBMIT_RESERVE_SECONDS     = tostring(local.submit_reserve_seconds)
    PUSHPOOL_PREFECT_API_KEY_SECRET_ARN = local.prefect_api_key_secret_arn == null ? "" : local.prefect_api_key_secret_arn
    PUSHPOOL_WEBHOOK_SECRET_ARN         = local.webhook_secret_arn
    PUSHPOOL_QUEUE_URL                  = aws_sqs_queue.fanout.url
  }
  function_environment = merge(var.extra_environment, local.contract_environment)

  # The tick's input, as functions/lambda recognises it.
  tick_payload = jsonencode({ pushpool = "tick" })

  queue_visibility_timeout = coalesce(var.queue_visibility_timeout_seconds, var.timeout_seconds + 60)

  cluster_names = [for arn in var.ecs_cluster_arns : element(split("/", arn), 1)]

  # The task definition families the function may run and register into.
  # Without a family in the template, pushpool registers
  # prefect_<work pool>_<deployment id, else flow id> (dispatch/backend/ecs,
  # as Prefect's ECS worker): both ids are UUIDs, so the default matches
  # exactly 36 characters after the pool's prefix, and pool "a" does not
  # reach the families of pool "a_b". A pool name holding characters a family
  # cannot ("prod.ecs") is written with each run of them as one hyphen, as
  # pushpool registers it.
  ecs_task_definition_families = var.ecs_task_definition_families != null ? var.ecs_task_definition_families : [
    for p in var.work_pools : "prefect_${replace(p, "/[^a-zA-Z0-9_-]+/", "-")}_????????-????-????-????-????????????"
  ]
  # Each family's revisions (family:N, what pushpool passes to RunTask and
  # what a registration creates) and the family itself (a task_definition_arn
  # job variable may name the family's latest revision without a number).
  ecs_task_definition_arns = flatten([
    for f in local.ecs_task_definition_families : [
      "arn:${local.partition}:ecs:${local.region}:${local.account_id}:task-definition/${f}",
      "arn:${local.partition}:ecs:${local.region}:${local.account_id}:task-definition/${f}:*",
    ]
  ])
  passable_roles = distinct(concat(var.ecs_task_role_arns, var.ecs_execution_role_arns))

  ecs_events_to_queue    = var.ecs_events_enabled && var.ecs_events_target == "queue"
  ecs_events_to_function = var.ecs_events_enabled && var.ecs_events_target == "function"
}

resource "aws_cloudwatch_log_group" "function" {
  name              = "/aws/lambda/${var.name}"
  retention_in_days = var.log_retention_days
  tags              = var.tags
}

resource "aws_lambda_function" "this" {
  function_name = var.name
  description   = "pushpool dispatcher for Prefect work pools ${join(", ", var.work_pools)}"
  role          = aws_iam_role.function.arn

  runtime          = "provided.al2023"
  handler          = "bootstrap"
  architectures    = [var.architecture]
  filename         = var.lambda_zip_path
  source_code_hash = filebase64sha256(var.lambda_zip_path)

  timeout                        = var.timeout_seconds
  memory_size                    = var.memory_mb
  reserved_concurrent_executions = var.reserved_concurrency

  environment {
    variables = local.function_environment
  }

  logging_config {
    log_format = "Text"
    log_group  = aws_cloudwatch_log_group.function.name
  }

  dynamic "vpc_config" {
    for_each = length(var.vpc_subnet_ids) > 0 ? [1] : []
    content {
      subnet_ids         = var.vpc_subnet_ids
      security_group_ids = var.vpc_security_group_ids
    }
  }

  tags = var.tags

  # The role must carry its permissions before the first invocation, and the
  # log group must exist so Lambda does not create one without retention.
  depends_on = [aws_iam_role_policy.function, aws_cloudwatch_log_group.function]
}

# Asynchronous invocations are the tick (a missed tick is made up by the next
# one, so no retries) and, with ecs_events_target = "function", task state
# changes (retried twice).
resource "aws_lambda_function_event_invoke_config" "this" {
  function_name                = aws_lambda_function.this.function_name
  maximum_event_age_in_seconds = local.ecs_events_to_function ? 3600 : 120
  maximum_retry_attempts       = local.ecs_events_to_function ? 2 : 0
}
