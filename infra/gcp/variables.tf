# --- where --------------------------------------------------------------------

variable "project_id" {
  description = "Project the dispatcher is deployed in."
  type        = string

  validation {
    condition     = can(regex("^[a-z][a-z0-9-]{4,28}[a-z0-9]$", var.project_id))
    error_message = "project_id must be a project ID (6 to 30 lowercase letters, digits or hyphens), not a project number or name."
  }
}

variable "region" {
  description = "Region of the Cloud Run services, the Cloud Scheduler job and the Cloud Tasks queue."
  type        = string

  validation {
    condition     = can(regex("^[a-z]+-[a-z]+[0-9]+$", var.region))
    error_message = "region must be a region such as europe-west1 or us-central1."
  }
}

variable "jobs_project_id" {
  description = "Project the flow runs' Cloud Run jobs are created in (PUSHPOOL_GCP_PROJECT) when the pool template's credentials name none. Null: project_id."
  type        = string
  default     = null

  validation {
    condition     = var.jobs_project_id == null || can(regex("^[a-z][a-z0-9-]{4,28}[a-z0-9]$", coalesce(var.jobs_project_id, "x-placeholder")))
    error_message = "jobs_project_id must be a project ID."
  }
}

variable "name" {
  description = "Prefix of every resource the module creates: Cloud Run services <name>-events and <name>-webhook, topic <name>-fanout, service accounts, queue, scheduler job."
  type        = string
  default     = "pushpool"

  validation {
    condition     = can(regex("^[a-z][a-z0-9-]{0,18}[a-z0-9]$", var.name))
    error_message = "name must start with a lowercase letter, end with a letter or digit and hold 2 to 20 lowercase letters, digits or hyphens (service account IDs are at most 30 characters)."
  }
}

variable "enable_apis" {
  description = "Enable the APIs the module uses (Cloud Run, IAM, Pub/Sub, Cloud Scheduler, Cloud Tasks, Secret Manager, Logging). They are never disabled on destroy."
  type        = bool
  default     = true
}

variable "labels" {
  description = "Labels added to every resource that takes labels."
  type        = map(string)
  default     = {}
}

# --- the services -------------------------------------------------------------

variable "image" {
  description = "Container image of functions/gcp: a static binary of `CGO_ENABLED=0 go build ./functions/gcp` that serves HTTP on $PORT, e.g. built and pushed with `KO_DOCKER_REPO=REGION-docker.pkg.dev/PROJECT/REPO ko build --bare ./functions/gcp`. Both Cloud Run services run it; pin it by digest (…@sha256:…) so a new build rolls out a new revision."
  type        = string

  validation {
    condition     = can(regex("^[a-z0-9.-]+(:[0-9]+)?/[^\\s]+$", var.image)) && !endswith(var.image, ".zip")
    error_message = "image must be a container image reference such as europe-west1-docker.pkg.dev/my-project/pushpool/gcp@sha256:..., not a source bundle."
  }
}

variable "timeout_seconds" {
  description = "Request timeout of both services, in seconds (PUSHPOOL_REQUEST_TIMEOUT_SECONDS tells the function, which plans its dispatch deadline from it). The push subscription's acknowledgement deadline is this plus 30 s."
  type        = number
  default     = 300

  validation {
    condition     = var.timeout_seconds >= 30 && var.timeout_seconds <= 540
    error_message = "timeout_seconds must be between 30 and 540 (a Pub/Sub push acknowledgement deadline is at most 600 seconds and must outlast a request)."
  }
}

variable "memory" {
  description = "Memory of each instance (Cloud Run units: 512Mi, 1Gi, ...); each has one vCPU."
  type        = string
  default     = "512Mi"

  validation {
    condition     = can(regex("^[0-9]+(M|Mi|G|Gi)$", var.memory))
    error_message = "memory must be a size such as 512Mi or 1Gi."
  }
}

variable "concurrency" {
  description = "Requests one instance serves at once (ticks, shards, wake-ups and webhooks are I/O-bound, and the handler is safe for concurrent use)."
  type        = number
  default     = 10

  validation {
    condition     = var.concurrency >= 1 && var.concurrency <= 1000 && floor(var.concurrency) == var.concurrency
    error_message = "concurrency must be a whole number between 1 and 1000."
  }
}

