# A complete root module: `make functions` at the repository root, then
#   terraform init
#   terraform apply -var project_id=my-project \
#     -var prefect_api_url=https://prefect.example.com/api

module "pushpool" {
  source = "../.."

  project_id      = var.project_id
  region          = var.region
  name            = "pushpool"
  source_zip_path = "${path.module}/../../../../dist/gcp-source.zip"

  prefect_api_url = var.prefect_api_url
  prefect_api_key = var.prefect_api_key
  work_pools      = var.work_pools

  job_service_account_emails = var.job_service_account_emails

  log_retention_days = 14
  extra_environment = {
    PUSHPOOL_LOG_FORMAT = "json"
  }

  labels = {
    app = "pushpool"
  }
}
