variable "region" {
  description = "AWS region to deploy the dispatcher in (the region of the ECS clusters)."
  type        = string
  default     = "eu-west-1"
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
  description = "ECS work pools to dispatch."
  type        = list(string)
  default     = ["ecs-pool"]
}

variable "ecs_cluster_arns" {
  description = "ECS clusters the runs start on."
  type        = list(string)
}

variable "ecs_task_role_arns" {
  description = "Task roles the runs' task definitions use."
  type        = list(string)
  default     = []
}

variable "ecs_execution_role_arns" {
  description = "Task execution roles the runs' task definitions use."
  type        = list(string)
  default     = []
}
