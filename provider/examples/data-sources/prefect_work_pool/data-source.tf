data "prefect_work_pool" "ecs" {
  name = "ecs-push"
}

output "ecs_default_queue" {
  value = data.prefect_work_pool.ecs.default_queue_id
}
