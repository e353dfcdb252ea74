// Dynamics 365 (Dataverse) <-> Adobe Campaign Standard connector: a Python 3.11 Function App on Flex Consumption
// with its storage, monitoring (alerts, workbook), Key Vault and roles. Subscription scope, so one deployment also
// creates the resource group. Raw resource declarations only: no registry modules, so nothing needs restoring.
// Deployed by scripts/deploy.sh or by `azd up` (azure.yaml; the azd-* tags below let azd find its resources).
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

// Rolling updates (preview on Flex) let an in-flight run finish on its old instance instead of being killed by a
// deploy or a settings change; Recreate restarts every instance at once.
@allowed([
  'RollingUpdate'
  'Recreate'
])
@description('Flex Consumption site update strategy for deploys and settings changes.')
param siteUpdateStrategy string = 'RollingUpdate'

// The app settings are written as a whole on every deployment, so a function disabled in the portal
// (AzureWebJobs.<name>.Disabled) would be enabled again unless it is listed here.
@description('Functions to keep disabled, e.g. [ \'ingress_custom_tables\' ]; each becomes AzureWebJobs.<name>.Disabled=true.')
param disabledFunctions array = []

// host: the Functions host forwards Python logs to Application Insights (traces). opentelemetry: the host and
// the Python worker export through OpenTelemetry instead (needs azure-monitor-opentelemetry, in requirements.txt).
@allowed([
  'host'
  'opentelemetry'
])
@description('How telemetry reaches Application Insights.')
param telemetryMode string = 'host'

@description('[OPTOUT_QUEUE] Storage queue of the opt-out webhook receiver; the Functions host moves failing messages to <name>-poison.')
param optOutQueueName string = 'optout-webhooks'

// ---------------------------------------------------------------- alerts

@description('E-mail address the alerts notify; empty: the alerts fire in the portal only.')
param alertEmailAddress string = ''

@minValue(1)
@description('Alert when one flow and scope fails this many runs in a row (skipped runs do not count).')
param alertFailedRunsInARow int = 3

@minValue(0)
@description('Alert when more than this many records were dead-lettered in the last hour.')
param alertDeadLettersPerHour int = 0

@minValue(5)
@description('Alert when a flow\'s cursor (or its last run) is older than this many minutes.')
param alertCursorAgeMinutes int = 60

// ---------------------------------------------------------------- connector settings (app setting in brackets)

@description('[DATAVERSE_URL] Dataverse environment URL, e.g. https://contoso.crm4.dynamics.com')
param dataverseUrl string

@description('[DATAVERSE_TENANT_ID] Entra tenant of the Dataverse app registration; defaults to the tenant of this subscription.')
param dataverseTenantId string = subscription().tenantId

@description('[DATAVERSE_CLIENT_ID] Application (client) id of the Dataverse app registration.')
param dataverseClientId string

// secret: Key Vault secret dataverse-client-secret -> DATAVERSE_CLIENT_SECRET. certificate: Key Vault secret
// dataverse-certificate (PEM: private key and certificate) -> DATAVERSE_CERTIFICATE, plus its thumbprint below.
@allowed([
  'secret'
  'certificate'
])
@description('How the app authenticates to Entra for Dataverse.')
param dataverseAuth string = 'secret'

@description('[DATAVERSE_CERTIFICATE_THUMBPRINT] SHA-1 thumbprint (hex) of the certificate; used when dataverseAuth is certificate.')
param dataverseCertificateThumbprint string = ''

@description('[DATAVERSE_AUTHORITY_HOST] Entra authority host.')
param dataverseAuthorityHost string = 'https://login.microsoftonline.com'

@description('[CAMPAIGN_ORGANIZATION] Adobe organization (tenant) id as used in the Campaign API URL.')
param campaignOrganization string

// Host only: the app appends /<organization>/campaign/ itself.
@description('[CAMPAIGN_BASE_URL] Campaign Standard API host.')
param campaignBaseUrl string = 'https://mc.adobe.io'

@description('[CAMPAIGN_IMS_URL] Adobe IMS host for OAuth server-to-server tokens.')
param campaignImsUrl string = 'https://ims-na1.adobelogin.com'

@description('[CAMPAIGN_CLIENT_ID] Adobe Developer Console OAuth server-to-server client id.')
param campaignClientId string

// Adobe does not document the Campaign scope list; copy it from the credential page in Developer Console.
@description('[CAMPAIGN_SCOPES] Comma-separated IMS scopes of the credential.')
param campaignScopes string = 'openid,AdobeID,read_organizations,additional_info.projectedProductContext,campaign_sdk'

