variable "name_prefix" {
  description = "Prefix of every object this example creates, so several copies can share one Prefect server."
  type        = string
  default     = "acme"
}

variable "ecs_cluster" {
  description = "ECS cluster the pool's flow runs start in."
  type        = string
  default     = "prefect"
}

variable "image" {
  description = "Container image of the flow code."
  type        = string
  default     = "prefecthq/prefect:3.9.1-python3.12"
}

variable "flows_repository" {
  description = "Git repository the flow runs clone their code from."
  type        = string
  default     = "https://github.com/acme/flows"
}
