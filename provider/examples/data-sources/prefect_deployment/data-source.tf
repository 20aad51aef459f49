# By ID.
data "prefect_deployment" "by_id" {
  id = "3fa85f64-5717-4562-b3fc-2c963f66afa6"
}

# By its flow's name and its own.
data "prefect_deployment" "etl" {
  flow_name = "nightly-etl"
  name      = "prod"
}

output "etl_job_variables" {
  value = jsondecode(data.prefect_deployment.etl.job_variables)
}