// SFTP is needed by initial transfer, egress and Campaign->Dynamics opt-out only. Empty: no SFTP setting and no
// Key Vault reference to an SFTP key are written (an unresolved reference would fail every run).
@description('[SFTP_HOST] Campaign SFTP host name; empty: SFTP not configured.')
param sftpHost string = ''

@minValue(1)
@maxValue(65535)
@description('[SFTP_PORT] Campaign SFTP port.')
param sftpPort int = 22

@description('[SFTP_USERNAME] Campaign SFTP user (with sftpHost).')
param sftpUsername string = ''

@description('[SFTP_HOST_KEY] Pinned SFTP host key ("ssh-ed25519 AAAA..." line or "SHA256:..." fingerprint); public.')
param sftpHostKey string = ''

@description('[SYNC_CONFIG] Path of the sync mapping document inside the deployed package.')
param syncConfig string = 'config/sync.json'

// Flex has no time-zone setting: write the schedule in UTC.
@description('[INGRESS_SCHEDULE] NCRONTAB (6 fields, UTC) of the ingress timer.')
param ingressSchedule string = '0 */5 * * * *'

@description('[EGRESS_SCHEDULE] NCRONTAB (6 fields, UTC) of the egress timer (Campaign events to Dynamics).')
param egressSchedule string = '0 */15 * * * *'
@description('[INITIAL_TRANSFER_SCHEDULE] NCRONTAB (6 fields, UTC) of the initial-transfer timer (also how often a running import is looked at).')
param initialTransferSchedule string = '0 */2 * * * *'

@description('[OPTOUT_SCHEDULE] NCRONTAB (6 fields, UTC) of the opt-out timer (Campaign opt-out file, retries).')
param optOutSchedule string = '0 */15 * * * *'

// Keep it below host.json functionTimeout (Flex default: 30 minutes) so a run always ends checkpointed.
@minValue(10)
@description('[RUN_TIME_BUDGET_SECONDS] Time budget of one flow run; the run stops cleanly after it.')
param runTimeBudgetSeconds int = 1500

// Adding a product setting is one line here or in main.bicepparam: connectorSettings = { NEW_SETTING: 'value' }.
@allowed([
  'off'
  'azure-monitor'
])
@description('[TELEMETRY_EXPORT] azure-monitor: the CLI, run with the app\'s settings outside the Functions host, exports its own logs.')
param telemetryExport string = 'off'

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
  alertPrefix: 'alert-${resourceToken}'
}
// azd-env-name lets `azd` find the environment's resources; azd-service-name (on the Function App, in
// functionapp.bicep) maps the app to the `api` service of azure.yaml.
var baseTags = {
  application: 'd365-campaign-connector'
  environment: environmentName
  'azd-env-name': environmentName
}
var allTags = union(baseTags, tags)

// Key Vault secret names; scripts/deploy.sh and infra/README.md use the same names.
var secretNames = {
  dataverseClientSecret: 'dataverse-client-secret'
  dataverseCertificate: 'dataverse-certificate'
  campaignClientSecret: 'campaign-client-secret'
  sftpPrivateKey: 'sftp-private-key'
}
var sftpEnabled = !empty(sftpHost)
var useCertificate = dataverseAuth == 'certificate'

// ---------------------------------------------------------------- resources

resource rg 'Microsoft.Resources/resourceGroups@2025-04-01' = {
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
    queueNames: [
      optOutQueueName
    ]
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
    siteUpdateStrategy: siteUpdateStrategy
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

// OpenTelemetry mode: the host (AzureFunctionsJobHost__ overrides host.json) and the Python worker both export;
// the worker exports the connector's sync.* loggers only, not the Azure SDK's.
var telemetrySettings = telemetryMode == 'opentelemetry' ? {
  AzureFunctionsJobHost__telemetryMode: 'OpenTelemetry'
  PYTHON_APPLICATIONINSIGHTS_ENABLE_TELEMETRY: 'true'
  PYTHON_APPLICATIONINSIGHTS_LOGGER_NAME: 'sync'
} : {}

var disabledFunctionSettings = toObject(disabledFunctions, name => 'AzureWebJobs.${name}.Disabled', name => 'true')

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
  // Connector state (tables) and staging (blobs) live in the host's own account, reached with the app's managed
  // identity: the app reads STATE_STORAGE_ACCOUNT (STATE_STORAGE_CONNECTION_STRING is for Azurite only).
  STATE_STORAGE_ACCOUNT: storage.outputs.name
  STATE_CONTAINER: storage.outputs.stagingContainerName
  SYNC_CONFIG: syncConfig
  INGRESS_SCHEDULE: ingressSchedule
  EGRESS_SCHEDULE: egressSchedule
  INITIAL_TRANSFER_SCHEDULE: initialTransferSchedule
  RUN_TIME_BUDGET_SECONDS: string(runTimeBudgetSeconds)
  TELEMETRY_EXPORT: telemetryExport
  // The opt-out webhook queue, in the same account, through the same identity (role Storage Queue Data
  // Contributor): the queue trigger's connection OPTOUT_QUEUE_STORAGE and the webhook function both read these.
  OPTOUT_SCHEDULE: optOutSchedule
  OPTOUT_QUEUE: optOutQueueName
  OPTOUT_QUEUE_STORAGE__queueServiceUri: storage.outputs.queueEndpoint
  OPTOUT_QUEUE_STORAGE__credential: 'managedidentity'
}

