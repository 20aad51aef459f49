data "prefect_pushpool_base_job_templates" "this" {}

# An ECS pool served by pushpool, starting from its backend's default template
# with two defaults changed.
resource "prefect_work_pool" "ecs" {
  name              = "ecs-push"
  type              = "ecs"
  description       = "Flow runs on AWS ECS, dispatched by pushpool"
  concurrency_limit = 20
  base_job_template = jsonencode(merge(
    jsondecode(data.prefect_pushpool_base_job_templates.this.ecs),
    {
      variables = merge(jsondecode(data.prefect_pushpool_base_job_templates.this.ecs).variables, {
        properties = merge(jsondecode(data.prefect_pushpool_base_job_templates.this.ecs).variables.properties, {
          cluster = { type = "string", default = "prefect" }
          cpu     = { type = "integer", default = 1024 }
        })
      })
    }
  ))
}

# A template kept in a file: formatting and key order never cause a diff.
resource "prefect_work_pool" "local" {
  name              = "local"
  type              = "process"
  base_job_template = file("${path.module}/process-template.json")
}
