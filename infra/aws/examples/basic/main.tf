# A complete root module: `make functions` at the repository root, then
#   terraform init
#   terraform apply -var prefect_api_url=https://prefect.example.com/api \
#     -var 'ecs_cluster_arns=["arn:aws:ecs:eu-west-1:123456789012:cluster/flows"]'

module "pushpool" {
  source = "../.."

  name            = "pushpool"
  lambda_zip_path = "${path.module}/../../../../dist/lambda-arm64.zip"
  architecture    = "arm64"

  prefect_api_url = var.prefect_api_url
  prefect_api_key = var.prefect_api_key
  work_pools      = var.work_pools

  ecs_cluster_arns        = var.ecs_cluster_arns
  ecs_task_role_arns      = var.ecs_task_role_arns
  ecs_execution_role_arns = var.ecs_execution_role_arns

  log_retention_days = 14
  extra_environment = {
    PUSHPOOL_MAX_CONCURRENT_SUBMISSIONS = "8"
  }

  tags = {
    app = "pushpool"
  }
}
