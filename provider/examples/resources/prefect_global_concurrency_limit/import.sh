# A global concurrency limit is imported by its ID or its name.
terraform import prefect_global_concurrency_limit.warehouse 0b7f2c5e-3f6a-4a8e-9a59-0c1c1b0f6d2a
terraform import prefect_global_concurrency_limit.warehouse warehouse
