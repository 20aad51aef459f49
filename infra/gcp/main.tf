data "google_project" "this" {
  project_id = var.project_id
}

locals {
  project_number  = data.google_project.this.number
  jobs_project_id = coalesce(var.jobs_project_id, var.project_id)
  worker_name     = coalesce(var.worker_name, var.name)

  # Whether a secret value was given; count may not depend on sensitive values.
  has_prefect_api_key = nonsensitive(var.prefect_api_key != null)
  has_webhook_secret  = nonsensitive(var.webhook_secret != null)

  prefect_api_key_secret_version = local.has_prefect_api_key ? google_secret_manager_secret_version.prefect_api_key[0].name : var.prefect_api_key_secret_version
  webhook_secret_version         = var.webhook_secret_version != null ? var.webhook_secret_version : google_secret_manager_secret_version.webhook[0].name

  # What the functions read. These names are the contract with functions/gcp;
  # infra/infra_test.go checks them. Secrets are passed as version resource
  # names, never as values.
  contract_environment = {
    PREFECT_API_URL                 = var.prefect_api_url
    PUSHPOOL_POOLS                  = join(",", var.work_pools)
    PUSHPOOL_WORKER_NAME            = local.worker_name
    PUSHPOOL_SHARD_SIZE             = tostring(var.shard_size)
    PUSHPOOL_PREFECT_API_KEY_SECRET = local.prefect_api_key_secret_version == null ? "" : local.prefect_api_key_secret_version
    PUSHPOOL_WEBHOOK_SECRET         = local.webhook_secret_version
    PUSHPOOL_TOPIC                  = google_pubsub_topic.fanout.id
    PUSHPOOL_TASKS_QUEUE            = google_cloud_tasks_queue.wakeups.id
    PUSHPOOL_GCP_PROJECT            = local.jobs_project_id
  }
  function_environment = merge(var.extra_environment, local.contract_environment)

  # The payload of the scheduled tick (Cloud Scheduler -> Pub/Sub), as
  # functions/gcp recognises it in the message data.
  tick_payload = jsonencode({ pushpool = "tick" })

  events_function_name  = "${var.name}-events"
  webhook_function_name = "${var.name}-webhook"

  apis = [
    "cloudfunctions.googleapis.com",
    "run.googleapis.com",
    "cloudbuild.googleapis.com",
    "artifactregistry.googleapis.com",
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

# --- source -------------------------------------------------------------------

resource "google_storage_bucket" "source" {
  project                     = var.project_id
  name                        = "${var.project_id}-${var.name}-source"
  location                    = var.region
  uniform_bucket_level_access = true
  public_access_prevention    = "enforced"
  force_destroy               = true
  labels                      = var.labels

  lifecycle_rule {
    condition {
      num_newer_versions = 3
    }
    action {
      type = "Delete"
    }
  }

  versioning {
    enabled = true
  }
}

# The object name carries the content hash, so a new bundle redeploys both functions.
resource "google_storage_bucket_object" "source" {
  bucket = google_storage_bucket.source.name
  name   = "pushpool-${filemd5(var.source_zip_path)}.zip"
  source = var.source_zip_path
}

# --- the functions --------------------------------------------------------------

# The event function (entry point PushpoolEvent) takes the tick, fan-out shards,
# wake-ups: everything that arrives through the fan-out topic's push
# subscription. It has no Eventarc trigger of its own: the module's
# subscription pushes to it, so that the dead-letter topic and retry policy
# are the module's to set.
resource "google_cloudfunctions2_function" "events" {
  project     = var.project_id
  location    = var.region
  name        = local.events_function_name
  description = "pushpool dispatcher for Prefect work pools ${join(", ", var.work_pools)}"
  labels      = var.labels

  build_config {
    runtime         = var.runtime
    entry_point     = "PushpoolEvent"
    service_account = var.build_service_account_email == null ? null : "projects/${var.project_id}/serviceAccounts/${var.build_service_account_email}"
    source {
      storage_source {
        bucket = google_storage_bucket.source.name
        object = google_storage_bucket_object.source.name
      }
    }
  }

  service_config {
    service_account_email            = google_service_account.function.email
    timeout_seconds                  = var.timeout_seconds
    available_memory                 = var.memory
    max_instance_count               = var.max_instances
    min_instance_count               = 0
    max_instance_request_concurrency = 1
    ingress_settings                 = "ALLOW_ALL"
    all_traffic_on_latest_revision   = true
    environment_variables            = local.function_environment

    dynamic "direct_vpc_network_interface" {
      for_each = var.vpc_network == null ? [] : [1]
      content {
        network    = var.vpc_network
        subnetwork = var.vpc_subnetwork
      }
    }
    direct_vpc_egress = var.vpc_network == null ? null : "VPC_EGRESS_PRIVATE_RANGES_ONLY"
  }

  depends_on = [google_project_service.this, google_secret_manager_secret_iam_member.function]
}

# The webhook function (entry point PushpoolHTTP) for Prefect automations.
# Anyone may call it: it verifies an HMAC of the body with the webhook secret.
resource "google_cloudfunctions2_function" "webhook" {
  project     = var.project_id
  location    = var.region
  name        = local.webhook_function_name
  description = "pushpool webhook for Prefect automations (HMAC-verified)"
  labels      = var.labels

  build_config {
    runtime         = var.runtime
    entry_point     = "PushpoolHTTP"
    service_account = var.build_service_account_email == null ? null : "projects/${var.project_id}/serviceAccounts/${var.build_service_account_email}"
    source {
      storage_source {
        bucket = google_storage_bucket.source.name
        object = google_storage_bucket_object.source.name
      }
    }
  }

  service_config {
    service_account_email            = google_service_account.function.email
    timeout_seconds                  = var.timeout_seconds
    available_memory                 = var.memory
    max_instance_count               = var.webhook_max_instances
    min_instance_count               = 0
    max_instance_request_concurrency = 1
    ingress_settings                 = "ALLOW_ALL"
    all_traffic_on_latest_revision   = true
    environment_variables            = local.function_environment

    dynamic "direct_vpc_network_interface" {
      for_each = var.vpc_network == null ? [] : [1]
      content {
        network    = var.vpc_network
        subnetwork = var.vpc_subnetwork
      }
    }
    direct_vpc_egress = var.vpc_network == null ? null : "VPC_EGRESS_PRIVATE_RANGES_ONLY"
  }

  depends_on = [google_project_service.this, google_secret_manager_secret_iam_member.function]
}

# Unauthenticated invocations of the webhook only (HMAC-verified in the function).
resource "google_cloud_run_v2_service_iam_member" "webhook_public" {
  project  = var.project_id
  location = var.region
  name     = google_cloudfunctions2_function.webhook.service_config[0].service
  role     = "roles/run.invoker"
  member   = "allUsers"
}

# --- the tick -------------------------------------------------------------------

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
  function_log_filter = join(" OR ", [
    "(resource.type=\"cloud_run_revision\" AND resource.labels.service_name=(\"${local.events_function_name}\" OR \"${local.webhook_function_name}\"))",
    "(resource.type=\"cloud_function\" AND resource.labels.function_name=(\"${local.events_function_name}\" OR \"${local.webhook_function_name}\"))",
  ])
}

resource "google_logging_project_bucket_config" "functions" {
  project        = var.project_id
  location       = "global"
  bucket_id      = "${var.name}-functions"
  description    = "Logs of the pushpool functions ${local.events_function_name} and ${local.webhook_function_name}"
  retention_days = var.log_retention_days

  depends_on = [google_project_service.this]
}

resource "google_logging_project_sink" "functions" {
  project                = var.project_id
  name                   = "${var.name}-functions"
  description            = "Routes the pushpool functions' logs to their own bucket"
  destination            = "logging.googleapis.com/${google_logging_project_bucket_config.functions.id}"
  filter                 = local.function_log_filter
  unique_writer_identity = true
}

# Keep them out of _Default, so log_retention_days is their only retention.
resource "google_logging_project_exclusion" "functions" {
  project     = var.project_id
  name        = "${var.name}-functions"
  description = "pushpool function logs go to the ${var.name}-functions bucket"
  filter      = local.function_log_filter

  depends_on = [google_logging_project_sink.functions]
}
