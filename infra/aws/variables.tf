# --- the function -----------------------------------------------------------

variable "name" {
  description = "Name of the Lambda function; also the prefix of every other resource the module creates (queues, roles, schedules, log group)."
  type        = string
  default     = "pushpool"

  validation {
    condition     = can(regex("^[A-Za-z][A-Za-z0-9-]{0,39}$", var.name))
    error_message = "name must start with a letter and hold 1 to 40 letters, digits or hyphens (it prefixes IAM role and queue names, which have length limits)."
  }
}

variable "lambda_zip_path" {
  description = "Path to the function artifact built by `make functions`: dist/lambda-arm64.zip or dist/lambda-amd64.zip (a `bootstrap` executable for provided.al2023). It must match `architecture`."
  type        = string

  validation {
    condition     = endswith(var.lambda_zip_path, ".zip")
    error_message = "lambda_zip_path must name a .zip file, e.g. \"dist/lambda-arm64.zip\"."
  }
}

variable "architecture" {
  description = "Instruction set of the function: arm64 (dist/lambda-arm64.zip, cheaper) or x86_64 (dist/lambda-amd64.zip)."
  type        = string
  default     = "arm64"

  validation {
    condition     = contains(["arm64", "x86_64"], var.architecture)
    error_message = "architecture must be \"arm64\" or \"x86_64\"."
  }
}

variable "timeout_seconds" {
  description = "Function timeout in seconds. The dispatcher stops claiming runs before this deadline so it can still record what it started."
  type        = number
  default     = 300

  validation {
    condition     = var.timeout_seconds >= 30 && var.timeout_seconds <= 900
    error_message = "timeout_seconds must be between 30 and 900 (the Lambda maximum)."
  }
}

variable "memory_mb" {
  description = "Memory of the function in MB (CPU scales with it)."
  type        = number
  default     = 256

  validation {
    condition     = var.memory_mb >= 128 && var.memory_mb <= 10240
    error_message = "memory_mb must be between 128 and 10240."
  }
}

variable "reserved_concurrency" {
  description = "Reserved concurrent executions of the function; -1 leaves it unreserved. Bounds how many dispatchers talk to Prefect at once."
  type        = number
  default     = -1

  validation {
    condition     = var.reserved_concurrency == -1 || var.reserved_concurrency >= 1
    error_message = "reserved_concurrency must be -1 (unreserved) or at least 1."
  }
}

variable "vpc_subnet_ids" {
  description = "Subnets to run the function in, when the Prefect API is only reachable inside a VPC. Empty: the function runs outside any VPC."
  type        = list(string)
  default     = []
}

variable "vpc_security_group_ids" {
  description = "Security groups of the function when vpc_subnet_ids is set; they must allow egress to the Prefect API and to the AWS APIs (or their VPC endpoints)."
  type        = list(string)
  default     = []

  validation {
    condition     = length(var.vpc_subnet_ids) == 0 || length(var.vpc_security_group_ids) > 0
    error_message = "vpc_security_group_ids must name at least one security group when vpc_subnet_ids is set."
  }
}

variable "log_retention_days" {
  description = "Retention of the function's CloudWatch log group, in days (0 keeps logs forever)."
  type        = number
  default     = 30

  validation {
    condition     = contains([0, 1, 3, 5, 7, 14, 30, 60, 90, 120, 150, 180, 365, 400, 545, 731, 1096, 1827, 2192, 2557, 2922, 3288, 3653], var.log_retention_days)
    error_message = "log_retention_days must be one of the values CloudWatch Logs accepts: 0, 1, 3, 5, 7, 14, 30, 60, 90, 120, 150, 180, 365, 400, 545, 731, 1096, 1827, 2192, 2557, 2922, 3288, 3653."
  }
}

variable "tags" {
  description = "Tags added to every resource that takes tags."
  type        = map(string)
  default     = {}
}

# --- Prefect ----------------------------------------------------------------

variable "prefect_api_url" {
  description = "Prefect API URL the dispatcher talks to (PREFECT_API_URL), e.g. https://prefect.example.com/api."
  type        = string

  validation {
    condition     = can(regex("^https?://[^\\s/]+", var.prefect_api_url))
    error_message = "prefect_api_url must be an http(s) URL such as https://prefect.example.com/api."
  }
}

variable "work_pools" {
  description = "Work pools this dispatcher serves (PUSHPOOL_POOLS). Their type decides the backend: ecs or ecs:push here."
  type        = list(string)

  validation {
    condition     = length(var.work_pools) > 0 && alltrue([for p in var.work_pools : length(trimspace(p)) > 0 && !strcontains(p, ",")])
    error_message = "work_pools must name at least one pool, and pool names may not be empty or contain commas (PUSHPOOL_POOLS is comma-separated)."
  }
}

