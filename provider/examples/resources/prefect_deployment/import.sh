# A deployment is imported by its ID, or by "<flow_name>/<deployment_name>".
terraform import prefect_deployment.etl 3fa85f64-5717-4562-b3fc-2c963f66afa6
terraform import prefect_deployment.etl nightly-etl/prod
