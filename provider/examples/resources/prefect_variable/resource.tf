resource "prefect_variable" "region" {
  name  = "default_region"
  value = "eu-west-1"
}

# Any JSON value: objects, lists, numbers and booleans.
resource "prefect_variable" "limits" {
  name  = "etl_limits"
  value = { cpu = 1024, memory = 2048, zones = ["a", "b"], dry_run = false }
  tags  = ["etl"]
}
