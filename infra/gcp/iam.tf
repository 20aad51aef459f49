# Least privilege: a custom role for Cloud Run jobs, predefined narrow roles
# for the rest, granted on single resources wherever the resource exists
# before the dispatcher runs. No basic roles (owner, editor, viewer);
# infra/infra_test.go enforces that.

# --- service accounts -----------------------------------------------------------

# Both Cloud Run services run as this account.
resource "google_service_account" "function" {
  project      = var.project_id
  account_id   = "${var.name}-fn"
  display_name = "pushpool dispatcher ${var.name}"
}

# The only caller of the events service: Pub/Sub push requests (ticks and
# fan-out shards) and Cloud Tasks wake-ups carry an OIDC token of this account
# (PUSHPOOL_TASKS_SERVICE_ACCOUNT).
resource "google_service_account" "invoker" {
  project      = var.project_id
  account_id   = "${var.name}-invoker"
  display_name = "pushpool ${var.name}: Pub/Sub push and Cloud Tasks calls to the events service"
}

# --- the dispatcher's own permissions -------------------------------------------

# Cloud Run jobs are created per flow run and take no IAM conditions, so no
# narrower resource exists to grant on: the role is granted on the jobs
# project. By default it is this custom role, holding exactly the
# permissions of the Cloud Run calls dispatch/backend/cloudrun makes
# (infra/permissions_test.go derives the list from the backend's calls and
# fails when they differ); var.cloud_run_role replaces it.
resource "google_project_iam_custom_role" "cloud_run_jobs" {
  count       = var.cloud_run_role == null ? 1 : 0
  project     = local.jobs_project_id
  role_id     = "${replace(var.name, "-", "_")}_cloud_run_jobs"
  title       = "pushpool ${var.name}: Cloud Run jobs of flow runs"
  description = "Create, read, list and delete Cloud Run jobs, start their execution at creation, read, list and cancel executions: what the pushpool dispatcher ${var.name} calls."
  permissions = [
    "run.executions.cancel", # CancelExecution (Stop)
    "run.executions.get",    # GetExecution (Status)
    "run.executions.list",   # ListExecutions (Statuses, Sweep)
    "run.jobs.create",       # CreateJob (Start)
    "run.jobs.delete",       # DeleteJob (Stop, Sweep, a failed Start)
    "run.jobs.get",          # GetJob (Start's readiness wait, Find, Status)
    "run.jobs.list",         # ListJobs (Sweep)
    "run.jobs.run",          # CreateJob's start_execution_token starts the execution
  ]
}

resource "google_project_iam_member" "function_cloud_run" {
  project = local.jobs_project_id
  role    = var.cloud_run_role != null ? var.cloud_run_role : google_project_iam_custom_role.cloud_run_jobs[0].name
  member  = google_service_account.function.member
}

# Creating a job that runs as a service account needs actAs on that account:
# granted on exactly the given job service accounts (the PassRole of GCP).
resource "google_service_account_iam_member" "function_act_as_job" {
  for_each           = toset(var.job_service_account_emails)
  service_account_id = "projects/${local.jobs_project_id}/serviceAccounts/${each.value}"
  role               = "roles/iam.serviceAccountUser"
  member             = google_service_account.function.member
}

# Fan-out shards are published to the topic.
resource "google_pubsub_topic_iam_member" "function_publisher" {
  project = var.project_id
  topic   = google_pubsub_topic.fanout.name
  role    = "roles/pubsub.publisher"
  member  = google_service_account.function.member
}

# Wake-ups are tasks created in the queue...
resource "google_cloud_tasks_queue_iam_member" "function_enqueuer" {
  project  = var.project_id
  location = var.region
  name     = google_cloud_tasks_queue.wakeups.name
  role     = "roles/cloudtasks.enqueuer"
  member   = google_service_account.function.member
}

# ...that carry an OIDC token of the invoker account, which needs actAs on it.
resource "google_service_account_iam_member" "function_act_as_invoker" {
  service_account_id = google_service_account.invoker.name
  role               = "roles/iam.serviceAccountUser"
  member             = google_service_account.function.member
}

# Cloud Run reads the mounted secrets as the services' account.
resource "google_secret_manager_secret_iam_member" "function" {
  for_each  = local.readable_secrets
  project   = var.project_id
  secret_id = each.value
  role      = "roles/secretmanager.secretAccessor"
  member    = google_service_account.function.member
}

# --- who may call the services --------------------------------------------------

resource "google_cloud_run_v2_service_iam_member" "events_invoker" {
  project  = var.project_id
  location = var.region
  name     = google_cloud_run_v2_service.events.name
  role     = "roles/run.invoker"
  member   = google_service_account.invoker.member
}

# Unauthenticated calls of the webhook service only (HMAC-verified there).
resource "google_cloud_run_v2_service_iam_member" "webhook_public" {
  project  = var.project_id
  location = var.region
  name     = google_cloud_run_v2_service.webhook.name
  role     = "roles/run.invoker"
  member   = "allUsers"
}

# --- Pub/Sub's service agent ----------------------------------------------------

locals {
  pubsub_service_agent = "serviceAccount:service-${local.project_number}@gcp-sa-pubsub.iam.gserviceaccount.com"
}

# Pub/Sub mints the push OIDC tokens of the invoker account (needed explicitly
# in projects created before April 2021).
resource "google_service_account_iam_member" "pubsub_token_creator" {
  service_account_id = google_service_account.invoker.name
  role               = "roles/iam.serviceAccountTokenCreator"
  member             = local.pubsub_service_agent
}

# Dead-lettering: Pub/Sub's service agent publishes to the dead-letter topic
# and acknowledges the forwarded message on the source subscription.
resource "google_pubsub_topic_iam_member" "dead_letter_publisher" {
  project = var.project_id
  topic   = google_pubsub_topic.dead_letter.name
  role    = "roles/pubsub.publisher"
  member  = local.pubsub_service_agent
}

resource "google_pubsub_subscription_iam_member" "dead_letter_subscriber" {
  project      = var.project_id
  subscription = google_pubsub_subscription.fanout.name
  role         = "roles/pubsub.subscriber"
  member       = local.pubsub_service_agent
}
