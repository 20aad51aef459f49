output "events_function_name" {
  description = "Name of the event function (entry point PushpoolEvent)."
  value       = google_cloudfunctions2_function.events.name
}

output "webhook_function_name" {
  description = "Name of the webhook function (entry point PushpoolHTTP)."
  value       = google_cloudfunctions2_function.webhook.name
}

output "webhook_url" {
  description = "URL for Prefect automation webhooks; requests must carry the HMAC of the body made with the webhook secret."
  value       = google_cloudfunctions2_function.webhook.service_config[0].uri
}

output "webhook_secret" {
  description = "The generated webhook HMAC key (null when webhook_secret or webhook_secret_version was given)."
  value       = one(random_password.webhook[*].result)
  sensitive   = true
}

output "service_account_email" {
  description = "Service account the functions run as; grant it what the pools' job templates need beyond Cloud Run."
  value       = google_service_account.function.email
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
  description = "Cloud Tasks queue for delayed wake-ups (PUSHPOOL_TASKS_QUEUE)."
  value       = google_cloud_tasks_queue.wakeups.id
}

output "log_bucket" {
  description = "Log bucket holding the functions' logs for log_retention_days."
  value       = google_logging_project_bucket_config.functions.id
}

output "environment" {
  description = "The environment the functions run with (no secret values: secrets are passed as version names)."
  value       = local.function_environment
}
