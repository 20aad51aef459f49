output "events_service_name" {
  description = "Name of the private Cloud Run service taking ticks, fan-out shards and wake-ups (PUSHPOOL_ROUTES=events)."
  value       = google_cloud_run_v2_service.events.name
}

output "events_url" {
  description = "URL of the events service (its deterministic run.app URL): the push endpoint, the wake-up tasks' target and PUSHPOOL_SELF_URL."
  value       = local.events_url
}

output "webhook_service_name" {
  description = "Name of the public Cloud Run service taking signed webhooks (PUSHPOOL_ROUTES=webhook)."
  value       = google_cloud_run_v2_service.webhook.name
}

output "webhook_url" {
  description = "URL for Prefect automation webhooks (POST); requests must carry the HMAC of the body made with the webhook secret (X-Pushpool-Signature)."
  value       = "${google_cloud_run_v2_service.webhook.uri}/webhook"
}

output "webhook_secret" {
  description = "The generated webhook HMAC key (null when webhook_secret or webhook_secret_version was given)."
  value       = one(random_password.webhook[*].result)
  sensitive   = true
}

output "service_account_email" {
  description = "Service account both services run as; grant it what the pools' job templates need beyond Cloud Run."
  value       = google_service_account.function.email
}

output "invoker_service_account_email" {
  description = "Service account whose OIDC tokens Pub/Sub push and Cloud Tasks present to the events service (PUSHPOOL_TASKS_SERVICE_ACCOUNT)."
  value       = google_service_account.invoker.email
}

output "topic" {
  description = "Fan-out topic (PUSHPOOL_TOPIC)."
  value       = google_pubsub_topic.fanout.id
}

output "dead_letter_topic" {
  description = "Dead-letter topic of the fan-out subscription."
  value       = google_pubsub_topic.dead_letter.id
}

output "dead_letter_subscription" {
  description = "Pull subscription holding dead-lettered messages for 7 days; alert on its num_undelivered_messages."
  value       = google_pubsub_subscription.dead_letter.id
}

output "tasks_queue" {
  description = "Cloud Tasks queue of delayed wake-ups (PUSHPOOL_TASKS_QUEUE)."
  value       = google_cloud_tasks_queue.wakeups.id
}

output "log_bucket" {
  description = "Log bucket holding the services' logs for log_retention_days."
  value       = google_logging_project_bucket_config.functions.id
}

output "environment" {
  description = "The plain environment both services run with, besides PUSHPOOL_ROUTES (no secret values: secrets are mounted from Secret Manager)."
  value       = local.function_environment
}

output "secret_environment" {
  description = "The variables mounted from Secret Manager into the webhook service (the events service gets all but PUSHPOOL_WEBHOOK_SECRET_VALUE): name => secret and version."
  value       = local.webhook_secrets
}
