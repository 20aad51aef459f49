output "function_app_name" {
  description = "Name of the function app."
  value       = azurerm_function_app_flex_consumption.this.name
}

output "function_app_principal_id" {
  description = "Object ID of the app's system-assigned identity; assign it what the pools' templates need beyond ACI."
  value       = local.principal_id
}

output "webhook_url" {
  description = "URL for Prefect automation webhooks, with the default function key; requests must also carry the HMAC of the body made with the webhook secret."
  value       = "https://${azurerm_function_app_flex_consumption.this.default_hostname}/api/webhook?code=${data.azurerm_function_app_host_keys.this.default_function_key}"
  sensitive   = true
}

output "webhook_secret" {
  description = "The generated webhook HMAC key (null when webhook_secret was given)."
  value       = one(random_password.webhook[*].result)
  sensitive   = true
}

output "queue_name" {
  description = "Fan-out / wake-up storage queue (PUSHPOOL_QUEUE); failed messages land in <queue>-poison."
  value       = azurerm_storage_queue.fanout.name
}

output "poison_queue_name" {
  description = "Poison queue the Functions host moves failed messages to (created on first use); alert on its length."
  value       = "${azurerm_storage_queue.fanout.name}-poison"
}

output "storage_account_name" {
  description = "Storage account of the host state, the deployment package and the queues."
  value       = azurerm_storage_account.this.name
}

output "key_vault_id" {
  description = "Key Vault holding the Prefect API key and the webhook HMAC key."
  value       = azurerm_key_vault.this.id
}

output "application_insights_connection_string" {
  description = "Application Insights the app logs to."
  value       = azurerm_application_insights.this.connection_string
  sensitive   = true
}

output "deploy_command" {
  description = "Deploys a new package by hand (what deploy_package runs)."
  value       = "az functionapp deployment source config-zip --subscription ${data.azurerm_client_config.current.subscription_id} --resource-group ${data.azurerm_resource_group.this.name} --name ${azurerm_function_app_flex_consumption.this.name} --src ${var.package_zip_path}"
}

output "environment" {
  description = "The app settings the function reads (secrets are Key Vault references, not values)."
  value       = local.function_environment
}
