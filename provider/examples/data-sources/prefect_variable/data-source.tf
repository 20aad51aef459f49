data "prefect_variable" "region" {
  name = "default_region"
}

output "region" {
  value = data.prefect_variable.region.value
}
