terraform {
  # 1.9: input validation may refer to other variables.
  required_version = ">= 1.9"

  required_providers {
    google = {
      source = "hashicorp/google"
      # Written against 7.45; needs queue-level http_target on Cloud Tasks
      # queues (6.x and later).
      version = "~> 7.0"
    }
    random = {
      source  = "hashicorp/random"
      version = "~> 3.6"
    }
  }
}
