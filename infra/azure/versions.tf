terraform {
  # 1.9: input validation may refer to other variables.
  required_version = ">= 1.9"

  required_providers {
    azurerm = {
      source = "hashicorp/azurerm"
      # Written against 5.2 (azurerm_function_app_flex_consumption,
      # rbac_authorization_enabled on key vaults, storage_account_id on queues).
      version = "~> 5.0"
    }
    random = {
      source  = "hashicorp/random"
      version = "~> 3.6"
    }
    time = {
      source  = "hashicorp/time"
      version = "~> 0.12"
    }
  }
}
