# Plans and applies the module against a mocked Google provider: no credentials,
# no cloud. Run from infra/gcp with `terraform init && terraform test`
# (the providers must be installable, or provided by dev_overrides).

mock_provider "google" {
  mock_data "google_project" {
    defaults = {
      number = "123456789012"
    }
  }

  # Computed values the provider validates when they feed other resources.
  mock_resource "google_service_account" {
    defaults = {
      email  = "pushpool-invoker@my-project-1.iam.gserviceaccount.com"
      member = "serviceAccount:pushpool-invoker@my-project-1.iam.gserviceaccount.com"
      name   = "projects/my-project-1/serviceAccounts/pushpool-invoker@my-project-1.iam.gserviceaccount.com"
    }
  }
  mock_resource "google_project_iam_custom_role" {
    defaults = {
      name = "projects/my-project-1/roles/pushpool_cloud_run_jobs"
    }
  }
  mock_resource "google_pubsub_topic" {
    defaults = {
      id = "projects/my-project-1/topics/pushpool-fanout"
    }
  }
  mock_resource "google_cloud_tasks_queue" {
    defaults = {
      id = "projects/my-project-1/locations/europe-west1/queues/pushpool-wakeups"
    }
  }
  mock_resource "google_secret_manager_secret" {
    defaults = {
      id = "projects/my-project-1/secrets/pushpool-secret"
    }
  }
  mock_resource "google_secret_manager_secret_version" {
    defaults = {
      version = "1"
    }
  }
  # What Cloud Run reports after apply: the deterministic URL among the
  # service's URLs (the events service's postcondition checks it).
  mock_resource "google_cloud_run_v2_service" {
    defaults = {
      uri  = "https://pushpool-webhook-abcdefghij-ew.a.run.app"
      urls = ["https://pushpool-events-123456789012.europe-west1.run.app", "https://pushpool-events-abcdefghij-ew.a.run.app"]
    }
  }
}

mock_provider "random" {}

variables {
  project_id      = "my-project-1"
  region          = "europe-west1"
  image           = "europe-west1-docker.pkg.dev/my-project-1/pushpool/gcp@sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"
  prefect_api_url = "https://prefect.example.com/api"
  work_pools      = ["cloud-run-a", "cloud-run-b"]
}

