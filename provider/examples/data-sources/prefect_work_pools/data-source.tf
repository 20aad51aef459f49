data "prefect_work_pools" "all" {}

output "pool_names" {
  value = [for p in data.prefect_work_pools.all.work_pools : p.name]
}
