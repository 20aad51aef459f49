data "google_project" "this" {
  project_id = var.project_id
}

locals {
  project_number  = data.google_project.this.number
  jobs_project_id = coalesce(var.jobs_project_id, var.project_id)
  worker_name     = coalesce(var.worker_name, var.name)

  events_service_name  = "${var.name}-events"
  webhook_service_name = "${var.name}-webhook"

  # The events service's own URL, which it gives wake-up tasks
  # (PUSHPOOL_SELF_URL) and the push subscription delivers to. It is Cloud
  # Run's deterministic URL, https://SERVICE-PROJECT_NUMBER.REGION.run.app,
  # known before the service exists: taking the service's uri attribute
  # instead would make the service depend on itself. A postcondition on the
  # service checks that it does serve this URL.
  events_url = "https://${local.events_service_name}-${local.project_number}.${var.region}.run.app"

  # The tick interval, when tick_schedule is "* * * * *" or "*/N * * * *":
  # runs due within it (plus a margin) get a Cloud Tasks wake-up. Other
  # schedules need wake_horizon_seconds (the variable's validation says so).
  tick_every            = try(regex("^\\*(?:/([0-9]+))? \\* \\* \\* \\*$", trimspace(var.tick_schedule)), null)
  tick_interval_seconds = local.tick_every == null ? null : 60 * coalesce(try(tonumber(local.tick_every[0]), null), 1)
  wake_horizon_seconds  = var.wake_horizon_seconds != null ? var.wake_horizon_seconds : local.tick_interval_seconds + 30

  # How long before the request deadline a pass stops claiming runs: a tenth
  # of the timeout, between 20 s (the function's default) and 60 s.
  submit_reserve_seconds = var.submit_reserve_seconds != null ? var.submit_reserve_seconds : min(60, max(20, floor(var.timeout_seconds / 10)))

  # What the services read: functions/gcp/config.go and
  # functions/internal/fnapp. infra/infra_test.go checks these names against
  # the Go code. No secret here: secrets are mounted from Secret Manager
  # (local.contract_secrets).
  contract_environment = {
    PREFECT_API_URL                  = var.prefect_api_url
    PUSHPOOL_POOLS                   = join(",", var.work_pools)
    PUSHPOOL_WORKER_NAME             = local.worker_name
    PUSHPOOL_SHARD_SIZE              = tostring(var.shard_size)
    PUSHPOOL_WAKE_HORIZON_SECONDS    = tostring(local.wake_horizon_seconds)
    PUSHPOOL_SUBMIT_RESERVE_SECONDS  = tostring(local.submit_reserve_seconds)
    PUSHPOOL_TOPIC                   = google_pubsub_topic.fanout.id
    PUSHPOOL_TASKS_QUEUE             = google_cloud_tasks_queue.wakeups.id
    PUSHPOOL_SELF_URL                = local.events_url
    PUSHPOOL_TASKS_SERVICE_ACCOUNT   = google_service_account.invoker.email
    PUSHPOOL_REQUEST_TIMEOUT_SECONDS = tostring(var.timeout_seconds)
    PUSHPOOL_GCP_PROJECT             = local.jobs_project_id
  }
  function_environment = merge(var.extra_environment, local.contract_environment)

  # What each service answers (PUSHPOOL_ROUTES): the private one takes the
  # platform's deliveries on /, the public one only the signed webhook.
  events_environment  = merge(local.function_environment, { PUSHPOOL_ROUTES = "events" })
  webhook_environment = merge(local.function_environment, { PUSHPOOL_ROUTES = "webhook" })

  # The payload of the scheduled tick (Cloud Scheduler -> Pub/Sub), as
  # functions/gcp recognises it in the message data.
  tick_payload = jsonencode({ pushpool = "tick" })

  apis = [
    "run.googleapis.com",
    "iam.googleapis.com",
    "pubsub.googleapis.com",
    "cloudscheduler.googleapis.com",
    "cloudtasks.googleapis.com",
    "secretmanager.googleapis.com",
    "logging.googleapis.com",
  ]
}

resource "google_project_service" "this" {
  for_each           = var.enable_apis ? toset(local.apis) : toset([])
  project            = var.project_id
  service            = each.value
  disable_on_destroy = false
}

# --- the services ---------------------------------------------------------------

