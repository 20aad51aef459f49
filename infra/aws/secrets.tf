# Secrets live in Secrets Manager; the function gets their ARNs
# (PUSHPOOL_PREFECT_API_KEY_SECRET_ARN, PUSHPOOL_WEBHOOK_SECRET_ARN) and reads
# them with GetSecretValue, which it may call on these two secrets only.

resource "aws_secretsmanager_secret" "prefect_api_key" {
  count       = local.has_prefect_api_key ? 1 : 0
  name_prefix = "${var.name}/prefect-api-key-"
  description = "Prefect API key of the pushpool dispatcher ${var.name}"
  tags        = var.tags
}

resource "aws_secretsmanager_secret_version" "prefect_api_key" {
  count         = local.has_prefect_api_key ? 1 : 0
  secret_id     = aws_secretsmanager_secret.prefect_api_key[0].id
  secret_string = var.prefect_api_key
}

resource "random_password" "webhook" {
  count   = !local.has_webhook_secret && var.webhook_secret_arn == null ? 1 : 0
  length  = 48
  special = false
}

resource "aws_secretsmanager_secret" "webhook" {
  count       = var.webhook_secret_arn == null ? 1 : 0
  name_prefix = "${var.name}/webhook-hmac-"
  description = "HMAC key of the pushpool dispatcher ${var.name}'s webhook"
  tags        = var.tags
}

resource "aws_secretsmanager_secret_version" "webhook" {
  count         = var.webhook_secret_arn == null ? 1 : 0
  secret_id     = aws_secretsmanager_secret.webhook[0].id
  secret_string = local.has_webhook_secret ? var.webhook_secret : random_password.webhook[0].result
}