variable "worker_name" {
  description = "Worker name shown in the pools and on every run (PUSHPOOL_WORKER_NAME). Null: the value of `name`."
  type        = string
  default     = null
}

variable "shard_size" {
  description = "Runs one invocation dispatches before it fans the rest out through the queue (PUSHPOOL_SHARD_SIZE)."
  type        = number
  default     = 20

  validation {
    condition     = var.shard_size >= 1 && var.shard_size <= 200 && floor(var.shard_size) == var.shard_size
    error_message = "shard_size must be a whole number between 1 and 200 (Prefect returns at most 200 runs per poll)."
  }
}

variable "extra_environment" {
  description = "More environment variables for the function, e.g. PUSHPOOL_MAX_CONCURRENT_SUBMISSIONS = \"8\" or PREFECT_WORKER_PREFETCH_SECONDS = \"15\" (functions/internal/fnapp reads them). They cannot override the variables this module sets, and must not hold secrets (use the *_secret variables)."
  type        = map(string)
  default     = {}

  validation {
    condition = length(setintersection(keys(var.extra_environment), [
      "PREFECT_API_URL", "PUSHPOOL_POOLS", "PUSHPOOL_WORKER_NAME", "PUSHPOOL_SHARD_SIZE",
      "PUSHPOOL_WAKE_HORIZON_SECONDS", "PUSHPOOL_SUBMIT_RESERVE_SECONDS",
      "PUSHPOOL_PREFECT_API_KEY_SECRET_ARN", "PUSHPOOL_WEBHOOK_SECRET_ARN", "PUSHPOOL_QUEUE_URL",
      "PREFECT_API_KEY", "PREFECT_API_AUTH_STRING",
    ])) == 0
    error_message = "extra_environment may not set the variables the module manages (PREFECT_API_URL, PUSHPOOL_POOLS, ...) nor PREFECT_API_KEY / PREFECT_API_AUTH_STRING (secrets belong in Secrets Manager)."
  }
}

# --- secrets ----------------------------------------------------------------

variable "prefect_api_key" {
  description = "Prefect API key, stored in a new Secrets Manager secret. Leave null with prefect_api_key_secret_arn to use an existing secret, or with both null for a server without API keys."
  type        = string
  default     = null
  sensitive   = true
}

variable "prefect_api_key_secret_arn" {
  description = "ARN of an existing Secrets Manager secret holding the Prefect API key (a plain string). Conflicts with prefect_api_key."
  type        = string
  default     = null

  validation {
    condition     = var.prefect_api_key_secret_arn == null || can(regex("^arn:aws[a-z-]*:secretsmanager:[a-z0-9-]+:[0-9]{12}:secret:.+$", var.prefect_api_key_secret_arn))
    error_message = "prefect_api_key_secret_arn must be a Secrets Manager secret ARN (arn:aws:secretsmanager:REGION:ACCOUNT:secret:NAME-xxxxxx)."
  }
  validation {
    condition     = var.prefect_api_key_secret_arn == null || var.prefect_api_key == null
    error_message = "Set prefect_api_key or prefect_api_key_secret_arn, not both."
  }
}

variable "webhook_secret" {
  description = "HMAC key the webhook endpoint verifies request bodies with, stored in a new Secrets Manager secret. Null (with webhook_secret_arn null): a random 48-character key is generated; read it from the webhook_secret output."
  type        = string
  default     = null
  sensitive   = true

  validation {
    condition     = var.webhook_secret == null || length(coalesce(var.webhook_secret, "x")) >= 32
    error_message = "webhook_secret must be at least 32 characters long."
  }
}

variable "webhook_secret_arn" {
  description = "ARN of an existing Secrets Manager secret holding the webhook HMAC key. Conflicts with webhook_secret."
  type        = string
  default     = null

  validation {
    condition     = var.webhook_secret_arn == null || can(regex("^arn:aws[a-z-]*:secretsmanager:[a-z0-9-]+:[0-9]{12}:secret:.+$", var.webhook_secret_arn))
    error_message = "webhook_secret_arn must be a Secrets Manager secret ARN."
  }
  validation {
    condition     = var.webhook_secret_arn == null || var.webhook_secret == null
    error_message = "Set webhook_secret or webhook_secret_arn, not both."
  }
}

