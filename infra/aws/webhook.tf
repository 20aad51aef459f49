# The webhook endpoint for Prefect automations: a function URL without IAM
# auth, because the function verifies an HMAC of the body with the webhook
# secret and rejects everything else.

resource "aws_lambda_function_url" "webhook" {
  function_name      = aws_lambda_function.this.function_name
  authorization_type = "NONE"
  invoke_mode        = "BUFFERED"
}

# Since October 2025 a public function URL needs both permissions: invoking the
# URL, and invoking the function through the URL (not through the Invoke API).
resource "aws_lambda_permission" "webhook_url" {
  statement_id           = "PublicWebhookUrl"
  action                 = "lambda:InvokeFunctionUrl"
  function_name          = aws_lambda_function.this.function_name
  principal              = "*"
  function_url_auth_type = "NONE"
}

resource "aws_lambda_permission" "webhook_invoke" {
  statement_id             = "PublicWebhookInvokeViaUrl"
  action                   = "lambda:InvokeFunction"
  function_name            = aws_lambda_function.this.function_name
  principal                = "*"
  invoked_via_function_url = true
}
