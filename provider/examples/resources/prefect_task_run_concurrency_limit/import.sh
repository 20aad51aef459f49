# A task run concurrency limit is imported by its ID or its tag.
terraform import prefect_task_run_concurrency_limit.database 0b7f2c5e-3f6a-4a8e-9a59-0c1c1b0f6d2a
terraform import prefect_task_run_concurrency_limit.database database
