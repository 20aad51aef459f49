# At most 3 task runs tagged "database" at once: @task(tags=["database"])
resource "prefect_task_run_concurrency_limit" "database" {
  tag               = "database"
  concurrency_limit = 3
}
