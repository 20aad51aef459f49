# Every attribute can come from Prefect's own environment variables instead:
# PREFECT_API_URL, PREFECT_API_KEY, PREFECT_API_AUTH_STRING and
# PREFECT_CLIENT_CUSTOM_HEADERS.
provider "prefect" {
  endpoint       = "http://127.0.0.1:4200/api"
  basic_auth_key = var.prefect_auth_string # "user:password", for a server with PREFECT_SERVER_API_AUTH_STRING
}

variable "prefect_auth_string" {
  type      = string
  sensitive = true
}

# Or take them from a Prefect profile, as the Prefect CLI does (attributes and
# environment variables still win):
#
# provider "prefect" {
#   profile      = "staging"                     # default: PREFECT_PROFILE, then the file's active profile
#   profile_file = "/etc/prefect/profiles.toml"  # default: $PREFECT_HOME/profiles.toml, ~/.prefect/profiles.toml
# }
