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
      email  = "pushpool-fn@my-project-1.iam.gserviceaccount.com"
      member = "serviceAccount:pushpool-fn@my-project-1.iam.gserviceaccount.com"
      name   = "projects/my-project-1/serviceAccounts/pushpool-fn@my-project-1.iam.gserviceaccount.com"
    }
  }
}

mock_provider "random" {}

variables {
  project_id      = "my-project-1"
  region          = "europe-west1"
  source_zip_path = "tests/fixtures/source.zip"
  prefect_api_url = "https://prefect.example.com/api"
  work_pools      = ["cloud-run-a", "cloud-run-b"]
}

run "minimal" {
  command = plan

  assert {
    condition     = google_cloudfunctions2_function.events.build_config[0].entry_point == "PushpoolEvent"
    error_message = "event function entry point"
  }
  assert {
    condition     = google_cloudfunctions2_function.webhook.build_config[0].entry_point == "PushpoolHTTP"
    error_message = "webhook function entry point"
  }
  assert {
    condition     = google_cloudfunctions2_function.events.service_config[0].environment_variables["PUSHPOOL_POOLS"] == "cloud-run-a,cloud-run-b"
    error_message = "PUSHPOOL_POOLS"
  }
  assert {
    condition     = google_cloudfunctions2_function.events.service_config[0].environment_variables["PUSHPOOL_PREFECT_API_KEY_SECRET"] == ""
    error_message = "no API key: empty secret name"
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
}

run "existing_secrets_and_jobs" {
  command = plan

  variables {
    prefect_api_key_secret_version = "projects/p/secrets/key/versions/latest"
    webhook_secret_version         = "projects/p/secrets/hmac/versions/3"
    job_service_account_emails     = ["runner@my-project-1.iam.gserviceaccount.com"]
    extra_environment              = { PUSHPOOL_LOG_FORMAT = "json" }
    log_retention_days             = 90
  }

  assert {
    condition     = google_cloudfunctions2_function.events.service_config[0].environment_variables["PUSHPOOL_PREFECT_API_KEY_SECRET"] == "projects/p/secrets/key/versions/latest"
    error_message = "existing API key version passed through"
  }
  assert {
    condition     = google_cloudfunctions2_function.webhook.service_config[0].environment_variables["PUSHPOOL_LOG_FORMAT"] == "json"
    error_message = "extra environment"
  }
  assert {
    condition     = length(random_password.webhook) == 0 && length(google_secret_manager_secret.webhook) == 0
    error_message = "no secret created for an existing version"
  }
  assert {
    condition     = google_secret_manager_secret_iam_member.function["prefect_api_key"].secret_id == "projects/p/secrets/key"
    error_message = "accessor granted on the existing secret"
  }
  assert {
    condition     = google_service_account_iam_member.function_act_as_job["runner@my-project-1.iam.gserviceaccount.com"].role == "roles/iam.serviceAccountUser"
    error_message = "actAs on the job service account"
  }
}

run "api_key_value" {
  command = apply

  variables {
    prefect_api_key = "pnu_test_key"
    webhook_secret  = "0123456789abcdef0123456789abcdef"
  }

  assert {
    condition     = length(google_secret_manager_secret.prefect_api_key) == 1 && length(random_password.webhook) == 0
    error_message = "API key secret created; webhook key not generated"
  }
  assert {
    condition     = startswith(google_pubsub_subscription.fanout.push_config[0].push_endpoint, google_cloudfunctions2_function.events.service_config[0].uri)
    error_message = "push endpoint on the event function"
  }
}