# The events service takes the tick and fan-out shards (Pub/Sub push
# subscription) and wake-ups (Cloud Tasks), all on /. Only the invoker
# service account may call it.
resource "google_cloud_run_v2_service" "events" {
  project             = var.project_id
  location            = var.region
  name                = local.events_service_name
  description         = "pushpool dispatcher for Prefect work pools ${join(", ", var.work_pools)}"
  labels              = var.labels
  ingress             = var.events_ingress
  deletion_protection = false

  template {
    service_account                  = google_service_account.function.email
    timeout                          = "${var.timeout_seconds}s"
    max_instance_request_concurrency = var.concurrency
    labels                           = var.labels

    scaling {
      min_instance_count = 0
      max_instance_count = var.max_instances
    }

    containers {
      image = var.image

      ports {
        container_port = 8080
      }

      resources {
        limits = {
          cpu    = "1"
          memory = var.memory
        }
        cpu_idle          = true
        startup_cpu_boost = true
      }

      dynamic "env" {
        for_each = local.events_environment
        content {
          name  = env.key
          value = env.value
        }
      }

      # PREFECT_API_KEY / PREFECT_API_AUTH_STRING from Secret Manager.
      dynamic "env" {
        for_each = local.events_secrets
        content {
          name = env.key
          value_source {
            secret_key_ref {
              secret  = env.value.secret
              version = env.value.version
            }
          }
        }
      }
    }

    dynamic "vpc_access" {
      for_each = var.vpc_network == null ? [] : [1]
      content {
        egress = "PRIVATE_RANGES_ONLY"
        network_interfaces {
          network    = var.vpc_network
          subnetwork = var.vpc_subnetwork
        }
      }
    }
  }

  lifecycle {
    postcondition {
      condition     = contains(self.urls, local.events_url)
      error_message = "The events service does not serve ${local.events_url}, the deterministic URL the push subscription and the wake-up tasks use (its URLs: ${join(", ", self.urls)}). Cloud Run assigns it unless default URLs are disabled or SERVICE-PROJECT_NUMBER exceeds 63 characters."
    }
  }

  # A revision reads its secrets when it starts: grant access first.
  depends_on = [google_project_service.this, google_secret_manager_secret_iam_member.function]
}

# The webhook service takes signed webhooks on /webhook. Anyone may call it:
# Prefect cannot present a Google identity, and the service verifies an HMAC
# of the body with the webhook secret and refuses everything else.
resource "google_cloud_run_v2_service" "webhook" {
  project             = var.project_id
  location            = var.region
  name                = local.webhook_service_name
  description         = "pushpool webhook for Prefect automations (HMAC-verified)"
  labels              = var.labels
  ingress             = "INGRESS_TRAFFIC_ALL"
  deletion_protection = false

  template {
    service_account                  = google_service_account.function.email
    timeout                          = "${var.timeout_seconds}s"
    max_instance_request_concurrency = var.concurrency
    labels                           = var.labels

    scaling {
      min_instance_count = 0
      max_instance_count = var.webhook_max_instances
    }

    containers {
      image = var.image

      ports {
        container_port = 8080
      }

      resources {
        limits = {
          cpu    = "1"
          memory = var.memory
        }
        cpu_idle          = true
        startup_cpu_boost = true
      }

      dynamic "env" {
        for_each = local.webhook_environment
        content {
          name  = env.key
          value = env.value
        }
      }

      # The Prefect credentials and PUSHPOOL_WEBHOOK_SECRET_VALUE.
      dynamic "env" {
        for_each = local.webhook_secrets
        content {
          name = env.key
          value_source {
            secret_key_ref {
              secret  = env.value.secret
              version = env.value.version
            }
          }
        }
      }
    }

    dynamic "vpc_access" {
      for_each = var.vpc_network == null ? [] : [1]
      content {
        egress = "PRIVATE_RANGES_ONLY"
        network_interfaces {
          network    = var.vpc_network
          subnetwork = var.vpc_subnetwork
        }
      }
    }
  }

  depends_on = [google_project_service.this, google_secret_manager_secret_iam_member.function]
}

# --- the tick -------------------------------------------------------------------

# Cloud Scheduler publishes {"pushpool":"tick"} to the fan-out topic; the push
# subscription delivers it to the events service like any other message.
resource "google_cloud_scheduler_job" "tick" {
  project     = var.project_id
  region      = var.region
  name        = "${var.name}-tick"
  description = "pushpool dispatch tick for ${var.name}"
  schedule    = var.tick_schedule
  time_zone   = "Etc/UTC"
  paused      = var.tick_paused

  # A missed tick is made up by the next one.
  retry_config {
    retry_count = 0
  }

  pubsub_target {
    topic_name = google_pubsub_topic.fanout.id
    data       = base64encode(local.tick_payload)
  }

  depends_on = [google_project_service.this]
}

# --- logs -----------------------------------------------------------------------

locals {
  service_log_filter = "resource.type=\"cloud_run_revision\" AND resource.labels.service_name=(\"${local.events_service_name}\" OR \"${local.webhook_service_name}\")"
}

resource "google_logging_project_bucket_config" "functions" {
  project        = var.project_id
  location       = "global"
  bucket_id      = "${var.name}-functions"
  description    = "Logs of the pushpool services ${local.events_service_name} and ${local.webhook_service_name}"
  retention_days = var.log_retention_days

  depends_on = [google_project_service.this]
}

resource "google_logging_project_sink" "functions" {
  project                = var.project_id
  name                   = "${var.name}-functions"
  description            = "Routes the pushpool services' logs to their own bucket"
  destination            = "logging.googleapis.com/${google_logging_project_bucket_config.functions.id}"
  filter                 = local.service_log_filter
  unique_writer_identity = true
}

# Keep them out of _Default, so log_retention_days is their only retention.
resource "google_logging_project_exclusion" "functions" {
  project     = var.project_id
  name        = "${var.name}-functions"
  description = "pushpool service logs go to the ${var.name}-functions bucket"
  filter      = local.service_log_filter

  depends_on = [google_logging_project_sink.functions]
}
