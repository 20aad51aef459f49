data "prefect_worker_metadata" "defaults" {}

# A process pool with the worker type's default template, one default changed.
resource "prefect_work_pool" "local" {
  name = "local"
  type = "process"
  base_job_template = jsonencode(merge(
    jsondecode(data.prefect_worker_metadata.defaults.base_job_configs.process),
    {
      variables = merge(
        jsondecode(data.prefect_worker_metadata.defaults.base_job_configs.process).variables,
        { properties = merge(
          jsondecode(data.prefect_worker_metadata.defaults.base_job_configs.process).variables.properties,
          { stream_output = { type = "boolean", default = false } },
        ) },
      )
    },
  ))
}
