# A block is imported by its ID or by <type_slug>/<name>.
terraform import prefect_block.github_token 0b7f2c5e-3f6a-4a8e-9a59-0c1c1b0f6d2a
terraform import prefect_block.github_token secret/github-token
