# Delayed wake-ups (PUSHPOOL_TASKS_QUEUE): for each run due before the next
# tick, the events service (or the webhook service, for a run announced
# early) creates an HTTP task itself, scheduled for the run's due time: a
# POST of the wake-up message to PUSHPOOL_SELF_URL (the events service) with
# an OIDC token of PUSHPOOL_TASKS_SERVICE_ACCOUNT (the invoker account), named
# after the run and its due time so a wake-up is never queued twice. So the
# queue has no HTTP target override of its own: the tasks carry their URL and
# token.

resource "google_cloud_tasks_queue" "wakeups" {
  project  = var.project_id
  location = var.region
  name     = "${var.name}-wakeups"

  # A wake-up that fails (the run could not be claimed or submitted yet) is
  # tried again; a later tick takes the run in any case.
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
