// Parameters of infra/main.bicep. Values that differ per environment come from environment variables (set them
// before `scripts/deploy.sh`, which checks them, or with `azd env set NAME VALUE`); everything else keeps the
// template's defaults unless set here. Never put secret values in this file: they go into Key Vault.
using './main.bicep'

param environmentName = readEnvironmentVariable('AZURE_ENV_NAME')
param location = readEnvironmentVariable('AZURE_LOCATION')

param dataverseUrl = readEnvironmentVariable('DATAVERSE_URL')
param dataverseClientId = readEnvironmentVariable('DATAVERSE_CLIENT_ID')
param campaignOrganization = readEnvironmentVariable('CAMPAIGN_ORGANIZATION')
param campaignClientId = readEnvironmentVariable('CAMPAIGN_CLIENT_ID')

// Optional: empty values keep the template's behaviour (no SFTP; client-secret auth; nothing disabled).
param sftpHost = readEnvironmentVariable('SFTP_HOST', '')
param sftpUsername = readEnvironmentVariable('SFTP_USERNAME', '')
param sftpHostKey = readEnvironmentVariable('SFTP_HOST_KEY', '')
param dataverseAuth = readEnvironmentVariable('DATAVERSE_AUTH', 'secret')
param dataverseCertificateThumbprint = readEnvironmentVariable('DATAVERSE_CERTIFICATE_THUMBPRINT', '')
// Comma-separated function names, e.g. DISABLED_FUNCTIONS=ingress_custom_tables.
param disabledFunctions = filter(split(readEnvironmentVariable('DISABLED_FUNCTIONS', ''), ','), name => !empty(trim(name)))
param alertEmailAddress = readEnvironmentVariable('ALERT_EMAIL', '')

// Optional overrides (template defaults shown):
// param dataverseTenantId = '<tenant of the subscription>'
// param dataverseAuthorityHost = 'https://login.microsoftonline.com'
// param campaignBaseUrl = 'https://mc.adobe.io'
// param campaignImsUrl = 'https://ims-na1.adobelogin.com'
// param campaignScopes = 'openid,AdobeID,read_organizations,additional_info.projectedProductContext,campaign_sdk'
// param sftpPort = 22
// param syncConfig = 'config/sync.json'
// param ingressSchedule = '0 */5 * * * *'
// param runTimeBudgetSeconds = 1500
// param siteUpdateStrategy = 'RollingUpdate'
// param telemetryMode = 'host'
// param telemetryExport = 'off'
// param optOutQueueName = 'optout-webhooks'
// param alertFailedRunsInARow = 3
// param alertDeadLettersPerHour = 0
// param alertCursorAgeMinutes = 60
// param maximumInstanceCount = 40
// param instanceMemoryMB = 2048
// param connectorSettings = {
//   NEW_SETTING: 'value'
// }
