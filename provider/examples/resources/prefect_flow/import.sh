# A flow is imported by its ID or its name.
terraform import prefect_flow.etl nightly-etl
