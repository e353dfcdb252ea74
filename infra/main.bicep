// Dynamics 365 (Dataverse) <-> Adobe Campaign Standard connector: a Python 3.11 Function App on Flex Consumption
// with its storage, monitoring, Key Vault and roles. Subscription scope, so one deployment also creates the
// resource group. Raw resource declarations only: no registry modules, so nothing needs restoring.
targetScope = 'subscription'

// ---------------------------------------------------------------- environment

@minLength(1)
@maxLength(40)
@description('Environment name (e.g. dev, prod). Names the resource group and seeds the unique resource names.')
param environmentName string

@minLength(1)
@description('Azure region of every resource; it must offer Flex Consumption.')
param location string

@description('Resource group name; empty means rg-<environmentName>.')
param resourceGroupName string = ''

@description('Extra tags for every resource.')
param tags object = {}

@minValue(1)
@maxValue(1000)
@description('Flex Consumption: the most instances the app may scale out to.')
param maximumInstanceCount int = 40

@allowed([
  512
  2048
  4096
])
@description('Flex Consumption: memory of each instance, in MB.')
param instanceMemoryMB int = 2048

@description('Object id given Key Vault Secrets Officer so it can set the secrets; defaults to whoever deploys. Empty: none.')
param secretsOfficerPrincipalId string = deployer().objectId

@description('Key Vault purge protection (cannot be turned off again); false only for throwaway environments.')
param keyVaultPurgeProtection bool = true

@description('[STATE_CONTAINER] Blob container the connector stages initial-transfer files in.')
param stagingContainerName string = 'sync-staging'

// ---------------------------------------------------------------- connector settings (app setting in brackets)

@description('[DATAVERSE_URL] Dataverse environment URL, e.g. https://contoso.crm4.dynamics.com')
param dataverseUrl string

@description('[DATAVERSE_TENANT_ID] Entra tenant of the Dataverse app registration; defaults to the tenant of this subscription.')
param dataverseTenantId string = subscription().tenantId

@description('[DATAVERSE_CLIENT_ID] Application (client) id of the Dataverse app registration.')
param dataverseClientId string

@description('[DATAVERSE_AUTHORITY_HOST] Entra authority host.')
param dataverseAuthorityHost string = 'https://login.microsoftonline.com'

@description('[CAMPAIGN_ORGANIZATION] Adobe organization (tenant) id as used in the Campaign API URL.')
param campaignOrganization string

@description('[CAMPAIGN_BASE_URL] Campaign Standard API base URL.')
param campaignBaseUrl string = 'https://mc.adobe.io/${campaignOrganization}/campaign'

@description('[CAMPAIGN_IMS_URL] Adobe IMS host for OAuth server-to-server tokens.')
param campaignImsUrl string = 'https://ims-na1.adobelogin.com'

@description('[CAMPAIGN_CLIENT_ID] Adobe Developer Console OAuth server-to-server client id.')
param campaignClientId string

// Adobe does not document the Campaign scope list; copy it from the credential page in Developer Console.
@description('[CAMPAIGN_SCOPES] Comma-separated IMS scopes of the credential.')
param campaignScopes string = 'openid,AdobeID,read_organizations,additional_info.projectedProductContext,campaign_sdk,campaign_config_server_general,deliverability_service_general'

@description('[SFTP_HOST] Campaign SFTP host name.')
param sftpHost string

@minValue(1)
@maxValue(65535)
@description('[SFTP_PORT] Campaign SFTP port.')
param sftpPort int = 22

@description('[SFTP_USERNAME] Campaign SFTP user.')
param sftpUsername string

@description('[SFTP_HOST_KEY] Pinned SFTP host key ("ssh-ed25519 AAAA..." line or "SHA256:..." fingerprint); public.')
param sftpHostKey string

@description('[SYNC_CONFIG] Path of the sync mapping document inside the deployed package.')
param syncConfig string = 'config/sync.json'

