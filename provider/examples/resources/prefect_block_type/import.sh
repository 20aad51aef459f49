# By ID or by slug.
terraform import prefect_block_type.warehouse 0b5c2b7e-1111-4e4e-8f8f-000000000001
terraform import prefect_block_type.warehouse acme-warehouse