variable "max_instances" {
  description = "Most instances of the events service (tick, fan-out shards, wake-ups)."
  type        = number
  default     = 50

  validation {
    condition     = var.max_instances >= 1 && var.max_instances <= 1000
    error_message = "max_instances must be between 1 and 1000."
  }
}

variable "webhook_max_instances" {
  description = "Most instances of the webhook service."
  type        = number
  default     = 10

  validation {
    condition     = var.webhook_max_instances >= 1 && var.webhook_max_instances <= 1000
    error_message = "webhook_max_instances must be between 1 and 1000."
  }
}

variable "events_ingress" {
  description = "Ingress of the events service. Only the invoker service account may call it either way; INGRESS_TRAFFIC_INTERNAL_ONLY also refuses requests from outside the project's network (Pub/Sub push and Cloud Tasks from the same project still arrive)."
  type        = string
  default     = "INGRESS_TRAFFIC_ALL"

  validation {
    condition     = contains(["INGRESS_TRAFFIC_ALL", "INGRESS_TRAFFIC_INTERNAL_ONLY"], var.events_ingress)
    error_message = "events_ingress must be INGRESS_TRAFFIC_ALL or INGRESS_TRAFFIC_INTERNAL_ONLY."
  }
}

variable "vpc_network" {
  description = "VPC network for direct VPC egress of both services, when the Prefect API is only reachable inside a VPC. Null: no VPC egress."
  type        = string
  default     = null
}

variable "vpc_subnetwork" {
  description = "Subnetwork for direct VPC egress (with vpc_network). Private ranges go through the VPC, everything else directly."
  type        = string
  default     = null

  validation {
    condition     = (var.vpc_network == null) == (var.vpc_subnetwork == null)
    error_message = "Set vpc_network and vpc_subnetwork together, or neither."
  }
}

variable "log_retention_days" {
  description = "Retention of the services' logs, in days. The module routes them to their own log bucket with this retention and excludes them from the _Default bucket."
  type        = number
  default     = 30

  validation {
    condition     = var.log_retention_days >= 1 && var.log_retention_days <= 3650
    error_message = "log_retention_days must be between 1 and 3650."
  }
}

# --- Prefect ------------------------------------------------------------------

variable "prefect_api_url" {
  description = "Prefect API URL the dispatcher talks to (PREFECT_API_URL), e.g. https://prefect.example.com/api."
  type        = string

  validation {
    condition     = can(regex("^https?://[^\\s/]+", var.prefect_api_url))
    error_message = "prefect_api_url must be an http(s) URL such as https://prefect.example.com/api."
  }
}

variable "work_pools" {
  description = "Work pools this dispatcher serves (PUSHPOOL_POOLS), of type cloud-run-v2 or cloud-run-v2:push."
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
  description = "Runs one invocation dispatches before it fans the rest out through Pub/Sub (PUSHPOOL_SHARD_SIZE)."
  type        = number
  default     = 20

  validation {
    condition     = var.shard_size >= 1 && var.shard_size <= 200 && floor(var.shard_size) == var.shard_size
    error_message = "shard_size must be a whole number between 1 and 200 (Prefect returns at most 200 runs per poll)."
  }
}

variable "extra_environment" {
  description = "More environment variables for both services, e.g. PUSHPOOL_MAX_CONCURRENT_SUBMISSIONS = \"8\" or PUSHPOOL_CLOUDRUN_SWEEP_AFTER = \"30m\". They cannot override the variables this module sets, and must not hold secrets."
  type        = map(string)
  default     = {}

  validation {
    condition = length(setintersection(keys(var.extra_environment), [
      "PREFECT_API_URL", "PUSHPOOL_POOLS", "PUSHPOOL_WORKER_NAME", "PUSHPOOL_SHARD_SIZE",
      "PUSHPOOL_WAKE_HORIZON_SECONDS", "PUSHPOOL_SUBMIT_RESERVE_SECONDS",
      "PUSHPOOL_TOPIC", "PUSHPOOL_TASKS_QUEUE", "PUSHPOOL_SELF_URL", "PUSHPOOL_TASKS_SERVICE_ACCOUNT",
      "PUSHPOOL_REQUEST_TIMEOUT_SECONDS", "PUSHPOOL_GCP_PROJECT", "PUSHPOOL_ROUTES", "PORT",
      "PREFECT_API_KEY", "PREFECT_API_AUTH_STRING", "PUSHPOOL_WEBHOOK_SECRET_VALUE",
      "PUSHPOOL_PREFECT_API_KEY_SECRET", "PUSHPOOL_PREFECT_AUTH_STRING_SECRET", "PUSHPOOL_WEBHOOK_SECRET",
    ])) == 0
    error_message = "extra_environment may not set the variables the module manages (PREFECT_API_URL, PUSHPOOL_POOLS, PUSHPOOL_ROUTES, ...) nor secrets or secret references (PREFECT_API_KEY, PREFECT_API_AUTH_STRING, PUSHPOOL_*_SECRET*: use the prefect_api_* and webhook_secret* variables)."
  }
}

