# Exactly one of cron, interval and rrule.
resource "prefect_deployment_schedule" "weekdays" {
  deployment_id = prefect_deployment.etl.id
  cron          = "0 6 * * 1-5"
  timezone      = "Europe/Berlin"
}

resource "prefect_deployment_schedule" "hourly" {
  deployment_id      = prefect_deployment.etl.id
  interval           = 3600
  anchor_date        = "2024-01-01T00:00:00Z"
  max_scheduled_runs = 10
  parameters         = jsonencode({ mode = "incremental" })
  slug               = "hourly"
}

resource "prefect_deployment_schedule" "mondays" {
  deployment_id = prefect_deployment.etl.id
  rrule         = "FREQ=WEEKLY;BYDAY=MO;BYHOUR=9"
  active        = false
}
