# At most 10 concurrent users of the warehouse: `with concurrency("warehouse"):`
resource "prefect_global_concurrency_limit" "warehouse" {
  name  = "warehouse"
  limit = 10
}

# A rate limit: 5 calls, one slot freed every 2 seconds: `rate_limit("github-api")`
resource "prefect_global_concurrency_limit" "github_api" {
  name                  = "github-api"
  limit                 = 5
  slot_decay_per_second = 0.5
}
