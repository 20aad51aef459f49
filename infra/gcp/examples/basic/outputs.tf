output "webhook_url" {
  description = "Point Prefect automation webhooks here; sign bodies with the webhook secret."
  value       = module.pushpool.webhook_url
}

output "webhook_secret" {
  description = "The generated webhook HMAC key: terraform output -raw webhook_secret."
  value       = module.pushpool.webhook_secret
  sensitive   = true
}

output "service_account_email" {
  description = "The services' account."
  value       = module.pushpool.service_account_email
}

output "dead_letter_subscription" {
  description = "Messages that failed max_delivery_attempts times."
  value       = module.pushpool.dead_letter_subscription
}