variable "secrets_kms_key_arns" {
  description = "Customer-managed KMS keys that encrypt existing secrets given by ARN; the function may decrypt with them only through Secrets Manager. Empty when the secrets use the AWS-managed key."
  type        = list(string)
  default     = []

  validation {
    condition     = alltrue([for k in var.secrets_kms_key_arns : can(regex("^arn:aws[a-z-]*:kms:[a-z0-9-]+:[0-9]{12}:key/.+$", k))])
    error_message = "secrets_kms_key_arns must hold KMS key ARNs (arn:aws:kms:REGION:ACCOUNT:key/ID)."
  }
}

# --- ECS (where the flow runs go) -------------------------------------------

variable "ecs_cluster_arns" {
  description = "ARNs of the ECS clusters the pools' runs go to (the `cluster` job variable, or the account's `default` cluster). RunTask, StopTask and DescribeTasks are allowed on these clusters only, and their task state changes are subscribed to."
  type        = list(string)

  validation {
    condition     = length(var.ecs_cluster_arns) > 0 && alltrue([for c in var.ecs_cluster_arns : can(regex("^arn:aws[a-z-]*:ecs:[a-z0-9-]+:[0-9]{12}:cluster/[A-Za-z0-9_-]+$", c))])
    error_message = "ecs_cluster_arns must hold at least one cluster ARN (arn:aws:ecs:REGION:ACCOUNT:cluster/NAME); names are not accepted because policies need ARNs."
  }
}

variable "ecs_task_definition_families" {
  description = "Task definition families the function may run (RunTask) and register into (tag on registration): names, or IAM patterns with * and ?. Null: prefect_<pool>_????????-????-????-????-???????????? for each of work_pools, the family pushpool registers when a template names none (prefect_<work pool>_<deployment id, else flow id>, as Prefect's ECS worker; each run of characters other than letters, digits, - and _ in the pool's name becomes one -). Add the families of templates that set task_definition.family or task_definition_arn; list them all, the default is replaced, not extended."
  type        = list(string)
  default     = null

  validation {
    condition     = var.ecs_task_definition_families == null || (length(coalesce(var.ecs_task_definition_families, ["x"])) > 0 && alltrue([for f in coalesce(var.ecs_task_definition_families, ["x"]) : can(regex("^[A-Za-z0-9_*?-]{1,255}$", f)) && can(regex("[A-Za-z0-9_-]", f))]))
    error_message = "ecs_task_definition_families must hold at least one family name of up to 255 letters, digits, hyphens and underscores (IAM wildcards * and ? allowed, but not a pattern of wildcards only, and no \":revision\")."
  }
}

variable "ecs_task_role_arns" {
  description = "IAM roles flow-run tasks may run as (the `task_role_arn` job variable). The function may pass exactly these roles, and only to ecs-tasks.amazonaws.com."
  type        = list(string)
  default     = []

  validation {
    condition     = alltrue([for r in var.ecs_task_role_arns : can(regex("^arn:aws[a-z-]*:iam::[0-9]{12}:role/.+$", r)) && !strcontains(r, "*")])
    error_message = "ecs_task_role_arns must hold IAM role ARNs without wildcards."
  }
}

variable "ecs_execution_role_arns" {
  description = "ECS task execution roles used by the task definitions the dispatcher registers (the `execution_role_arn` job variable). Passed like ecs_task_role_arns."
  type        = list(string)
  default     = []

  validation {
    condition     = alltrue([for r in var.ecs_execution_role_arns : can(regex("^arn:aws[a-z-]*:iam::[0-9]{12}:role/.+$", r)) && !strcontains(r, "*")])
    error_message = "ecs_execution_role_arns must hold IAM role ARNs without wildcards."
  }
}

variable "ecs_events_enabled" {
  description = "Subscribe to \"ECS Task State Change\" events of ecs_cluster_arns, so crashed or finished tasks reach the reconciler without polling."
  type        = bool
  default     = true
}

variable "ecs_events_target" {
  description = "Where task state change events go: \"queue\" (the fan-out queue: batched, retried, dead-lettered) or \"function\" (invoked directly, asynchronously)."
  type        = string
  default     = "queue"

  validation {
    condition     = contains(["queue", "function"], var.ecs_events_target)
    error_message = "ecs_events_target must be \"queue\" or \"function\"."
  }
}

