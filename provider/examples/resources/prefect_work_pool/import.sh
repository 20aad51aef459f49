# A work pool is imported by its name.
terraform import prefect_work_pool.ecs ecs-push
