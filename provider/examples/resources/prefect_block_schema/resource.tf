resource "prefect_block_type" "warehouse" {
  name = "Acme Warehouse"
  slug = "acme-warehouse"
}

# Block schemas cannot change: a new version is a new schema, and blocks are
# saved against the block type's newest one.
resource "prefect_block_schema" "warehouse_v2" {
  block_type_id = prefect_block_type.warehouse.id
  version       = "2"
  capabilities  = []
  fields = jsonencode({
    title           = "AcmeWarehouse"
    type            = "object"
    properties      = { dsn = { type = "string" }, pool_size = { type = "integer", default = 5 } }
    required        = ["dsn"]
    secret_fields   = []
    block_type_slug = "acme-warehouse"
  })
}
