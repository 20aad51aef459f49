variable "subscription_id" {
  description = "Subscription to deploy the dispatcher and run the container groups in."
  type        = string
}

variable "location" {
  description = "Region of the resource groups."
  type        = string
  default     = "westeurope"
}

variable "prefect_api_url" {
  description = "Prefect API URL, e.g. https://prefect.example.com/api."
  type        = string
}

variable "prefect_api_key" {
  description = "Prefect API key; null for a server without API keys."
  type        = string
  default     = null
  sensitive   = true
}

variable "work_pools" {
  description = "ACI work pools to dispatch."
  type        = list(string)
  default     = ["aci-pool"]
}
