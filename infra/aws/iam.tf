# Least privilege: every statement names its actions (no "*" and no
# "service:*"); resources are scoped wherever the service supports it.
# infra/infra_test.go enforces the action and iam:PassRole rules, and
# infra/permissions_test.go that the ECS and EC2 actions are exactly those
# of the SDK calls dispatch/backend/ecs makes, and RunTask's family ARNs.

# --- the function's role ----------------------------------------------------

data "aws_iam_policy_document" "function_trust" {
  statement {
    sid     = "LambdaAssumesRole"
    effect  = "Allow"
    actions = ["sts:AssumeRole"]
    principals {
      type        = "Service"
      identifiers = ["lambda.amazonaws.com"]
    }
    condition {
      test     = "StringEquals"
      variable = "aws:SourceAccount"
      values   = [local.account_id]
    }
  }
}

resource "aws_iam_role" "function" {
  name               = "${var.name}-function"
  description        = "pushpool dispatcher Lambda ${var.name}"
  assume_role_policy = data.aws_iam_policy_document.function_trust.json
  tags               = var.tags
}

data "aws_iam_policy_document" "function" {
  # Its own log group only (the group itself is created by Terraform).
  statement {
    sid       = "WriteOwnLogs"
    effect    = "Allow"
    actions   = ["logs:CreateLogStream", "logs:PutLogEvents"]
    resources = ["${aws_cloudwatch_log_group.function.arn}:*"]
  }

  # Submit: register (or find again) a task definition, then run it on one of
  # the given clusters. These three actions have no resource-level scoping in
  # IAM, so they take "*"; registrations are still confined to the families
  # below, because pushpool tags every registration with its content hash
  # and tagging on creation is allowed on those families only.
  # DeregisterTaskDefinition is not granted: the backend never calls it.
  statement {
    sid       = "TaskDefinitions"
    effect    = "Allow"
    actions   = ["ecs:RegisterTaskDefinition", "ecs:DescribeTaskDefinition", "ecs:ListTaskDefinitions"]
    resources = ["*"]
  }

  # RunTask only of the families the module is told about
  # (var.ecs_task_definition_families), only on the given clusters.
  statement {
    sid       = "RunTasksOfGivenFamiliesOnGivenClusters"
    effect    = "Allow"
    actions   = ["ecs:RunTask"]
    resources = local.ecs_task_definition_arns
    condition {
      test     = "ArnEquals"
      variable = "ecs:cluster"
      values   = var.ecs_cluster_arns
    }
  }

  # Status and Stop receive only the infrastructure_pid, so they need the
  # dispatcher's own identity on the tasks of those clusters.
  statement {
    sid     = "WatchAndStopTasks"
    effect  = "Allow"
    actions = ["ecs:DescribeTasks", "ecs:StopTask"]
    resources = [
      for c in local.cluster_names : "arn:${local.partition}:ecs:${local.region}:${local.account_id}:task/${c}/*"
    ]
  }

  # ListTasks is authorised against the cluster through a condition key.
  statement {
    sid       = "ListTasksOnGivenClusters"
    effect    = "Allow"
    actions   = ["ecs:ListTasks"]
    resources = ["*"]
    condition {
      test     = "ArnEquals"
      variable = "ecs:cluster"
      values   = var.ecs_cluster_arns
    }
  }

  # Tags carry the content hash on task definitions and the flow run id on
  # tasks, given with RegisterTaskDefinition and RunTask; the backend never
  # calls TagResource itself, so existing resources cannot be retagged.
  statement {
    sid       = "TagOnCreation"
    effect    = "Allow"
    actions   = ["ecs:TagResource"]
    resources = concat(local.ecs_task_definition_arns, [for c in local.cluster_names : "arn:${local.partition}:ecs:${local.region}:${local.account_id}:task/${c}/*"])
    condition {
      test     = "StringEquals"
      variable = "ecs:CreateAction"
      values   = ["RegisterTaskDefinition", "RunTask"]
    }
  }

  # awsvpc tasks without a network_configuration get the default VPC's subnets,
  # as Prefect's ECS worker does. Describe* calls take no resource scoping.
  statement {
    sid       = "DescribeNetworks"
    effect    = "Allow"
    actions   = ["ec2:DescribeSubnets", "ec2:DescribeVpcs"]
    resources = ["*"]
  }

  # The task and execution roles of the flow runs, and only to ECS tasks.
  dynamic "statement" {
    for_each = length(local.passable_roles) > 0 ? [1] : []
    content {
      sid       = "PassFlowRunRolesToEcsTasks"
      effect    = "Allow"
      actions   = ["iam:PassRole"]
      resources = local.passable_roles
      condition {
        test     = "StringEquals"
        variable = "iam:PassedToService"
        values   = ["ecs-tasks.amazonaws.com"]
      }
    }
  }

  # Fan-out shards and delayed wake-ups (DelaySeconds up to 15 minutes) go
  # through the queue; the event source mapping receives and deletes with
  # this role too.
  statement {
    sid       = "FanOutQueue"
    effect    = "Allow"
    actions   = ["sqs:SendMessage", "sqs:ReceiveMessage", "sqs:DeleteMessage", "sqs:GetQueueAttributes"]
    resources = [aws_sqs_queue.fanout.arn]
  }

  statement {
    sid       = "ReadOwnSecrets"
    effect    = "Allow"
    actions   = ["secretsmanager:GetSecretValue"]
    resources = compact([local.prefect_api_key_secret_arn, local.webhook_secret_arn])
  }

  dynamic "statement" {
    for_each = length(var.secrets_kms_key_arns) > 0 ? [1] : []
    content {
      sid       = "DecryptSecretsThroughSecretsManager"
      effect    = "Allow"
      actions   = ["kms:Decrypt"]
      resources = var.secrets_kms_key_arns
      condition {
        test     = "StringEquals"
        variable = "kms:ViaService"
        values   = ["secretsmanager.${local.region}.amazonaws.com"]
      }
    }
  }

  # What AWSLambdaVPCAccessExecutionRole grants, spelled out; only in a VPC.
  dynamic "statement" {
    for_each = length(var.vpc_subnet_ids) > 0 ? [1] : []
    content {
      sid    = "VpcNetworkInterfaces"
      effect = "Allow"
      actions = [
        "ec2:CreateNetworkInterface",
        "ec2:DescribeNetworkInterfaces",
        "ec2:DeleteNetworkInterface",
        "ec2:AssignPrivateIpAddresses",
        "ec2:UnassignPrivateIpAddresses",
      ]
      resources = ["*"]
    }
  }
}

