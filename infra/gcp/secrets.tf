# Secrets live in Secret Manager; the functions get version resource names
# (PUSHPOOL_PREFECT_API_KEY_SECRET, PUSHPOOL_WEBHOOK_SECRET) and read them with
# AccessSecretVersion, which the function account may call on these secrets only.

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

locals {
  # Secret (not version) names the function account may read, keyed statically.
  readable_secrets = merge(
    local.has_prefect_api_key ? { prefect_api_key = google_secret_manager_secret.prefect_api_key[0].id } : {},
    var.prefect_api_key_secret_version != null ? { prefect_api_key = regex("^(projects/[^/]+/secrets/[^/]+)/versions/", var.prefect_api_key_secret_version)[0] } : {},
    { webhook = var.webhook_secret_version != null ? regex("^(projects/[^/]+/secrets/[^/]+)/versions/", var.webhook_secret_version)[0] : google_secret_manager_secret.webhook[0].id },
  )
}