variable "ecs_event_last_statuses" {
  description = "Task lastStatus values that are forwarded; empty forwards every state change."
  type        = list(string)
  default     = ["PROVISIONING", "PENDING", "RUNNING", "STOPPED"]

  validation {
    condition = alltrue([for s in var.ecs_event_last_statuses : contains(
      ["PROVISIONING", "PENDING", "ACTIVATING", "RUNNING", "DEACTIVATING", "STOPPING", "DEPROVISIONING", "STOPPED", "DELETED"], s
    )])
    error_message = "ecs_event_last_statuses may only hold ECS task statuses (PROVISIONING, PENDING, ACTIVATING, RUNNING, DEACTIVATING, STOPPING, DEPROVISIONING, STOPPED, DELETED)."
  }
}

# --- triggers ---------------------------------------------------------------

variable "tick_schedule_expression" {
  description = "EventBridge Scheduler expression of the dispatch tick, e.g. rate(1 minute) or rate(2 minutes); a cron(...) expression needs wake_horizon_seconds too."
  type        = string
  default     = "rate(1 minute)"

  validation {
    condition     = can(regex("^(rate|cron)\\(.+\\)$", var.tick_schedule_expression))
    error_message = "tick_schedule_expression must be a rate(...) or cron(...) expression."
  }
}

variable "tick_enabled" {
  description = "Whether the tick schedule is enabled (disable it to pause dispatching without destroying anything)."
  type        = bool
  default     = true
}

variable "wake_horizon_seconds" {
  description = "How far ahead a tick looks for runs to wake on time (PUSHPOOL_WAKE_HORIZON_SECONDS): the tick interval plus a margin. Null: the interval of a rate() tick_schedule_expression plus 30 s (90 for rate(1 minute)); required with a cron() expression."
  type        = number
  default     = null

  validation {
    condition     = var.wake_horizon_seconds != null || can(regex("^rate\\(([0-9]+) (minute|hour|day)s?\\)$", var.tick_schedule_expression))
    error_message = "Set wake_horizon_seconds (the tick interval plus a margin) when tick_schedule_expression is not a rate(N minutes|hours|days) expression."
  }
  validation {
    condition     = var.wake_horizon_seconds == null || (coalesce(var.wake_horizon_seconds, 60) >= 30 && coalesce(var.wake_horizon_seconds, 60) <= 172800)
    error_message = "wake_horizon_seconds must be between 30 and 172800."
  }
}

variable "submit_reserve_seconds" {
  description = "How long before the invocation deadline a dispatch pass stops claiming runs, so the last submission can finish and be recorded (PUSHPOOL_SUBMIT_RESERVE_SECONDS). Null: a tenth of timeout_seconds, between 20 and 60."
  type        = number
  default     = null

  validation {
    condition     = var.submit_reserve_seconds == null || (coalesce(var.submit_reserve_seconds, 20) >= 5 && coalesce(var.submit_reserve_seconds, 20) * 2 <= var.timeout_seconds)
    error_message = "submit_reserve_seconds must be at least 5 and at most half of timeout_seconds."
  }
}

variable "queue_batch_size" {
  description = "Messages the queue hands one invocation. 1 gives each fan-out shard its own invocation; larger values help when task state change events are many."
  type        = number
  default     = 1

  validation {
    condition     = var.queue_batch_size >= 1 && var.queue_batch_size <= 10
    error_message = "queue_batch_size must be between 1 and 10 (larger batches need a batching window, which delays dispatch)."
  }
}

variable "queue_max_concurrency" {
  description = "Most concurrent invocations the queue may start (event source mapping maximum concurrency); null for no limit besides reserved_concurrency."
  type        = number
  default     = null

  validation {
    condition     = var.queue_max_concurrency == null || (coalesce(var.queue_max_concurrency, 2) >= 2 && coalesce(var.queue_max_concurrency, 2) <= 1000)
    error_message = "queue_max_concurrency must be null or between 2 and 1000."
  }
}

variable "queue_max_receive_count" {
  description = "Deliveries of a message before SQS moves it to the dead-letter queue."
  type        = number
  default     = 5

  validation {
    condition     = var.queue_max_receive_count >= 1 && var.queue_max_receive_count <= 1000
    error_message = "queue_max_receive_count must be between 1 and 1000."
  }
}

variable "queue_visibility_timeout_seconds" {
  description = "Visibility timeout of the fan-out queue: how long a failed message waits before its retry. Null: timeout_seconds + 60. It must not be below timeout_seconds."
  type        = number
  default     = null

  validation {
    condition     = var.queue_visibility_timeout_seconds == null || (coalesce(var.queue_visibility_timeout_seconds, 0) >= var.timeout_seconds && coalesce(var.queue_visibility_timeout_seconds, 0) <= 43200)
    error_message = "queue_visibility_timeout_seconds must be at least timeout_seconds and at most 43200."
  }
}