run "minimal" {
  command = plan

  assert {
    condition     = google_cloud_run_v2_service.events.template[0].containers[0].image == var.image && google_cloud_run_v2_service.webhook.template[0].containers[0].image == var.image
    error_message = "both services run the image"
  }
  assert {
    condition     = { for e in google_cloud_run_v2_service.events.template[0].containers[0].env : e.name => e.value if length(e.value_source) == 0 }["PUSHPOOL_ROUTES"] == "events"
    error_message = "the events service answers events only"
  }
  assert {
    condition     = { for e in google_cloud_run_v2_service.webhook.template[0].containers[0].env : e.name => e.value if length(e.value_source) == 0 }["PUSHPOOL_ROUTES"] == "webhook"
    error_message = "the webhook service answers the webhook only"
  }
  assert {
    condition     = { for e in google_cloud_run_v2_service.events.template[0].containers[0].env : e.name => e.value if length(e.value_source) == 0 }["PUSHPOOL_SELF_URL"] == "https://pushpool-events-123456789012.europe-west1.run.app"
    error_message = "PUSHPOOL_SELF_URL is the events service's deterministic URL"
  }
  assert {
    condition     = { for e in google_cloud_run_v2_service.webhook.template[0].containers[0].env : e.name => e.value if length(e.value_source) == 0 }["PUSHPOOL_SELF_URL"] == "https://pushpool-events-123456789012.europe-west1.run.app"
    error_message = "the webhook service's wake-ups go to the events service too"
  }
  assert {
    condition     = { for e in google_cloud_run_v2_service.events.template[0].containers[0].env : e.name => e.value if length(e.value_source) == 0 }["PUSHPOOL_POOLS"] == "cloud-run-a,cloud-run-b"
    error_message = "PUSHPOOL_POOLS"
  }
  assert {
    condition     = { for e in google_cloud_run_v2_service.events.template[0].containers[0].env : e.name => e.value if length(e.value_source) == 0 }["PUSHPOOL_WAKE_HORIZON_SECONDS"] == "90"
    error_message = "wake horizon: the one-minute tick plus 30 s"
  }
  assert {
    condition     = { for e in google_cloud_run_v2_service.events.template[0].containers[0].env : e.name => e.value if length(e.value_source) == 0 }["PUSHPOOL_SUBMIT_RESERVE_SECONDS"] == "30"
    error_message = "submit reserve: a tenth of the 300 s timeout"
  }
  assert {
    condition     = { for e in google_cloud_run_v2_service.events.template[0].containers[0].env : e.name => e.value if length(e.value_source) == 0 }["PUSHPOOL_REQUEST_TIMEOUT_SECONDS"] == "300" && google_cloud_run_v2_service.events.template[0].timeout == "300s"
    error_message = "PUSHPOOL_REQUEST_TIMEOUT_SECONDS is the service timeout"
  }
  assert {
    condition     = [for e in google_cloud_run_v2_service.events.template[0].containers[0].env : e.name if length(e.value_source) > 0] == []
    error_message = "no API key: the events service mounts no secret"
  }
  assert {
    condition     = [for e in google_cloud_run_v2_service.webhook.template[0].containers[0].env : e.name if length(e.value_source) > 0] == ["PUSHPOOL_WEBHOOK_SECRET_VALUE"]
    error_message = "the webhook service mounts the webhook secret"
  }
  assert {
    condition     = google_pubsub_subscription.fanout.push_config[0].push_endpoint == "https://pushpool-events-123456789012.europe-west1.run.app/" && google_pubsub_subscription.fanout.push_config[0].oidc_token[0].audience == "https://pushpool-events-123456789012.europe-west1.run.app"
    error_message = "push to / of the events service with an OIDC token for its URL"
  }
  assert {
    condition     = jsondecode(base64decode(google_cloud_scheduler_job.tick.pubsub_target[0].data)) == { pushpool = "tick" } && google_cloud_scheduler_job.tick.pubsub_target[0].attributes == null
    error_message = "the tick publishes {\"pushpool\":\"tick\"} and no attributes"
  }
  assert {
    condition     = length(google_cloud_tasks_queue.wakeups.http_target) == 0
    error_message = "no queue-level HTTP override: tasks carry their URL and OIDC token"
  }
  assert {
    condition     = length(random_password.webhook) == 1 && length(google_secret_manager_secret.prefect_api_key) == 0
    error_message = "webhook key generated, no API key secret"
  }
  assert {
    condition     = google_pubsub_subscription.fanout.dead_letter_policy[0].max_delivery_attempts == 5
    error_message = "dead-letter policy"
  }
  assert {
    condition     = google_logging_project_bucket_config.functions.retention_days == 30
    error_message = "log retention"
  }
  assert {
    condition     = google_project_iam_custom_role.cloud_run_jobs[0].role_id == "pushpool_cloud_run_jobs" && google_project_iam_custom_role.cloud_run_jobs[0].project == "my-project-1"
    error_message = "the Cloud Run jobs role is created in the jobs project"
  }
  assert {
    condition     = google_project_iam_member.function_cloud_run.role == "projects/my-project-1/roles/pushpool_cloud_run_jobs"
    error_message = "the dispatcher gets the custom Cloud Run jobs role by default"
  }
}

