# A work queue is imported as <work_pool_name>,<queue_name>.
terraform import prefect_work_queue.critical ecs-push,critical
