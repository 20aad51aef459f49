# A limit managed elsewhere, shared by this configuration's deployments.
data "prefect_global_concurrency_limit" "warehouse" {
  name = "warehouse"
}

resource "prefect_deployment" "load" {
  name                        = "load"
  flow_id                     = prefect_flow.etl.id
  global_concurrency_limit_id = data.prefect_global_concurrency_limit.warehouse.id
}
