output "work_pool" {
  description = "The pool to list in the dispatcher's PUSHPOOL_POOLS (infra/aws, infra/gcp, infra/azure)."
  value       = prefect_work_pool.ecs.name
}

output "etl_deployment_id" {
  description = "The scheduled ETL deployment."
  value       = prefect_deployment.etl.id
}