// Flex has no time-zone setting: write the schedule in UTC.
@description('[INGRESS_SCHEDULE] NCRONTAB (6 fields, UTC) of the ingress timer.')
param ingressSchedule string = '0 */5 * * * *'

@description('[OPTOUT_SCHEDULE] NCRONTAB (6 fields, UTC) of the opt-out timer (Campaign opt-out file, retries).')
param optOutSchedule string = '0 */15 * * * *'

// Keep it below host.json functionTimeout (Flex default: 30 minutes) so a run always ends checkpointed.
@minValue(10)
@description('[RUN_TIME_BUDGET_SECONDS] Time budget of one flow run; the run stops cleanly after it.')
param runTimeBudgetSeconds int = 1500

// Adding a product setting is one line here or in main.bicepparam: connectorSettings = { NEW_SETTING: 'value' }.
@description('Further app settings (name to string value) merged over the connector settings above.')
param connectorSettings object = {}

// ---------------------------------------------------------------- names

var resourceToken = toLower(uniqueString(subscription().id, environmentName, location))
var names = {
  resourceGroup: empty(resourceGroupName) ? 'rg-${environmentName}' : resourceGroupName
  plan: 'plan-${resourceToken}'
  functionApp: 'func-${resourceToken}'
  storage: 'st${resourceToken}'
  keyVault: 'kv-${resourceToken}'
  logAnalytics: 'log-${resourceToken}'
  appInsights: 'appi-${resourceToken}'
  deploymentContainer: 'app-package'
}
var baseTags = {
  application: 'd365-campaign-connector'
  environment: environmentName
}
var allTags = union(baseTags, tags)

// Key Vault secret names; scripts/deploy.sh and infra/README.md use the same names.
var secretNames = {
  dataverseClientSecret: 'dataverse-client-secret'
  campaignClientSecret: 'campaign-client-secret'
  sftpPrivateKey: 'sftp-private-key'
}

// ---------------------------------------------------------------- resources

resource rg 'Microsoft.Resources/resourceGroups@2024-03-01' = {
  name: names.resourceGroup
  location: location
  tags: allTags
}

module storage 'modules/storage.bicep' = {
  name: 'storage'
  scope: rg
  params: {
    name: names.storage
    location: location
    tags: allTags
    deploymentContainerName: names.deploymentContainer
    stagingContainerName: stagingContainerName
  }
}

module monitoring 'modules/monitoring.bicep' = {
  name: 'monitoring'
  scope: rg
  params: {
    logAnalyticsName: names.logAnalytics
    appInsightsName: names.appInsights
    location: location
    tags: allTags
  }
}

module keyVault 'modules/keyvault.bicep' = {
  name: 'keyvault'
  scope: rg
  params: {
    name: names.keyVault
    location: location
    tags: allTags
    secretsOfficerPrincipalId: secretsOfficerPrincipalId
    enablePurgeProtection: keyVaultPurgeProtection
  }
}

module functionApp 'modules/functionapp.bicep' = {
  name: 'functionapp'
  scope: rg
  params: {
    planName: names.plan
    functionAppName: names.functionApp
    location: location
    tags: allTags
    blobEndpoint: storage.outputs.blobEndpoint
    deploymentContainerName: storage.outputs.deploymentContainerName
    maximumInstanceCount: maximumInstanceCount
    instanceMemoryMB: instanceMemoryMB
  }
}

module rbac 'modules/rbac.bicep' = {
  name: 'rbac'
  scope: rg
  params: {
    principalId: functionApp.outputs.principalId
    storageAccountName: storage.outputs.name
    appInsightsName: monitoring.outputs.appInsightsName
    keyVaultName: keyVault.outputs.name
  }
}

// ---------------------------------------------------------------- app settings

