data "azurerm_client_config" "current" {}

data "azurerm_resource_group" "this" {
  name = var.resource_group_name
}

data "azurerm_resource_group" "aci" {
  name = var.aci_resource_group_name
}

# Storage account, key vault and app host names are global: a stable suffix.
resource "random_string" "suffix" {
  length  = 6
  lower   = true
  upper   = false
  numeric = true
  special = false
}

locals {
  location    = coalesce(var.location, data.azurerm_resource_group.this.location)
  worker_name = coalesce(var.worker_name, var.name)
  suffix      = random_string.suffix.result
  app_name    = "${var.name}-${local.suffix}"

  # Whether a secret value was given; count may not depend on sensitive values.
  has_prefect_api_key     = nonsensitive(var.prefect_api_key != null)
  has_prefect_auth_string = nonsensitive(var.prefect_api_auth_string != null)
  has_webhook_secret      = nonsensitive(var.webhook_secret != null)

  # How long before the invocation deadline (the function timeout less the
  # handler's 5 s to answer the host) a pass stops claiming runs: a tenth of
  # the timeout, between 20 s (the function's default) and 60 s.
  submit_reserve_seconds = var.submit_reserve_seconds != null ? var.submit_reserve_seconds : min(60, max(20, floor(var.timeout_seconds / 10)))

  # What the handler reads: functions/azure/function.go (on branch
  # helper/azure) and functions/internal/fnapp. infra/infra_test.go checks
  # these names. Secrets are Key Vault references, resolved by the platform
  # with the app's managed identity (the handler refuses to start on one left
  # unresolved); never values. "" means none.
  contract_environment = {
    PREFECT_API_URL                 = var.prefect_api_url
    PUSHPOOL_POOLS                  = join(",", var.work_pools)
    PUSHPOOL_WORKER_NAME            = local.worker_name
    PUSHPOOL_SHARD_SIZE             = tostring(var.shard_size)
    PUSHPOOL_WAKE_HORIZON_SECONDS   = tostring(var.wake_horizon_seconds)
    PUSHPOOL_SUBMIT_RESERVE_SECONDS = tostring(local.submit_reserve_seconds)
    PREFECT_API_KEY                 = local.has_prefect_api_key ? "@Microsoft.KeyVault(SecretUri=${azurerm_key_vault_secret.prefect_api_key[0].versionless_id})" : ""
    PREFECT_API_AUTH_STRING         = local.has_prefect_auth_string ? "@Microsoft.KeyVault(SecretUri=${azurerm_key_vault_secret.prefect_auth_string[0].versionless_id})" : ""
    PUSHPOOL_WEBHOOK_SECRET         = "@Microsoft.KeyVault(SecretUri=${azurerm_key_vault_secret.webhook.versionless_id})"
    PUSHPOOL_QUEUE                  = azurerm_storage_queue.fanout.name
    AZURE_SUBSCRIPTION_ID           = data.azurerm_client_config.current.subscription_id
    PUSHPOOL_ACI_RESOURCE_GROUP     = data.azurerm_resource_group.aci.name
    PUSHPOOL_ACI_LOCATION           = coalesce(var.aci_location, data.azurerm_resource_group.aci.location)
  }
  function_environment = merge(var.extra_environment, local.contract_environment)

  # host.json values the module owns, overridden through app settings. The
  # handler reads the function timeout too, to plan its dispatch deadline.
  host_settings = {
    AzureFunctionsJobHost__functionTimeout                     = format("%02d:%02d:%02d", floor(var.timeout_seconds / 3600), floor(var.timeout_seconds % 3600 / 60), var.timeout_seconds % 60)
    AzureFunctionsJobHost__extensions__queues__maxDequeueCount = tostring(var.queue_max_dequeue_count)
  }
}

# --- storage: the host's state, the deployment package and the fan-out queue ---

resource "azurerm_storage_account" "this" {
  name                            = substr(replace("${var.name}${local.suffix}", "-", ""), 0, 24)
  resource_group_name             = data.azurerm_resource_group.this.name
  location                        = local.location
  account_tier                    = "Standard"
  account_replication_type        = "LRS"
  min_tls_version                 = "TLS1_2"
  allow_nested_items_to_be_public = false
  # The Flex Consumption host reads AzureWebJobsStorage as a connection string.
  shared_access_key_enabled = true
  tags                      = var.tags
}

resource "azurerm_storage_container" "deployments" {
  name                  = "deployments"
  storage_account_id    = azurerm_storage_account.this.id
  container_access_type = "private"
}

