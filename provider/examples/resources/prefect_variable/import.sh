# A variable is imported by its ID, its name, or name/<name>.
terraform import prefect_variable.region default_region
terraform import prefect_variable.region 0b7f2c5e-3f6a-4a8e-9a59-0c1c1b0f6d2a
