variable "project_id" {
  description = "Project to deploy the dispatcher in (and to run the Cloud Run jobs in)."
  type        = string
}

variable "image" {
  description = "Container image of functions/gcp, by digest (ko build --bare ./functions/gcp)."
  type        = string
}

variable "region" {
  description = "Region of the services, scheduler and queue."
  type        = string
  default     = "europe-west1"
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
  description = "Cloud Run work pools to dispatch."
  type        = list(string)
  default     = ["cloud-run-pool"]
}

variable "job_service_account_emails" {
  description = "Service accounts the flow runs' Cloud Run jobs run as."
  type        = list(string)
  default     = []
}