# Fan-out shards and delayed wake-ups (a message's visibility timeout delays
# it, up to 7 days), sent by the handler through AzureWebJobsStorage (the
# connection string the provider sets from storage_access_key) and received by
# the fanout function's queue trigger on %PUSHPOOL_QUEUE% over the same
# connection. Messages that fail queue_max_dequeue_count times are moved by the
# Functions host to the poison queue "<queue>-poison", which the host creates
# on first use: no dead-letter resource is needed.
resource "azurerm_storage_queue" "fanout" {
  name               = "${var.name}-fanout"
  storage_account_id = azurerm_storage_account.this.id
}

# --- logs -----------------------------------------------------------------------

resource "azurerm_log_analytics_workspace" "this" {
  name                = "${var.name}-${local.suffix}-logs"
  resource_group_name = data.azurerm_resource_group.this.name
  location            = local.location
  sku                 = "PerGB2018"
  retention_in_days   = var.log_retention_days
  tags                = var.tags
}

resource "azurerm_application_insights" "this" {
  name                = "${var.name}-${local.suffix}"
  resource_group_name = data.azurerm_resource_group.this.name
  location            = local.location
  application_type    = "other"
  workspace_id        = azurerm_log_analytics_workspace.this.id
  retention_in_days   = var.log_retention_days
  tags                = var.tags
}

# --- the function app -------------------------------------------------------------

resource "azurerm_service_plan" "this" {
  name                = "${var.name}-${local.suffix}"
  resource_group_name = data.azurerm_resource_group.this.name
  location            = local.location
  os_type             = "Linux"
  sku_name            = "FC1"
  tags                = var.tags
}

# One app holds the three functions of the package (functions/azure/app):
# tick (timer trigger, every minute: "0 */1 * * * *" in its function.json),
# fanout (queue trigger on %PUSHPOOL_QUEUE%, connection AzureWebJobsStorage)
# and webhook (HTTP trigger, authLevel function: the function key plus the
# HMAC), all served by the custom handler binary `handler` (host.json).
resource "azurerm_function_app_flex_consumption" "this" {
  name                = local.app_name
  resource_group_name = data.azurerm_resource_group.this.name
  location            = local.location
  service_plan_id     = azurerm_service_plan.this.id

  runtime_name    = "custom"
  runtime_version = "1.0"

  storage_container_type      = "blobContainer"
  storage_container_endpoint  = "${azurerm_storage_account.this.primary_blob_endpoint}${azurerm_storage_container.deployments.name}"
  storage_authentication_type = "StorageAccountConnectionString"
  storage_access_key          = azurerm_storage_account.this.primary_access_key

  instance_memory_in_mb  = var.instance_memory_mb
  maximum_instance_count = var.maximum_instance_count

  https_only                = true
  virtual_network_subnet_id = var.virtual_network_subnet_id

  identity {
    type = "SystemAssigned"
  }

  app_settings = merge(local.function_environment, local.host_settings)

  site_config {
    application_insights_connection_string = azurerm_application_insights.this.connection_string
    minimum_tls_version                    = "1.2"
  }

  tags = var.tags
}

# The package goes in with OneDeploy (the provider's zip_deploy_file uses the
# /api/zipdeploy endpoint, which Flex Consumption does not serve).
resource "terraform_data" "package" {
  count = var.deploy_package ? 1 : 0

  triggers_replace = [
    azurerm_function_app_flex_consumption.this.id,
    filesha256(var.package_zip_path),
  ]

  provisioner "local-exec" {
    command = "az functionapp deployment source config-zip --subscription \"$SUBSCRIPTION\" --resource-group \"$GROUP\" --name \"$APP\" --src \"$SRC\""
    environment = {
      SUBSCRIPTION = data.azurerm_client_config.current.subscription_id
      GROUP        = data.azurerm_resource_group.this.name
      APP          = azurerm_function_app_flex_consumption.this.name
      SRC          = abspath(var.package_zip_path)
    }
  }

  depends_on = [
    azurerm_role_assignment.function_secrets,
    azurerm_role_assignment.function_aci,
  ]
}

# The webhook URL carries the app's default function key (rotate it in the
# portal or with `az functionapp keys set`).
data "azurerm_function_app_host_keys" "this" {
  name                = azurerm_function_app_flex_consumption.this.name
  resource_group_name = data.azurerm_resource_group.this.name

  depends_on = [terraform_data.package]
}
