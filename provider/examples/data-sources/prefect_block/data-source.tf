data "prefect_block" "by_id" {
  id = "0b7f2c5e-3f6a-4a8e-9a59-0c1c1b0f6d2a"
}

data "prefect_block" "github_token" {
  type_slug = "secret"
  name      = "github-token"
}

locals {
  github_token = jsondecode(data.prefect_block.github_token.data).value
}
