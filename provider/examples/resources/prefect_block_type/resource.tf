# A block type of your own, with a schema, and a block of it.
resource "prefect_block_type" "warehouse" {
  name              = "Acme Warehouse"
  slug              = "acme-warehouse"
  description       = "Connection settings of the Acme warehouse."
  documentation_url = "https://wiki.acme.example/warehouse"
  code_example      = <<-EOT
    ```python
    from prefect.blocks.core import Block
    warehouse = Block.load("acme-warehouse/prod")
    ```
  EOT
}

resource "prefect_block_schema" "warehouse" {
  block_type_id = prefect_block_type.warehouse.id
  version       = "1"
  fields = jsonencode({
    title           = "AcmeWarehouse"
    type            = "object"
    properties      = { dsn = { type = "string", title = "DSN" } }
    required        = ["dsn"]
    secret_fields   = []
    block_type_slug = "acme-warehouse"
  })
}

resource "prefect_block" "prod" {
  name       = "prod"
  type_slug  = prefect_block_type.warehouse.slug
  data       = jsonencode({ dsn = "postgresql://warehouse.acme.example/prod" })
  depends_on = [prefect_block_schema.warehouse]
}
