terraform {
  # 1.9: input validation may refer to other variables.
  required_version = ">= 1.9"

  required_providers {
    aws = {
      source = "hashicorp/aws"
      # 6.28 adds aws_lambda_permission.invoked_via_function_url, which public
      # function URLs need since October 2025.
      version = "~> 6.28"
    }
    random = {
      source  = "hashicorp/random"
      version = "~> 3.6"
    }
  }
}