var sftpSettings = sftpEnabled ? {
  SFTP_HOST: sftpHost
  SFTP_PORT: string(sftpPort)
  SFTP_USERNAME: sftpUsername
  SFTP_HOST_KEY: sftpHostKey
} : {}

var dataverseAuthSettings = useCertificate ? {
  DATAVERSE_CERTIFICATE_THUMBPRINT: dataverseCertificateThumbprint
} : {}

// Secrets are Key Vault references without a version: the app picks up a rotated secret within 24 h. Only the
// secrets the chosen options use are referenced: a reference to a secret nobody set would fail every run.
var campaignSecretReference = {
  CAMPAIGN_CLIENT_SECRET: '@Microsoft.KeyVault(SecretUri=${keyVault.outputs.uri}secrets/${secretNames.campaignClientSecret})'
}
var dataverseSecretReference = useCertificate ? {
  DATAVERSE_CERTIFICATE: '@Microsoft.KeyVault(SecretUri=${keyVault.outputs.uri}secrets/${secretNames.dataverseCertificate})'
} : {
  DATAVERSE_CLIENT_SECRET: '@Microsoft.KeyVault(SecretUri=${keyVault.outputs.uri}secrets/${secretNames.dataverseClientSecret})'
}
var sftpSecretReference = sftpEnabled ? {
  SFTP_PRIVATE_KEY: '@Microsoft.KeyVault(SecretUri=${keyVault.outputs.uri}secrets/${secretNames.sftpPrivateKey})'
} : {}
var secretReferenceSettings = union(campaignSecretReference, dataverseSecretReference, sftpSecretReference)

module appSettings 'modules/appsettings.bicep' = {
  name: 'appsettings'
  scope: rg
  dependsOn: [
    rbac
  ]
  params: {
    functionAppName: functionApp.outputs.name
    // Later objects win: extra settings cannot replace the host wiring, re-enable a disabled function or turn a
    // secret into a literal.
    appSettings: union(
      connectorBaseSettings,
      sftpSettings,
      dataverseAuthSettings,
      connectorSettings,
      disabledFunctionSettings,
      telemetrySettings,
      hostSettings,
      secretReferenceSettings
    )
  }
}

module alerts 'modules/alerts.bicep' = {
  name: 'alerts'
  scope: rg
  params: {
    namePrefix: names.alertPrefix
    location: location
    tags: allTags
    appInsightsName: monitoring.outputs.appInsightsName
    logAnalyticsName: monitoring.outputs.logAnalyticsName
    storageAccountName: storage.outputs.name
    poisonQueueName: '${optOutQueueName}-poison'
    emailAddress: alertEmailAddress
    failedRunsInARow: alertFailedRunsInARow
    deadLettersPerHour: alertDeadLettersPerHour
    cursorAgeMinutes: alertCursorAgeMinutes
  }
}

module workbook 'modules/workbook.bicep' = {
  name: 'workbook'
  scope: rg
  params: {
    location: location
    tags: allTags
    appInsightsName: monitoring.outputs.appInsightsName
    displayName: 'D365 <-> Campaign connector (${environmentName})'
  }
}

// ---------------------------------------------------------------- outputs (read by scripts/deploy.sh)

output resourceGroupName string = rg.name
output functionAppName string = functionApp.outputs.name
output functionAppHostName string = functionApp.outputs.defaultHostName
output keyVaultName string = keyVault.outputs.name
output storageAccountName string = storage.outputs.name
output stagingContainerName string = storage.outputs.stagingContainerName
output optOutQueueName string = optOutQueueName
// Read by azd (it keeps outputs in its environment).
output AZURE_FUNCTION_APP_NAME string = functionApp.outputs.name
