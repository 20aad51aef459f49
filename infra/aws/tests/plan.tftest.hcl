# Plans the module against a mocked AWS provider: no credentials, no cloud.
# Run from infra/aws with `terraform init && terraform test` (the providers
# must be installable, or provided by dev_overrides).

mock_provider "aws" {
  mock_data "aws_partition" {
    defaults = {
      partition = "aws"
    }
  }
  mock_data "aws_region" {
    defaults = {
      region = "eu-west-1"
    }
  }
  mock_data "aws_caller_identity" {
    defaults = {
      account_id = "123456789012"
    }
  }
  mock_data "aws_iam_policy_document" {
    defaults = {
      json = "{\"Version\":\"2012-10-17\",\"Statement\":[]}"
    }
  }
}

mock_provider "random" {}

variables {
  lambda_zip_path  = "tests/fixtures/lambda.zip"
  prefect_api_url  = "https://prefect.example.com/api"
  work_pools       = ["ecs-a", "ecs-b"]
  ecs_cluster_arns = ["arn:aws:ecs:eu-west-1:123456789012:cluster/flows"]
}

run "minimal" {
  command = plan

  assert {
    condition     = aws_lambda_function.this.environment[0].variables["PUSHPOOL_POOLS"] == "ecs-a,ecs-b"
    error_message = "PUSHPOOL_POOLS is the comma-joined pools"
  }
  assert {
    condition     = aws_lambda_function.this.environment[0].variables["PUSHPOOL_SHARD_SIZE"] == "20"
    error_message = "PUSHPOOL_SHARD_SIZE defaults to 20"
  }
  assert {
    condition     = aws_lambda_function.this.environment[0].variables["PUSHPOOL_PREFECT_API_KEY_SECRET_ARN"] == ""
    error_message = "no API key: empty secret ARN"
  }
  assert {
    condition     = aws_lambda_function.this.environment[0].variables["PUSHPOOL_WAKE_HORIZON_SECONDS"] == "90"
    error_message = "wake horizon: the one-minute tick interval plus 30 s"
  }
  assert {
    condition     = aws_lambda_function.this.environment[0].variables["PUSHPOOL_SUBMIT_RESERVE_SECONDS"] == "30"
    error_message = "submit reserve: a tenth of the 300 s timeout"
  }
  assert {
    condition     = !contains(keys(aws_lambda_function.this.environment[0].variables), "PUSHPOOL_SCHEDULER_GROUP")
    error_message = "the function creates no one-time schedules"
  }
  assert {
    condition     = jsondecode(aws_scheduler_schedule.tick.target[0].input) == { pushpool = "tick" }
    error_message = "the tick input is {\"pushpool\":\"tick\"}, as functions/lambda reads it"
  }
  assert {
    condition     = aws_lambda_function.this.timeout == 300 && aws_lambda_function.this.runtime == "provided.al2023"
    error_message = "timeout and runtime"
  }
  assert {
    condition     = length(random_password.webhook) == 1 && length(aws_secretsmanager_secret.prefect_api_key) == 0
    error_message = "webhook key generated, no API key secret"
  }
  assert {
    condition     = aws_sqs_queue.fanout.visibility_timeout_seconds == 360
    error_message = "visibility timeout is timeout + 60"
  }
  assert {
    condition     = length(aws_sqs_queue_policy.fanout) == 1 && length(aws_lambda_permission.ecs_task_state) == 0
    error_message = "ECS events go to the queue by default"
  }
  assert {
    condition     = aws_scheduler_schedule.tick.schedule_expression == "rate(1 minute)" && aws_scheduler_schedule.tick.state == "ENABLED"
    error_message = "tick every minute"
  }
  assert {
    condition     = aws_cloudwatch_log_group.function.retention_in_days == 30
    error_message = "log retention"
  }
  assert {
    condition     = jsondecode(aws_cloudwatch_event_rule.ecs_task_state[0].event_pattern)["detail-type"] == ["ECS Task State Change"]
    error_message = "ECS task state change rule"
  }
  assert {
    condition = toset(one([for s in data.aws_iam_policy_document.function.statement : s.resources if s.sid == "RunTasksOfGivenFamiliesOnGivenClusters"])) == toset([
      "arn:aws:ecs:eu-west-1:123456789012:task-definition/prefect_ecs-a_????????-????-????-????-????????????",
      "arn:aws:ecs:eu-west-1:123456789012:task-definition/prefect_ecs-a_????????-????-????-????-????????????:*",
      "arn:aws:ecs:eu-west-1:123456789012:task-definition/prefect_ecs-b_????????-????-????-????-????????????",
      "arn:aws:ecs:eu-west-1:123456789012:task-definition/prefect_ecs-b_????????-????-????-????-????????????:*",
    ])
    error_message = "RunTask only of the families pushpool registers for the pools"
  }
}