run "existing_secrets_and_jobs" {
  command = plan

  variables {
    prefect_api_key_secret_version = "projects/p/secrets/key/versions/latest"
    webhook_secret_version         = "projects/p/secrets/hmac/versions/3"
    job_service_account_emails     = ["runner@my-project-1.iam.gserviceaccount.com"]
    extra_environment              = { PUSHPOOL_CLOUDRUN_SWEEP_AFTER = "30m" }
    log_retention_days             = 90
    cloud_run_role                 = "roles/run.developer"
  }

  assert {
    condition     = length(google_project_iam_custom_role.cloud_run_jobs) == 0 && google_project_iam_member.function_cloud_run.role == "roles/run.developer"
    error_message = "a given cloud_run_role replaces the custom role"
  }

  assert {
    condition     = [for e in google_cloud_run_v2_service.events.template[0].containers[0].env : e.value_source[0].secret_key_ref[0] if e.name == "PREFECT_API_KEY"] == [{ secret = "projects/p/secrets/key", version = "latest" }]
    error_message = "the existing API key version is mounted as PREFECT_API_KEY"
  }
  assert {
    condition     = [for e in google_cloud_run_v2_service.webhook.template[0].containers[0].env : e.value_source[0].secret_key_ref[0] if e.name == "PUSHPOOL_WEBHOOK_SECRET_VALUE"] == [{ secret = "projects/p/secrets/hmac", version = "3" }]
    error_message = "the existing webhook version is mounted as PUSHPOOL_WEBHOOK_SECRET_VALUE"
  }
  assert {
    condition     = { for e in google_cloud_run_v2_service.webhook.template[0].containers[0].env : e.name => e.value if length(e.value_source) == 0 }["PUSHPOOL_CLOUDRUN_SWEEP_AFTER"] == "30m"
    error_message = "extra environment"
  }
  assert {
    condition     = length(random_password.webhook) == 0 && length(google_secret_manager_secret.webhook) == 0
    error_message = "no secret created for an existing version"
  }
  assert {
    condition     = google_secret_manager_secret_iam_member.function["prefect_api_key"].secret_id == "projects/p/secrets/key" && google_secret_manager_secret_iam_member.function["webhook"].secret_id == "projects/p/secrets/hmac"
    error_message = "accessor granted on the existing secrets"
  }
  assert {
    condition     = google_service_account_iam_member.function_act_as_job["runner@my-project-1.iam.gserviceaccount.com"].role == "roles/iam.serviceAccountUser"
    error_message = "actAs on the job service account"
  }
}

run "every_n_minutes" {
  command = plan

  variables {
    tick_schedule   = "*/5 * * * *"
    timeout_seconds = 540
  }

  assert {
    condition     = { for e in google_cloud_run_v2_service.events.template[0].containers[0].env : e.name => e.value if length(e.value_source) == 0 }["PUSHPOOL_WAKE_HORIZON_SECONDS"] == "330"
    error_message = "wake horizon from */5"
  }
  assert {
    condition     = { for e in google_cloud_run_v2_service.events.template[0].containers[0].env : e.name => e.value if length(e.value_source) == 0 }["PUSHPOOL_SUBMIT_RESERVE_SECONDS"] == "54" && google_pubsub_subscription.fanout.ack_deadline_seconds == 570
    error_message = "submit reserve and acknowledgement deadline from the timeout"
  }
}

run "credentials_created" {
  command = apply

  variables {
    prefect_api_key         = "pnu_test_key"
    prefect_api_auth_string = "admin:secret"
    webhook_secret          = "0123456789abcdef0123456789abcdef"
  }

  assert {
    condition     = length(google_secret_manager_secret.prefect_api_key) == 1 && length(google_secret_manager_secret.prefect_auth_string) == 1 && length(random_password.webhook) == 0
    error_message = "API key and auth string secrets created; webhook key not generated"
  }
  assert {
    condition     = toset([for e in google_cloud_run_v2_service.events.template[0].containers[0].env : e.name if length(e.value_source) > 0]) == toset(["PREFECT_API_KEY", "PREFECT_API_AUTH_STRING"])
    error_message = "the events service mounts the Prefect credentials, not the webhook secret"
  }
  assert {
    condition     = [for e in google_cloud_run_v2_service.events.template[0].containers[0].env : e.value_source[0].secret_key_ref[0].version if e.name == "PREFECT_API_KEY"] == ["1"]
    error_message = "the created version is pinned"
  }
  assert {
    condition     = length(google_secret_manager_secret_iam_member.function) == 3
    error_message = "accessor on the three secrets"
  }
  assert {
    condition     = { for e in google_cloud_run_v2_service.events.template[0].containers[0].env : e.name => e.value if length(e.value_source) == 0 }["PUSHPOOL_TASKS_QUEUE"] == "projects/my-project-1/locations/europe-west1/queues/pushpool-wakeups"
    error_message = "PUSHPOOL_TASKS_QUEUE is the queue's full name"
  }
  assert {
    condition     = google_cloud_run_v2_service_iam_member.webhook_public.member == "allUsers" && google_cloud_run_v2_service_iam_member.events_invoker.member == google_service_account.invoker.member
    error_message = "public webhook, private events service"
  }
  assert {
    condition     = output.webhook_url == "https://pushpool-webhook-abcdefghij-ew.a.run.app/webhook"
    error_message = "webhook URL is the webhook service's /webhook"
  }
}
