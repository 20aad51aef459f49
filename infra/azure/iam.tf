# Least privilege for the app's system-assigned identity: custom roles that
# list their actions one by one (no "*" anywhere; infra/infra_test.go checks
# it), assigned on the ACI resource group, on single subnets and identities,
# and on single secrets.

locals {
  principal_id = azurerm_function_app_flex_consumption.this.identity[0].principal_id
  # Custom roles are defined on the subscription; assignable_scopes and the
  # assignments keep them to single resource groups and resources.
  subscription_scope = "/subscriptions/${data.azurerm_client_config.current.subscription_id}"
}

# Container groups: create, read status, stop, delete. Only in the ACI
# resource group.
resource "azurerm_role_definition" "aci" {
  name        = "pushpool ACI dispatcher (${var.name}-${local.suffix})"
  scope       = local.subscription_scope
  description = "pushpool ${local.app_name}: manage flow-run container groups in ${data.azurerm_resource_group.aci.name}"

  permissions {
    actions = [
      "Microsoft.ContainerInstance/containerGroups/read",
      "Microsoft.ContainerInstance/containerGroups/write",
      "Microsoft.ContainerInstance/containerGroups/delete",
      "Microsoft.ContainerInstance/containerGroups/stop/action",
    ]
    not_actions = []
  }

  assignable_scopes = [data.azurerm_resource_group.aci.id]
}

resource "azurerm_role_assignment" "function_aci" {
  scope              = data.azurerm_resource_group.aci.id
  role_definition_id = azurerm_role_definition.aci.role_definition_resource_id
  principal_id       = local.principal_id
  principal_type     = "ServicePrincipal"
}

# Container groups in a virtual network: join exactly the given subnets.
resource "azurerm_role_definition" "subnet_join" {
  count       = length(var.aci_subnet_ids) > 0 ? 1 : 0
  name        = "pushpool subnet join (${var.name}-${local.suffix})"
  scope       = local.subscription_scope
  description = "pushpool ${local.app_name}: place flow-run container groups in a subnet"

  permissions {
    actions     = ["Microsoft.Network/virtualNetworks/subnets/join/action"]
    not_actions = []
  }

  assignable_scopes = var.aci_subnet_ids
}

resource "azurerm_role_assignment" "function_subnet_join" {
  for_each           = toset(var.aci_subnet_ids)
  scope              = each.value
  role_definition_id = azurerm_role_definition.subnet_join[0].role_definition_resource_id
  principal_id       = local.principal_id
  principal_type     = "ServicePrincipal"
}

# Container groups with user-assigned identities: assign exactly the given
# identities (Azure's counterpart of iam:PassRole).
resource "azurerm_role_definition" "identity_assign" {
  count       = length(var.aci_identity_ids) > 0 ? 1 : 0
  name        = "pushpool identity assign (${var.name}-${local.suffix})"
  scope       = local.subscription_scope
  description = "pushpool ${local.app_name}: give flow-run container groups a user-assigned identity"

  permissions {
    actions     = ["Microsoft.ManagedIdentity/userAssignedIdentities/assign/action"]
    not_actions = []
  }

  assignable_scopes = var.aci_identity_ids
}

resource "azurerm_role_assignment" "function_identity_assign" {
  for_each           = toset(var.aci_identity_ids)
  scope              = each.value
  role_definition_id = azurerm_role_definition.identity_assign[0].role_definition_resource_id
  principal_id       = local.principal_id
  principal_type     = "ServicePrincipal"
}

# Key Vault references: read these secrets only.
resource "azurerm_role_assignment" "function_secrets" {
  for_each = merge(
    { webhook = azurerm_key_vault_secret.webhook.resource_versionless_id },
    local.has_prefect_api_key ? { prefect_api_key = azurerm_key_vault_secret.prefect_api_key[0].resource_versionless_id } : {},
    local.has_prefect_auth_string ? { prefect_auth_string = azurerm_key_vault_secret.prefect_auth_string[0].resource_versionless_id } : {},
  )
  scope                = each.value
  role_definition_name = "Key Vault Secrets User"
  principal_id         = local.principal_id
  principal_type       = "ServicePrincipal"
}