resource "aws_iam_role_policy" "function" {
  name   = "dispatch"
  role   = aws_iam_role.function.id
  policy = data.aws_iam_policy_document.function.json
}

# --- EventBridge Scheduler role (the tick) ---------------------------------

data "aws_iam_policy_document" "scheduler_trust" {
  statement {
    sid     = "SchedulerAssumesRole"
    effect  = "Allow"
    actions = ["sts:AssumeRole"]
    principals {
      type        = "Service"
      identifiers = ["scheduler.amazonaws.com"]
    }
    condition {
      test     = "StringEquals"
      variable = "aws:SourceAccount"
      values   = [local.account_id]
    }
  }
}

# The tick: invoke the function, nothing else.
resource "aws_iam_role" "tick" {
  name               = "${var.name}-tick"
  description        = "EventBridge Scheduler invokes the pushpool dispatcher ${var.name}"
  assume_role_policy = data.aws_iam_policy_document.scheduler_trust.json
  tags               = var.tags
}

data "aws_iam_policy_document" "tick" {
  statement {
    sid       = "InvokeDispatcher"
    effect    = "Allow"
    actions   = ["lambda:InvokeFunction"]
    resources = [aws_lambda_function.this.arn]
  }
}

resource "aws_iam_role_policy" "tick" {
  name   = "invoke"
  role   = aws_iam_role.tick.id
  policy = data.aws_iam_policy_document.tick.json
}
