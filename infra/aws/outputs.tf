output "function_name" {
  description = "Name of the dispatcher Lambda function."
  value       = aws_lambda_function.this.function_name
}

output "function_arn" {
  description = "ARN of the dispatcher Lambda function."
  value       = aws_lambda_function.this.arn
}

output "function_role_arn" {
  description = "ARN of the function's execution role (add statements to it for other resources the flow runs' templates need)."
  value       = aws_iam_role.function.arn
}

output "webhook_url" {
  description = "Function URL for Prefect automation webhooks; requests must carry the HMAC of the body made with the webhook secret."
  value       = aws_lambda_function_url.webhook.function_url
}

output "webhook_secret" {
  description = "The generated webhook HMAC key (null when webhook_secret or webhook_secret_arn was given)."
  value       = one(random_password.webhook[*].result)
  sensitive   = true
}

output "webhook_secret_arn" {
  description = "ARN of the Secrets Manager secret holding the webhook HMAC key."
  value       = local.webhook_secret_arn
}

output "prefect_api_key_secret_arn" {
  description = "ARN of the Secrets Manager secret holding the Prefect API key, or null without one."
  value       = local.prefect_api_key_secret_arn
}

output "queue_url" {
  description = "URL of the fan-out / wake-up queue (PUSHPOOL_QUEUE_URL)."
  value       = aws_sqs_queue.fanout.url
}

output "queue_arn" {
  description = "ARN of the fan-out / wake-up queue."
  value       = aws_sqs_queue.fanout.arn
}

output "dead_letter_queue_url" {
  description = "URL of the dead-letter queue; alarm on its ApproximateNumberOfMessagesVisible."
  value       = aws_sqs_queue.dead_letter.url
}

output "dead_letter_queue_arn" {
  description = "ARN of the dead-letter queue."
  value       = aws_sqs_queue.dead_letter.arn
}

output "log_group_name" {
  description = "CloudWatch log group of the function."
  value       = aws_cloudwatch_log_group.function.name
}

output "environment" {
  description = "The environment the function runs with (no secret values: secrets are passed as ARNs)."
  value       = local.function_environment
}
