output "webhook_url" {
  description = "Point Prefect automation webhooks here (includes the function key): terraform output -raw webhook_url."
  value       = module.pushpool.webhook_url
  sensitive   = true
}

output "webhook_secret" {
  description = "The generated webhook HMAC key: terraform output -raw webhook_secret."
  value       = module.pushpool.webhook_secret
  sensitive   = true
}

output "function_app_name" {
  description = "The dispatcher function app."
  value       = module.pushpool.function_app_name
}

output "poison_queue_name" {
  description = "Messages that failed queue_max_dequeue_count times."
  value       = module.pushpool.poison_queue_name
}
