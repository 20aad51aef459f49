# A schedule is imported by "<deployment_id>,<schedule_id>".
terraform import prefect_deployment_schedule.hourly 3fa85f64-5717-4562-b3fc-2c963f66afa6,9b2e4c1d-0f3a-4e8b-a7c6-5d4e3f2a1b0c
