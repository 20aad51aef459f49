# A complete root module: `make functions` at the repository root, `az login`,
# then
#   terraform init
#   terraform apply -var subscription_id=... \
#     -var prefect_api_url=https://prefect.example.com/api

resource "azurerm_resource_group" "dispatcher" {
  name     = "pushpool"
  location = var.location
}

resource "azurerm_resource_group" "flow_runs" {
  name     = "pushpool-flow-runs"
  location = var.location
}

module "pushpool" {
  source = "../.."

  name                = "pushpool"
  resource_group_name = azurerm_resource_group.dispatcher.name
  package_zip_path    = "${path.module}/../../../../dist/azure-package.zip"

  prefect_api_url = var.prefect_api_url
  prefect_api_key = var.prefect_api_key
  work_pools      = var.work_pools

  aci_resource_group_name = azurerm_resource_group.flow_runs.name

  log_retention_days = 30
  extra_environment = {
    PUSHPOOL_MAX_CONCURRENT_SUBMISSIONS = "8"
  }

  tags = {
    app = "pushpool"
  }
}
