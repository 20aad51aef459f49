# The fan-out topic (PUSHPOOL_TOPIC) carries the tick, which Cloud Scheduler
# publishes, and fan-out shards, which the events service publishes. A push
# subscription delivers each message to the events service on / as a Pub/Sub
# push envelope ({"message":{"data":...,"publishTime":...},...}) with an OIDC
# token of the invoker account. A non-2xx answer is retried with backoff (a
# tick only while it is younger than the wake horizon: the function
# acknowledges older ones without work); after max_delivery_attempts the
# message moves to the dead-letter topic. Wake-ups do not pass here: they are
# Cloud Tasks tasks (tasks.tf).

resource "google_pubsub_topic" "fanout" {
  project = var.project_id
  name    = "${var.name}-fanout"
  labels  = var.labels

  message_retention_duration = "86400s"

  depends_on = [google_project_service.this]
}

resource "google_pubsub_topic" "dead_letter" {
  project = var.project_id
  name    = "${var.name}-dead-letter"
  labels  = var.labels

  depends_on = [google_project_service.this]
}

resource "google_pubsub_subscription" "fanout" {
  project = var.project_id
  name    = "${var.name}-fanout-push"
  topic   = google_pubsub_topic.fanout.id
  labels  = var.labels

  # How long Pub/Sub waits for the service's answer before redelivering.
  ack_deadline_seconds       = min(600, var.timeout_seconds + 30)
  message_retention_duration = "86400s"

  push_config {
    push_endpoint = "${local.events_url}/"
    oidc_token {
      service_account_email = google_service_account.invoker.email
      audience              = local.events_url
    }
  }

  retry_policy {
    minimum_backoff = "10s"
    maximum_backoff = "300s"
  }

  dead_letter_policy {
    dead_letter_topic     = google_pubsub_topic.dead_letter.id
    max_delivery_attempts = var.max_delivery_attempts
  }

  expiration_policy {
    ttl = ""
  }

  # Deliveries start once the service exists and accepts the invoker.
  depends_on = [
    google_cloud_run_v2_service.events,
    google_cloud_run_v2_service_iam_member.events_invoker,
    google_service_account_iam_member.pubsub_token_creator,
    google_pubsub_topic_iam_member.dead_letter_publisher,
  ]
}

# Holds what was dead-lettered, for inspection and replay.
resource "google_pubsub_subscription" "dead_letter" {
  project = var.project_id
  name    = "${var.name}-dead-letter"
  topic   = google_pubsub_topic.dead_letter.id
  labels  = var.labels

  message_retention_duration = "604800s"
  ack_deadline_seconds       = 60

  expiration_policy {
    ttl = ""
  }
}
