# --- where --------------------------------------------------------------------

variable "name" {
  description = "Prefix of every resource the module creates (function app <name>-<suffix>, plan, storage, key vault, queue, workspace)."
  type        = string
  default     = "pushpool"

  validation {
    condition     = can(regex("^[a-z][a-z0-9-]{0,15}[a-z0-9]$", var.name)) && !strcontains(var.name, "--")
    error_message = "name must be 2 to 17 lowercase letters, digits or single hyphens, starting with a letter (storage queue and key vault names are derived from it)."
  }
}

variable "resource_group_name" {
  description = "Existing resource group for the dispatcher's own resources (function app, plan, storage, key vault, logs)."
  type        = string
}

variable "location" {
  description = "Azure region of the dispatcher's resources; must offer the Flex Consumption plan. Null: the resource group's region."
  type        = string
  default     = null
}

variable "tags" {
  description = "Tags added to every resource that takes tags."
  type        = map(string)
  default     = {}
}

# --- the function app ---------------------------------------------------------

variable "package_zip_path" {
  description = "Path to the custom handler package built by `make functions` (dist/azure-package.zip: host.json, the linux/amd64 binary `handler` and the tick, fanout and webhook function folders of functions/azure/app)."
  type        = string

  validation {
    condition     = endswith(var.package_zip_path, ".zip")
    error_message = "package_zip_path must name a .zip file, e.g. \"dist/azure-package.zip\"."
  }
}

variable "deploy_package" {
  description = "Deploy the package with the Azure CLI (`az functionapp deployment source config-zip`, which uses OneDeploy on Flex Consumption) whenever its content changes. Needs `az` logged in to the subscription where Terraform runs; set false to deploy it yourself (see the deploy_command output)."
  type        = bool
  default     = true
}

variable "timeout_seconds" {
  description = "Function timeout in seconds (host.json functionTimeout, set through an app setting). HTTP responses are still cut at 230 seconds by the front end, so the webhook must answer sooner."
  type        = number
  default     = 300

  validation {
    condition     = var.timeout_seconds >= 30 && var.timeout_seconds <= 3600
    error_message = "timeout_seconds must be between 30 and 3600."
  }
}

variable "instance_memory_mb" {
  description = "Memory of each Flex Consumption instance, in MB."
  type        = number
  default     = 2048

  validation {
    condition     = contains([512, 2048, 4096], var.instance_memory_mb)
    error_message = "instance_memory_mb must be 512, 2048 or 4096 (the Flex Consumption sizes)."
  }
}

variable "maximum_instance_count" {
  description = "Most instances the app scales out to (queue-triggered fan-out included)."
  type        = number
  default     = 40

  validation {
    condition     = var.maximum_instance_count >= 1 && var.maximum_instance_count <= 1000
    error_message = "maximum_instance_count must be between 1 and 1000."
  }
}

variable "virtual_network_subnet_id" {
  description = "Subnet (delegated to Microsoft.App/environments) for VNet integration, when the Prefect API is only reachable inside a virtual network. Null: no VNet integration."
  type        = string
  default     = null
}

variable "log_retention_days" {
  description = "Retention of the function logs in the Log Analytics workspace behind Application Insights, in days."
  type        = number
  default     = 30

  validation {
    condition     = contains([30, 60, 90, 120, 180, 270, 365, 550, 730], var.log_retention_days)
    error_message = "log_retention_days must be one of 30, 60, 90, 120, 180, 270, 365, 550, 730 (the values Application Insights accepts)."
  }
}

variable "wake_horizon_seconds" {
  description = "How far ahead a tick looks for runs to wake on time with a hidden queue message (PUSHPOOL_WAKE_HORIZON_SECONDS): the tick interval plus a margin. The package's tick runs every minute (functions/azure/app/tick/function.json), hence 90."
  type        = number
  default     = 90

  validation {
    condition     = var.wake_horizon_seconds >= 60 && var.wake_horizon_seconds <= 172800
    error_message = "wake_horizon_seconds must be between 60 (the tick interval) and 172800."
  }
}

variable "submit_reserve_seconds" {
  description = "How long before the invocation deadline a dispatch pass stops claiming runs, so the last submission can finish and be recorded (PUSHPOOL_SUBMIT_RESERVE_SECONDS). Null: a tenth of timeout_seconds, between 20 and 60."
  type        = number
  default     = null

  validation {
    condition     = var.submit_reserve_seconds == null || (coalesce(var.submit_reserve_seconds, 20) >= 5 && coalesce(var.submit_reserve_seconds, 20) * 2 <= var.timeout_seconds)
    error_message = "submit_reserve_seconds must be at least 5 and at most half of timeout_seconds."
  }
}

variable "queue_max_dequeue_count" {
  description = "Deliveries of a fan-out message before the Functions host moves it to the poison queue <queue>-poison (host.json extensions.queues.maxDequeueCount, set through an app setting)."
  type        = number
  default     = 5

  validation {
    condition     = var.queue_max_dequeue_count >= 1 && var.queue_max_dequeue_count <= 100
    error_message = "queue_max_dequeue_count must be between 1 and 100."
  }
}

# --- Prefect ------------------------------------------------------------------

variable "prefect_api_url" {
  description = "Prefect API URL the dispatcher talks to (PREFECT_API_URL), e.g. https://prefect.example.com/api."
  type        = string

  validation {
    condition     = can(regex("^https?://[^\\s/]+", var.prefect_api_url))
    error_message = "prefect_api_url must be an http(s) URL such as https://prefect.example.com/api."
  }
}

