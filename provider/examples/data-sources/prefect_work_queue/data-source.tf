data "prefect_work_queue" "default" {
  work_pool_name = "ecs-push"
  name           = "default"
}
