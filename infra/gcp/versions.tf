terraform {
  # 1.9: input validation may refer to other variables.
  required_version = ">= 1.9"

  required_providers {
    google = {
      source = "hashicorp/google"
      # Written against 7.45: google_cloud_run_v2_service with urls,
      # deletion_protection and direct VPC egress (network_interfaces).
      version = "~> 7.0"
    }
    random = {
      source  = "hashicorp/random"
      version = "~> 3.6"
    }
  }
}