variable "work_pools" {
  description = "Work pools this dispatcher serves (PUSHPOOL_POOLS), of type azure-container-instance or azure-container-instance:push."
  type        = list(string)

  validation {
    condition     = length(var.work_pools) > 0 && alltrue([for p in var.work_pools : length(trimspace(p)) > 0 && !strcontains(p, ",")])
    error_message = "work_pools must name at least one pool, and pool names may not be empty or contain commas (PUSHPOOL_POOLS is comma-separated)."
  }
}

variable "worker_name" {
  description = "Worker name shown in the pools and on every run (PUSHPOOL_WORKER_NAME). Null: the value of `name`."
  type        = string
  default     = null
}

variable "shard_size" {
  description = "Runs one invocation dispatches before it fans the rest out through the storage queue (PUSHPOOL_SHARD_SIZE)."
  type        = number
  default     = 20

  validation {
    condition     = var.shard_size >= 1 && var.shard_size <= 200 && floor(var.shard_size) == var.shard_size
    error_message = "shard_size must be a whole number between 1 and 200 (Prefect returns at most 200 runs per poll)."
  }
}

variable "extra_environment" {
  description = "More app settings, e.g. PUSHPOOL_MAX_CONCURRENT_SUBMISSIONS = \"8\" or PREFECT_LOGGING_LEVEL = \"DEBUG\". They cannot override the settings this module manages, and must not hold secrets."
  type        = map(string)
  default     = {}

  validation {
    condition = length(setintersection(keys(var.extra_environment), [
      "PREFECT_API_URL", "PUSHPOOL_POOLS", "PUSHPOOL_WORKER_NAME", "PUSHPOOL_SHARD_SIZE",
      "PUSHPOOL_WAKE_HORIZON_SECONDS", "PUSHPOOL_SUBMIT_RESERVE_SECONDS",
      "PREFECT_API_KEY", "PREFECT_API_AUTH_STRING", "PUSHPOOL_WEBHOOK_SECRET", "PUSHPOOL_QUEUE", "AZURE_SUBSCRIPTION_ID",
      "PUSHPOOL_ACI_RESOURCE_GROUP", "PUSHPOOL_ACI_LOCATION", "AzureWebJobsStorage",
      "AzureFunctionsJobHost__functionTimeout", "AzureFunctionsJobHost__extensions__queues__maxDequeueCount",
    ])) == 0
    error_message = "extra_environment may not set the settings the module manages (secrets belong in Key Vault: use the prefect_api_* and webhook_secret variables)."
  }
}

# --- ACI (where the flow runs go) ---------------------------------------------

variable "aci_resource_group_name" {
  description = "Existing resource group the flow runs' container groups are created in (PUSHPOOL_ACI_RESOURCE_GROUP). The dispatcher's role is assigned on this group only, so pool templates must not name another."
  type        = string
}

variable "aci_location" {
  description = "Region of the container groups (PUSHPOOL_ACI_LOCATION). Null: the ACI resource group's region."
  type        = string
  default     = null
}

variable "aci_subnet_ids" {
  description = "Subnets the pool templates put container groups in (the `subnet_ids` job variable). The dispatcher may join exactly these."
  type        = list(string)
  default     = []

  validation {
    condition     = alltrue([for s in var.aci_subnet_ids : can(regex("(?i)^/subscriptions/[^/]+/resourceGroups/[^/]+/providers/Microsoft.Network/virtualNetworks/[^/]+/subnets/[^/*]+$", s))])
    error_message = "aci_subnet_ids must hold subnet resource IDs (/subscriptions/S/resourceGroups/G/providers/Microsoft.Network/virtualNetworks/V/subnets/N)."
  }
}

variable "aci_identity_ids" {
  description = "User-assigned managed identities the pool templates give container groups (the `identities` job variable, or an image registry identity). The dispatcher may assign exactly these."
  type        = list(string)
  default     = []

  validation {
    condition     = alltrue([for i in var.aci_identity_ids : can(regex("(?i)^/subscriptions/[^/]+/resourceGroups/[^/]+/providers/Microsoft.ManagedIdentity/userAssignedIdentities/[^/*]+$", i))])
    error_message = "aci_identity_ids must hold user-assigned identity resource IDs."
  }
}

# --- secrets ------------------------------------------------------------------

variable "prefect_api_key" {
  description = "Prefect API key, stored in the module's Key Vault and given to the app as a Key Vault reference (PREFECT_API_KEY). Null for a server without API keys."
  type        = string
  default     = null
  sensitive   = true
}

variable "prefect_api_auth_string" {
  description = "Basic auth string (user:password) of a Prefect server behind PREFECT_SERVER_API_AUTH_STRING, stored in the module's Key Vault and given to the app as a Key Vault reference (PREFECT_API_AUTH_STRING). Null: none."
  type        = string
  default     = null
  sensitive   = true
}

variable "webhook_secret" {
  description = "HMAC key the webhook function verifies request bodies with, stored in the module's Key Vault. Null: a random 48-character key is generated; read it from the webhook_secret output."
  type        = string
  default     = null
  sensitive   = true

  validation {
    condition     = var.webhook_secret == null || length(coalesce(var.webhook_secret, "x")) >= 32
    error_message = "webhook_secret must be at least 32 characters long."
  }
}
