# A secret, stored in state so that changes made in the UI show as drift.
resource "prefect_block" "github_token" {
  name      = "github-token"
  type_slug = "secret"
  data      = jsonencode({ value = var.github_token })
}

# Credentials kept out of state: data_wo is write-only (Terraform 1.11+).
# Change data_wo_version to write a new value.
resource "prefect_block" "aws" {
  name            = "production-aws"
  type_slug       = "aws-credentials"
  data_wo_version = 1
  data_wo = jsonencode({
    aws_access_key_id     = var.aws_access_key_id
    aws_secret_access_key = var.aws_secret_access_key
    region_name           = "eu-west-1"
  })
}

# A block that references another block with "$ref".
resource "prefect_block" "results" {
  name      = "results"
  type_slug = "s3-bucket"
  data = jsonencode({
    bucket_name = "my-results"
    credentials = { "$ref" = { block_document_id = prefect_block.aws.id } }
  })
}