# --- Cloud Run jobs (where the flow runs go) ----------------------------------

variable "job_service_account_emails" {
  description = "Service accounts the flow runs' Cloud Run jobs run as (the `service_account_name` job variable; the Compute Engine default service account when templates leave it empty). The dispatcher may act as exactly these."
  type        = list(string)
  default     = []

  validation {
    condition     = alltrue([for e in var.job_service_account_emails : can(regex("^[^@*]+@[a-z0-9.-]+\\.iam\\.gserviceaccount\\.com$", e)) || can(regex("^[0-9]+-compute@developer\\.gserviceaccount\\.com$", e))])
    error_message = "job_service_account_emails must hold service account emails (NAME@PROJECT.iam.gserviceaccount.com or NUMBER-compute@developer.gserviceaccount.com)."
  }
}

variable "cloud_run_role" {
  description = "Role granted on the jobs project so the dispatcher can manage the flow runs' Cloud Run jobs. Null (the default): a custom role <name>_cloud_run_jobs the module creates in the jobs project, holding exactly run.jobs.create, run.jobs.get, run.jobs.list, run.jobs.delete, run.jobs.run, run.executions.get, run.executions.list and run.executions.cancel. Set it to use a role of your own instead, e.g. roles/run.developer (wider: it also manages services) or a custom role (projects/P/roles/R) that organisation policy requires. Cloud Run jobs take no IAM conditions and are created per flow run, so the project is the narrowest scope; give the jobs their own project (jobs_project_id) to narrow further."
  type        = string
  default     = null

  validation {
    condition     = !contains(["roles/owner", "roles/editor", "roles/run.admin"], coalesce(var.cloud_run_role, "custom"))
    error_message = "cloud_run_role may not be a basic role or roles/run.admin (which can also set IAM policies)."
  }
}

# --- triggers -----------------------------------------------------------------

variable "tick_schedule" {
  description = "Cloud Scheduler cron of the dispatch tick (unix-cron, minute resolution). \"* * * * *\" and \"*/N * * * *\" set the wake horizon themselves; other expressions need wake_horizon_seconds."
  type        = string
  default     = "* * * * *"

  validation {
    condition     = length(split(" ", trimspace(var.tick_schedule))) == 5
    error_message = "tick_schedule must be a five-field unix-cron expression, e.g. \"* * * * *\"."
  }
}

variable "wake_horizon_seconds" {
  description = "How far ahead a tick looks for runs to wake on time with a Cloud Tasks task (PUSHPOOL_WAKE_HORIZON_SECONDS): the tick interval plus a margin. A failing tick is redelivered only while it is younger than this. Null: the interval of an every-N-minutes tick_schedule plus 30 s (90 for every minute)."
  type        = number
  default     = null

  validation {
    condition     = var.wake_horizon_seconds != null || can(regex("^\\*(/[0-9]+)? \\* \\* \\* \\*$", trimspace(var.tick_schedule)))
    error_message = "Set wake_horizon_seconds (the tick interval plus a margin) when tick_schedule is not \"* * * * *\" or \"*/N * * * *\"."
  }
  validation {
    condition     = var.wake_horizon_seconds == null || (coalesce(var.wake_horizon_seconds, 60) >= 30 && coalesce(var.wake_horizon_seconds, 60) <= 172800)
    error_message = "wake_horizon_seconds must be between 30 and 172800."
  }
}

variable "submit_reserve_seconds" {
  description = "How long before the request deadline a dispatch pass stops claiming runs, so the last submission can finish and be recorded (PUSHPOOL_SUBMIT_RESERVE_SECONDS). Null: a tenth of timeout_seconds, between 20 and 60."
  type        = number
  default     = null

  validation {
    condition     = var.submit_reserve_seconds == null || (coalesce(var.submit_reserve_seconds, 20) >= 5 && coalesce(var.submit_reserve_seconds, 20) * 2 <= var.timeout_seconds)
    error_message = "submit_reserve_seconds must be at least 5 and at most half of timeout_seconds."
  }
}