// Functions host storage through the system-assigned identity. No AzureFunctionsWebHost__hostid: the storage
// account is this app's alone, so no other app can take its timer locks. Set a distinct one if it is ever shared.
var hostSettings = {
  AzureWebJobsStorage__blobServiceUri: storage.outputs.blobEndpoint
  AzureWebJobsStorage__queueServiceUri: storage.outputs.queueEndpoint
  AzureWebJobsStorage__tableServiceUri: storage.outputs.tableEndpoint
  AzureWebJobsStorage__credential: 'managedidentity'
  APPLICATIONINSIGHTS_CONNECTION_STRING: monitoring.outputs.connectionString
  APPLICATIONINSIGHTS_AUTHENTICATION_STRING: 'Authorization=AAD'
}

var connectorBaseSettings = {
  DATAVERSE_URL: dataverseUrl
  DATAVERSE_TENANT_ID: dataverseTenantId
  DATAVERSE_CLIENT_ID: dataverseClientId
  DATAVERSE_AUTHORITY_HOST: dataverseAuthorityHost
  CAMPAIGN_BASE_URL: campaignBaseUrl
  CAMPAIGN_ORGANIZATION: campaignOrganization
  CAMPAIGN_IMS_URL: campaignImsUrl
  CAMPAIGN_CLIENT_ID: campaignClientId
  CAMPAIGN_SCOPES: campaignScopes
  SFTP_HOST: sftpHost
  SFTP_PORT: string(sftpPort)
  SFTP_USERNAME: sftpUsername
  SFTP_HOST_KEY: sftpHostKey
  // Connector state (tables) and staging (blobs) live in the host's own account, reached with the app's managed
  // identity: the app reads STATE_STORAGE_ACCOUNT (STATE_STORAGE_CONNECTION_STRING is for Azurite only).
  STATE_STORAGE_ACCOUNT: storage.outputs.name
  STATE_CONTAINER: storage.outputs.stagingContainerName
  SYNC_CONFIG: syncConfig
  INGRESS_SCHEDULE: ingressSchedule
  RUN_TIME_BUDGET_SECONDS: string(runTimeBudgetSeconds)
  // The opt-out webhook queue, in the same account, through the same identity (role Storage Queue Data
  // Contributor): the queue trigger's connection OPTOUT_QUEUE_STORAGE and the webhook function both read these.
  OPTOUT_SCHEDULE: optOutSchedule
  OPTOUT_QUEUE: 'optout-webhooks'
  OPTOUT_QUEUE_STORAGE__queueServiceUri: storage.outputs.queueEndpoint
  OPTOUT_QUEUE_STORAGE__credential: 'managedidentity'
}

// Secrets are Key Vault references without a version: the app picks up a rotated secret within 24 h.
var secretReferenceSettings = {
  DATAVERSE_CLIENT_SECRET: '@Microsoft.KeyVault(SecretUri=${keyVault.outputs.uri}secrets/${secretNames.dataverseClientSecret})'
  CAMPAIGN_CLIENT_SECRET: '@Microsoft.KeyVault(SecretUri=${keyVault.outputs.uri}secrets/${secretNames.campaignClientSecret})'
  SFTP_PRIVATE_KEY: '@Microsoft.KeyVault(SecretUri=${keyVault.outputs.uri}secrets/${secretNames.sftpPrivateKey})'
}

module appSettings 'modules/appsettings.bicep' = {
  name: 'appsettings'
  scope: rg
  dependsOn: [
    rbac
  ]
  params: {
    functionAppName: functionApp.outputs.name
    // Later objects win: extra settings cannot replace the host wiring or turn a secret into a literal.
    appSettings: union(connectorBaseSettings, connectorSettings, hostSettings, secretReferenceSettings)
  }
}

// ---------------------------------------------------------------- outputs (read by scripts/deploy.sh)

output resourceGroupName string = rg.name
output functionAppName string = functionApp.outputs.name
output functionAppHostName string = functionApp.outputs.defaultHostName
output keyVaultName string = keyVault.outputs.name
output storageAccountName string = storage.outputs.name
output stagingContainerName string = storage.outputs.stagingContainerName
