data "prefect_work_queues" "etl" {
  work_pool_name = "etl"
}

output "queues_by_priority" {
  value = [for q in data.prefect_work_queues.etl.work_queues : "${q.priority}: ${q.name}"]
}
