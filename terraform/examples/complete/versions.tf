terraform {
  required_version = ">= 1.8"
  required_providers {
    # pushpool's provider serves the prefecthq/prefect address, so this
    # configuration also works with that provider's self-hosted resources.
    prefect = {
      source = "prefecthq/prefect"
    }
  }
}

# endpoint and credentials come from PREFECT_API_URL and PREFECT_API_KEY (or
# PREFECT_API_AUTH_STRING), as for Prefect's own CLI.
provider "prefect" {}
