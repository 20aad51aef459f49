# A Key Vault (RBAC mode) holding the Prefect API key or basic auth string and
# the webhook HMAC key. The app reads them through Key Vault references with
# its managed identity, which may read these secrets and nothing else in the
# vault.

resource "azurerm_key_vault" "this" {
  name                       = "kv-${trimsuffix(substr(var.name, 0, 14), "-")}-${local.suffix}"
  resource_group_name        = data.azurerm_resource_group.this.name
  location                   = local.location
  tenant_id                  = data.azurerm_client_config.current.tenant_id
  sku_name                   = "standard"
  rbac_authorization_enabled = true
  soft_delete_retention_days = 7
  purge_protection_enabled   = false
  tags                       = var.tags
}

# Whoever runs Terraform writes the secrets.
resource "azurerm_role_assignment" "deployer_secrets" {
  scope                = azurerm_key_vault.this.id
  role_definition_name = "Key Vault Secrets Officer"
  principal_id         = data.azurerm_client_config.current.object_id
}

# Role assignments take a while to reach Key Vault's data plane.
resource "time_sleep" "deployer_secrets" {
  create_duration = "60s"
  depends_on      = [azurerm_role_assignment.deployer_secrets]
}

resource "azurerm_key_vault_secret" "prefect_api_key" {
  count        = local.has_prefect_api_key ? 1 : 0
  name         = "prefect-api-key"
  key_vault_id = azurerm_key_vault.this.id
  value        = var.prefect_api_key
  content_type = "text/plain"
  depends_on   = [time_sleep.deployer_secrets]
}

resource "azurerm_key_vault_secret" "prefect_auth_string" {
  count        = local.has_prefect_auth_string ? 1 : 0
  name         = "prefect-auth-string"
  key_vault_id = azurerm_key_vault.this.id
  value        = var.prefect_api_auth_string
  content_type = "text/plain"
  depends_on   = [time_sleep.deployer_secrets]
}

resource "random_password" "webhook" {
  count   = local.has_webhook_secret ? 0 : 1
  length  = 48
  special = false
}

resource "azurerm_key_vault_secret" "webhook" {
  name         = "webhook-hmac"
  key_vault_id = azurerm_key_vault.this.id
  value        = local.has_webhook_secret ? var.webhook_secret : random_password.webhook[0].result
  content_type = "text/plain"
  depends_on   = [time_sleep.deployer_secrets]
}