variable "tick_paused" {
  description = "Pause the tick (dispatching stops; nothing is destroyed)."
  type        = bool
  default     = false
}

variable "max_delivery_attempts" {
  description = "Deliveries of a fan-out message before Pub/Sub moves it to the dead-letter topic."
  type        = number
  default     = 5

  validation {
    condition     = var.max_delivery_attempts >= 5 && var.max_delivery_attempts <= 100
    error_message = "max_delivery_attempts must be between 5 and 100 (Pub/Sub's limits)."
  }
}

# --- secrets ------------------------------------------------------------------

variable "prefect_api_key" {
  description = "Prefect API key, stored in a new Secret Manager secret and mounted into both services as PREFECT_API_KEY. Leave null with prefect_api_key_secret_version to use an existing secret, or with both null for a server without API keys."
  type        = string
  default     = null
  sensitive   = true
}

variable "prefect_api_key_secret_version" {
  description = "Existing Secret Manager secret version holding the Prefect API key, mounted as PREFECT_API_KEY: projects/P/secrets/S/versions/V (V may be latest, read when an instance starts). Conflicts with prefect_api_key."
  type        = string
  default     = null

  validation {
    condition     = var.prefect_api_key_secret_version == null || can(regex("^projects/[^/]+/secrets/[^/]+/versions/[^/]+$", coalesce(var.prefect_api_key_secret_version, "x")))
    error_message = "prefect_api_key_secret_version must be a secret version resource name: projects/P/secrets/S/versions/V."
  }
  validation {
    condition     = var.prefect_api_key_secret_version == null || var.prefect_api_key == null
    error_message = "Set prefect_api_key or prefect_api_key_secret_version, not both."
  }
}

variable "prefect_api_auth_string" {
  description = "Basic auth string (user:password) of a Prefect server behind PREFECT_SERVER_API_AUTH_STRING, stored in a new Secret Manager secret and mounted into both services as PREFECT_API_AUTH_STRING. Null: none."
  type        = string
  default     = null
  sensitive   = true
}

variable "prefect_api_auth_string_secret_version" {
  description = "Existing Secret Manager secret version holding the basic auth string, mounted as PREFECT_API_AUTH_STRING: projects/P/secrets/S/versions/V. Conflicts with prefect_api_auth_string."
  type        = string
  default     = null

  validation {
    condition     = var.prefect_api_auth_string_secret_version == null || can(regex("^projects/[^/]+/secrets/[^/]+/versions/[^/]+$", coalesce(var.prefect_api_auth_string_secret_version, "x")))
    error_message = "prefect_api_auth_string_secret_version must be a secret version resource name: projects/P/secrets/S/versions/V."
  }
  validation {
    condition     = var.prefect_api_auth_string_secret_version == null || var.prefect_api_auth_string == null
    error_message = "Set prefect_api_auth_string or prefect_api_auth_string_secret_version, not both."
  }
}

variable "webhook_secret" {
  description = "HMAC key the webhook service verifies request bodies with, stored in a new Secret Manager secret and mounted into the webhook service as PUSHPOOL_WEBHOOK_SECRET_VALUE. Null (with webhook_secret_version null): a random 48-character key is generated; read it from the webhook_secret output."
  type        = string
  default     = null
  sensitive   = true

  validation {
    condition     = var.webhook_secret == null || length(coalesce(var.webhook_secret, "x")) >= 32
    error_message = "webhook_secret must be at least 32 characters long."
  }
}

variable "webhook_secret_version" {
  description = "Existing Secret Manager secret version holding the webhook HMAC key, mounted as PUSHPOOL_WEBHOOK_SECRET_VALUE: projects/P/secrets/S/versions/V. Conflicts with webhook_secret."
  type        = string
  default     = null

  validation {
    condition     = var.webhook_secret_version == null || can(regex("^projects/[^/]+/secrets/[^/]+/versions/[^/]+$", coalesce(var.webhook_secret_version, "x")))
    error_message = "webhook_secret_version must be a secret version resource name: projects/P/secrets/S/versions/V."
  }
  validation {
    condition     = var.webhook_secret_version == null || var.webhook_secret == null
    error_message = "Set webhook_secret or webhook_secret_version, not both."
  }
}
