terraform import prefect_block_schema.warehouse_v2 0b5c2b7e-1111-4e4e-8f8f-000000000002