run "pool_name_a_family_cannot_hold" {
  command = plan

  variables {
    work_pools = ["prod.ecs nightly"]
  }

  assert {
    condition = toset(one([for s in data.aws_iam_policy_document.function.statement : s.resources if s.sid == "RunTasksOfGivenFamiliesOnGivenClusters"])) == toset([
      "arn:aws:ecs:eu-west-1:123456789012:task-definition/prefect_prod-ecs-nightly_????????-????-????-????-????????????",
      "arn:aws:ecs:eu-west-1:123456789012:task-definition/prefect_prod-ecs-nightly_????????-????-????-????-????????????:*",
    ])
    error_message = "the default family of a pool named with a dot and a space is the one pushpool registers"
  }
}

run "everything_set" {
  command = plan

  variables {
    prefect_api_key          = "pnu_test_key"
    webhook_secret           = "0123456789abcdef0123456789abcdef"
    ecs_task_role_arns       = ["arn:aws:iam::123456789012:role/flow-task"]
    ecs_execution_role_arns  = ["arn:aws:iam::123456789012:role/flow-exec"]
    ecs_events_target        = "function"
    ecs_event_last_statuses  = []
    vpc_subnet_ids           = ["subnet-1"]
    vpc_security_group_ids   = ["sg-1"]
    secrets_kms_key_arns     = ["arn:aws:kms:eu-west-1:123456789012:key/abc"]
    queue_max_concurrency    = 5
    timeout_seconds          = 900
    tick_schedule_expression = "rate(5 minutes)"
    extra_environment        = { PUSHPOOL_MAX_CONCURRENT_SUBMISSIONS = "8" }

    ecs_task_definition_families = ["flows"]
  }

  assert {
    condition = toset(one([for s in data.aws_iam_policy_document.function.statement : s.resources if s.sid == "RunTasksOfGivenFamiliesOnGivenClusters"])) == toset([
      "arn:aws:ecs:eu-west-1:123456789012:task-definition/flows",
      "arn:aws:ecs:eu-west-1:123456789012:task-definition/flows:*",
    ])
    error_message = "RunTask only of the given families"
  }

  assert {
    condition     = length(aws_secretsmanager_secret.prefect_api_key) == 1 && length(random_password.webhook) == 0
    error_message = "API key secret created, webhook key not generated"
  }
  assert {
    condition     = aws_lambda_function.this.environment[0].variables["PUSHPOOL_MAX_CONCURRENT_SUBMISSIONS"] == "8"
    error_message = "extra environment"
  }
  assert {
    condition     = aws_lambda_function.this.environment[0].variables["PUSHPOOL_WAKE_HORIZON_SECONDS"] == "330" && aws_lambda_function.this.environment[0].variables["PUSHPOOL_SUBMIT_RESERVE_SECONDS"] == "60"
    error_message = "wake horizon from rate(5 minutes); submit reserve capped at 60 s"
  }
  assert {
    condition     = length(aws_lambda_permission.ecs_task_state) == 1 && length(aws_sqs_queue_policy.fanout) == 0
    error_message = "ECS events invoke the function"
  }
  assert {
    condition     = !can(jsondecode(aws_cloudwatch_event_rule.ecs_task_state[0].event_pattern).detail.lastStatus)
    error_message = "no status filter when ecs_event_last_statuses is empty"
  }
  assert {
    condition     = aws_lambda_function_event_invoke_config.this.maximum_retry_attempts == 2
    error_message = "direct ECS events are retried"
  }
  assert {
    condition     = aws_lambda_event_source_mapping.fanout.scaling_config[0].maximum_concurrency == 5
    error_message = "queue concurrency"
  }
}

run "existing_secrets_no_events" {
  command = plan

  variables {
    prefect_api_key_secret_arn = "arn:aws:secretsmanager:eu-west-1:123456789012:secret:key-abcdef"
    webhook_secret_arn         = "arn:aws:secretsmanager:eu-west-1:123456789012:secret:hmac-abcdef"
    ecs_events_enabled         = false
  }

  assert {
    condition     = aws_lambda_function.this.environment[0].variables["PUSHPOOL_PREFECT_API_KEY_SECRET_ARN"] == "arn:aws:secretsmanager:eu-west-1:123456789012:secret:key-abcdef"
    error_message = "existing API key ARN passed through"
  }
  assert {
    condition     = aws_lambda_function.this.environment[0].variables["PUSHPOOL_WEBHOOK_SECRET_ARN"] == "arn:aws:secretsmanager:eu-west-1:123456789012:secret:hmac-abcdef"
    error_message = "existing webhook ARN passed through"
  }
  assert {
    condition     = length(aws_secretsmanager_secret.webhook) == 0 && length(aws_cloudwatch_event_rule.ecs_task_state) == 0
    error_message = "no secrets created, no event rule"
  }
}

run "cron_tick" {
  command = plan

  variables {
    tick_schedule_expression = "cron(0/2 * * * ? *)"
    wake_horizon_seconds     = 150
    submit_reserve_seconds   = 15
    timeout_seconds          = 60
  }

  assert {
    condition     = aws_lambda_function.this.environment[0].variables["PUSHPOOL_WAKE_HORIZON_SECONDS"] == "150" && aws_lambda_function.this.environment[0].variables["PUSHPOOL_SUBMIT_RESERVE_SECONDS"] == "15"
    error_message = "explicit wake horizon and submit reserve"
  }
}
