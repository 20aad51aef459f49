resource "prefect_work_queue" "critical" {
  work_pool_name    = prefect_work_pool.ecs.name
  name              = "critical"
  description       = "Runs that must start first"
  priority          = 1
  concurrency_limit = 5
}
