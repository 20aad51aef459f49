# The fan-out topic carries the tick, fan-out shards and wake-ups (PUSHPOOL_TOPIC).
# A push subscription delivers each message to the event function as a Pub/Sub
# push envelope ({"message":..., "subscription":...}) on the path
# /projects/P/topics/T, which functions-framework-go turns into a
# google.cloud.pubsub.topic.v1.messagePublished CloudEvent. A non-2xx answer
# is retried with backoff; after max_delivery_attempts the message moves to
# the dead-letter topic.

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

  # How long Pub/Sub waits for the function's answer before redelivering.
  ack_deadline_seconds       = min(600, var.timeout_seconds + 30)
  message_retention_duration = "86400s"

  push_config {
    push_endpoint = "${google_cloudfunctions2_function.events.service_config[0].uri}/${google_pubsub_topic.fanout.id}"
    oidc_token {
      service_account_email = google_service_account.push.email
      audience              = google_cloudfunctions2_function.events.service_config[0].uri
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

  depends_on = [
    google_cloud_run_v2_service_iam_member.events_push,
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
