output "webhook_url" {
  description = "Point Prefect automation webhooks here; sign bodies with the webhook secret."
  value       = module.pushpool.webhook_url
}

output "webhook_secret" {
  description = "The generated webhook HMAC key: terraform output -raw webhook_secret."
  value       = module.pushpool.webhook_secret
  sensitive   = true
}

output "function_name" {
  description = "The dispatcher function."
  value       = module.pushpool.function_name
}

output "dead_letter_queue_url" {
  description = "Messages that failed queue_max_receive_count times."
  value       = module.pushpool.dead_letter_queue_url
}
