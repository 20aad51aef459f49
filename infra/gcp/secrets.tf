# Secrets live in Secret Manager and reach the services as environment
# variables Cloud Run mounts from it (value_source.secret_key_ref) when an
# instance starts: PREFECT_API_KEY, PREFECT_API_AUTH_STRING and
# PUSHPOOL_WEBHOOK_SECRET_VALUE, as functions/gcp reads them. The services'
# account may access these secrets only.

locals {
  # Whether a secret value was given; count may not depend on sensitive values.
  has_prefect_api_key     = nonsensitive(var.prefect_api_key != null)
  has_prefect_auth_string = nonsensitive(var.prefect_api_auth_string != null)
  has_webhook_secret      = nonsensitive(var.webhook_secret != null)

  # An existing version projects/P/secrets/S/versions/V as secret + version.
  existing_prefect_api_key = var.prefect_api_key_secret_version == null ? null : {
    secret  = regex("^(projects/[^/]+/secrets/[^/]+)/versions/([^/]+)$", var.prefect_api_key_secret_version)[0]
    version = regex("^(projects/[^/]+/secrets/[^/]+)/versions/([^/]+)$", var.prefect_api_key_secret_version)[1]
  }
  existing_prefect_auth_string = var.prefect_api_auth_string_secret_version == null ? null : {
    secret  = regex("^(projects/[^/]+/secrets/[^/]+)/versions/([^/]+)$", var.prefect_api_auth_string_secret_version)[0]
    version = regex("^(projects/[^/]+/secrets/[^/]+)/versions/([^/]+)$", var.prefect_api_auth_string_secret_version)[1]
  }
  existing_webhook = var.webhook_secret_version == null ? null : {
    secret  = regex("^(projects/[^/]+/secrets/[^/]+)/versions/([^/]+)$", var.webhook_secret_version)[0]
    version = regex("^(projects/[^/]+/secrets/[^/]+)/versions/([^/]+)$", var.webhook_secret_version)[1]
  }

  # The secrets functions/gcp reads from its environment, by variable name
  # (null: not set). Versions the module creates are pinned, so a new value
  # rolls out a new revision. infra/infra_test.go checks these names.
  contract_secrets = {
    PREFECT_API_KEY = local.has_prefect_api_key ? {
      secret  = google_secret_manager_secret.prefect_api_key[0].id
      version = google_secret_manager_secret_version.prefect_api_key[0].version
    } : local.existing_prefect_api_key
    PREFECT_API_AUTH_STRING = local.has_prefect_auth_string ? {
      secret  = google_secret_manager_secret.prefect_auth_string[0].id
      version = google_secret_manager_secret_version.prefect_auth_string[0].version
    } : local.existing_prefect_auth_string
    PUSHPOOL_WEBHOOK_SECRET_VALUE = var.webhook_secret_version == null ? {
      secret  = google_secret_manager_secret.webhook[0].id
      version = google_secret_manager_secret_version.webhook[0].version
    } : local.existing_webhook
  }

  # The webhook service gets every secret; the events service only the
  # Prefect credentials.
  webhook_secrets = { for name, ref in local.contract_secrets : name => ref if ref != null }
  events_secrets  = { for name, ref in local.webhook_secrets : name => ref if name != "PUSHPOOL_WEBHOOK_SECRET_VALUE" }

  # Secret (not version) names the services' account may read, keyed statically.
  readable_secrets = merge(
    local.contract_secrets.PREFECT_API_KEY == null ? {} : { prefect_api_key = local.contract_secrets.PREFECT_API_KEY.secret },
    local.contract_secrets.PREFECT_API_AUTH_STRING == null ? {} : { prefect_auth_string = local.contract_secrets.PREFECT_API_AUTH_STRING.secret },
    { webhook = local.contract_secrets.PUSHPOOL_WEBHOOK_SECRET_VALUE.secret },
  )
}

resource "google_secret_manager_secret" "prefect_api_key" {
  count     = local.has_prefect_api_key ? 1 : 0
  project   = var.project_id
  secret_id = "${var.name}-prefect-api-key"
  labels    = var.labels

  replication {
    auto {}
  }

  depends_on = [google_project_service.this]
}

resource "google_secret_manager_secret_version" "prefect_api_key" {
  count       = local.has_prefect_api_key ? 1 : 0
  secret      = google_secret_manager_secret.prefect_api_key[0].id
  secret_data = var.prefect_api_key
}

resource "google_secret_manager_secret" "prefect_auth_string" {
  count     = local.has_prefect_auth_string ? 1 : 0
  project   = var.project_id
  secret_id = "${var.name}-prefect-auth-string"
  labels    = var.labels

  replication {
    auto {}
  }

  depends_on = [google_project_service.this]
}

resource "google_secret_manager_secret_version" "prefect_auth_string" {
  count       = local.has_prefect_auth_string ? 1 : 0
  secret      = google_secret_manager_secret.prefect_auth_string[0].id
  secret_data = var.prefect_api_auth_string
}

resource "random_password" "webhook" {
  count   = !local.has_webhook_secret && var.webhook_secret_version == null ? 1 : 0
  length  = 48
  special = false
}

resource "google_secret_manager_secret" "webhook" {
  count     = var.webhook_secret_version == null ? 1 : 0
  project   = var.project_id
  secret_id = "${var.name}-webhook-hmac"
  labels    = var.labels

  replication {
    auto {}
  }

  depends_on = [google_project_service.this]
}

resource "google_secret_manager_secret_version" "webhook" {
  count       = var.webhook_secret_version == null ? 1 : 0
  secret      = google_secret_manager_secret.webhook[0].id
  secret_data = local.has_webhook_secret ? var.webhook_secret : random_password.webhook[0].result
}
