# Delayed wake-ups (PUSHPOOL_TASKS_QUEUE): the function creates an HTTP task
# scheduled for the time a run becomes due. Whatever URL the task names, the
# queue sends it to the Pub/Sub publish method of the fan-out topic with an
# OAuth token of the <name>-tasks service account, which may publish to that
# topic only. The task body must therefore be a publish request:
#   {"messages":[{"data":"<base64 payload>","attributes":{...}}]}

resource "google_cloud_tasks_queue" "wakeups" {
  project  = var.project_id
  location = var.region
  name     = "${var.name}-wakeups"

  http_target {
    http_method = "POST"

    uri_override {
      scheme                    = "HTTPS"
      host                      = "pubsub.googleapis.com"
      uri_override_enforce_mode = "ALWAYS"
      path_override {
        path = "/v1/${google_pubsub_topic.fanout.id}:publish"
      }
    }

    header_overrides {
      header {
        key   = "Content-Type"
        value = "application/json"
      }
    }

    oauth_token {
      service_account_email = google_service_account.tasks.email
      scope                 = "https://www.googleapis.com/auth/pubsub"
    }
  }

  retry_config {
    max_attempts  = 10
    min_backoff   = "5s"
    max_backoff   = "300s"
    max_doublings = 4
  }

  stackdriver_logging_config {
    sampling_ratio = 0.1
  }

  depends_on = [google_project_service.this]
}
