# Plans the module against a mocked azurerm provider: no credentials, no
# cloud, and deploy_package = false so no Azure CLI is needed. Run from
# infra/azure with `terraform init && terraform test` (the providers must be
# installable, or provided by dev_overrides).

mock_provider "azurerm" {
  mock_data "azurerm_client_config" {
    defaults = {
      subscription_id = "00000000-0000-0000-0000-000000000001"
      tenant_id       = "00000000-0000-0000-0000-000000000002"
      object_id       = "00000000-0000-0000-0000-000000000003"
    }
  }
  mock_data "azurerm_resource_group" {
    defaults = {
      id       = "/subscriptions/00000000-0000-0000-0000-000000000001/resourceGroups/flow-runs"
      location = "westeurope"
    }
  }
}

mock_provider "random" {}
mock_provider "time" {}

variables {
  resource_group_name     = "pushpool"
  package_zip_path        = "tests/fixtures/package.zip"
  deploy_package          = false
  prefect_api_url         = "https://prefect.example.com/api"
  work_pools              = ["aci-a", "aci-b"]
  aci_resource_group_name = "flow-runs"
}

run "minimal" {
  command = plan

  assert {
    condition     = azurerm_function_app_flex_consumption.this.app_settings["PUSHPOOL_POOLS"] == "aci-a,aci-b"
    error_message = "PUSHPOOL_POOLS is the comma-joined pools"
  }
  assert {
    condition     = azurerm_function_app_flex_consumption.this.app_settings["PREFECT_API_KEY"] == "" && azurerm_function_app_flex_consumption.this.app_settings["PREFECT_API_AUTH_STRING"] == ""
    error_message = "no API key nor auth string: empty settings"
  }
  assert {
    condition     = azurerm_function_app_flex_consumption.this.app_settings["PUSHPOOL_WAKE_HORIZON_SECONDS"] == "90" && azurerm_function_app_flex_consumption.this.app_settings["PUSHPOOL_SUBMIT_RESERVE_SECONDS"] == "30"
    error_message = "wake horizon of the one-minute timer; submit reserve a tenth of the timeout"
  }
  assert {
    condition     = azurerm_function_app_flex_consumption.this.app_settings["PUSHPOOL_ACI_LOCATION"] == "westeurope"
    error_message = "ACI location defaults to the ACI resource group's"
  }
  assert {
    condition     = azurerm_function_app_flex_consumption.this.app_settings["AzureFunctionsJobHost__functionTimeout"] == "00:05:00"
    error_message = "functionTimeout from timeout_seconds"
  }
  assert {
    condition     = azurerm_function_app_flex_consumption.this.app_settings["AzureFunctionsJobHost__extensions__queues__maxDequeueCount"] == "5"
    error_message = "maxDequeueCount"
  }
  assert {
    condition     = azurerm_function_app_flex_consumption.this.runtime_name == "custom" && azurerm_service_plan.this.sku_name == "FC1"
    error_message = "custom handler on Flex Consumption"
  }
  assert {
    condition     = length(terraform_data.package) == 0 && length(random_password.webhook) == 1
    error_message = "no CLI deploy; webhook key generated"
  }
  assert {
    condition     = azurerm_log_analytics_workspace.this.retention_in_days == 30
    error_message = "log retention"
  }
  assert {
    condition     = toset(azurerm_role_definition.aci.permissions[0].actions) == toset(["Microsoft.ContainerInstance/containerGroups/read", "Microsoft.ContainerInstance/containerGroups/write", "Microsoft.ContainerInstance/containerGroups/delete", "Microsoft.ContainerInstance/containerGroups/stop/action"])
    error_message = "ACI role actions"
  }
  assert {
    condition     = azurerm_role_assignment.function_aci.scope == "/subscriptions/00000000-0000-0000-0000-000000000001/resourceGroups/flow-runs"
    error_message = "ACI role assigned on the ACI resource group"
  }
}

run "everything_set" {
  command = plan

  variables {
    prefect_api_key         = "pnu_test_key"
    prefect_api_auth_string = "admin:secret"
    webhook_secret          = "0123456789abcdef0123456789abcdef"
    timeout_seconds         = 3599
    aci_location            = "northeurope"
    aci_subnet_ids          = ["/subscriptions/s/resourceGroups/g/providers/Microsoft.Network/virtualNetworks/v/subnets/aci"]
    aci_identity_ids        = ["/subscriptions/s/resourceGroups/g/providers/Microsoft.ManagedIdentity/userAssignedIdentities/runner"]
    log_retention_days      = 90
    extra_environment       = { PUSHPOOL_MAX_CONCURRENT_SUBMISSIONS = "8" }
  }

  assert {
    condition     = length(azurerm_key_vault_secret.prefect_api_key) == 1 && length(azurerm_key_vault_secret.prefect_auth_string) == 1 && length(random_password.webhook) == 0
    error_message = "API key and auth string secrets created; webhook key not generated"
  }
  assert {
    condition     = length(azurerm_role_assignment.function_secrets) == 3
    error_message = "the app may read the three secrets"
  }
  assert {
    condition     = azurerm_function_app_flex_consumption.this.app_settings["AzureFunctionsJobHost__functionTimeout"] == "00:59:59"
    error_message = "functionTimeout formatting"
  }
  assert {
    condition     = azurerm_function_app_flex_consumption.this.app_settings["PUSHPOOL_ACI_LOCATION"] == "northeurope"
    error_message = "aci_location"
  }
  assert {
    condition     = length(azurerm_role_assignment.function_subnet_join) == 1 && length(azurerm_role_assignment.function_identity_assign) == 1
    error_message = "subnet join and identity assign granted per resource"
  }
  assert {
    condition     = azurerm_function_app_flex_consumption.this.app_settings["PUSHPOOL_MAX_CONCURRENT_SUBMISSIONS"] == "8"
    error_message = "extra environment"
  }
}
