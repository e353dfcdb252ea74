// Key Vault (RBAC authorization) for the connector's secrets. Secret values never pass through this template: the
// operator sets them with `az keyvault secret set` (see infra/README.md) and the app reads them via Key Vault
// references in its app settings.

param name string
param location string
param tags object

@description('Object id that may write secrets (Key Vault Secrets Officer), e.g. the deploying user or pipeline. Empty: none.')
param secretsOfficerPrincipalId string = ''

@description('Purge protection cannot be turned off once on; disable it only for throwaway environments.')
param enablePurgeProtection bool = true

// Key Vault Secrets Officer (built-in role).
var keyVaultSecretsOfficerRoleId = 'b86a8fe4-44ce-4948-aee5-eccb2c155cd7'

resource vault 'Microsoft.KeyVault/vaults@2025-05-01' = {
  name: name
  location: location
  tags: tags
  properties: {
    tenantId: subscription().tenantId
    sku: {
      family: 'A'
      name: 'standard'
    }
    enableRbacAuthorization: true
    enableSoftDelete: true
    softDeleteRetentionInDays: 90
    // The API accepts only true or absent.
    enablePurgeProtection: enablePurgeProtection ? true : null
    publicNetworkAccess: 'Enabled'
  }
}

// principalType is left out on purpose: the deployer may be a user or a service principal.
resource secretsOfficer 'Microsoft.Authorization/roleAssignments@2022-04-01' = if (!empty(secretsOfficerPrincipalId)) {
  name: guid(vault.id, secretsOfficerPrincipalId, keyVaultSecretsOfficerRoleId)
  scope: vault
  properties: {
    roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', keyVaultSecretsOfficerRoleId)
    principalId: secretsOfficerPrincipalId
  }
}

output name string = vault.name
// Ends with '/', e.g. https://kv-abc.vault.azure.net/
output uri string = vault.properties.vaultUri
