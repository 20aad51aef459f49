resource "prefect_flow" "etl" {
  name = "nightly-etl"
}

resource "prefect_deployment" "etl" {
  name           = "prod"
  flow_id        = prefect_flow.etl.id
  entrypoint     = "flows/etl.py:nightly"
  tags           = ["etl"]
  work_pool_name = prefect_work_pool.ecs.name

  # Checked at plan time against the pool's variables schema: a variable of
  # the wrong type, or one the schema does not define, fails `terraform plan`.
  job_variables = jsonencode({
    cpu    = 1024
    memory = 2048
    env    = { STAGE = "prod" }
  })

  parameters = jsonencode({
    mode = "full"
    # Resolved by the server from a Prefect variable; not a change once resolved.
    region = { __prefect_kind = "workspace_variable", variable_name = "etl_region" }
  })

  pull_steps = [
    {
      type       = "git_clone"
      repository = "https://github.com/acme/flows"
      branch     = "main"
      # A credentials block instead of a token in the state.
      credentials = "{{ prefect.blocks.github-credentials.acme }}"
    },
    {
      type              = "pip_install_requirements"
      requirements_file = "requirements.txt"
    },
  ]

  concurrency_limit   = 4
  concurrency_options = { collision_strategy = "ENQUEUE" }
}

# Deployments that share one global concurrency limit: at most 10 runs of all
# of them at once.
resource "prefect_global_concurrency_limit" "warehouse" {
  name  = "warehouse-loads"
  limit = 10
}

resource "prefect_deployment" "load" {
  name                        = "load"
  flow_id                     = prefect_flow.etl.id
  global_concurrency_limit_id = prefect_global_concurrency_limit.warehouse.id
}
