# A complete root module. Build and push the image first, at the repository
# root (ko builds with CGO_ENABLED=0 on a distroless base with CA certificates):
#   KO_DOCKER_REPO=europe-west1-docker.pkg.dev/my-project/pushpool \
#     ko build --bare ./functions/gcp     # prints the image@sha256:... reference
# then
#   terraform init
#   terraform apply -var project_id=my-project -var image=<that reference> \
#     -var prefect_api_url=https://prefect.example.com/api

module "pushpool" {
  source = "../.."

  project_id = var.project_id
  region     = var.region
  name       = "pushpool"
  image      = var.image

  prefect_api_url = var.prefect_api_url
  prefect_api_key = var.prefect_api_key
  work_pools      = var.work_pools

  job_service_account_emails = var.job_service_account_emails

  log_retention_days = 14
  extra_environment = {
    PUSHPOOL_CLOUDRUN_SWEEP_AFTER = "30m"
  }

  labels = {
    app = "pushpool"
  }
}
