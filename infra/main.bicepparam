// Parameters of infra/main.bicep. Values that differ per environment come from environment variables (set them
// before `scripts/deploy.sh`, which checks them); everything else keeps the template's defaults unless set here.
// Never put secret values in this file: they go into Key Vault (see infra/README.md).
using './main.bicep'

param environmentName = readEnvironmentVariable('AZURE_ENV_NAME')
param location = readEnvironmentVariable('AZURE_LOCATION')

param dataverseUrl = readEnvironmentVariable('DATAVERSE_URL')
param dataverseClientId = readEnvironmentVariable('DATAVERSE_CLIENT_ID')
param campaignOrganization = readEnvironmentVariable('CAMPAIGN_ORGANIZATION')
param campaignClientId = readEnvironmentVariable('CAMPAIGN_CLIENT_ID')
param sftpHost = readEnvironmentVariable('SFTP_HOST')
param sftpUsername = readEnvironmentVariable('SFTP_USERNAME')
param sftpHostKey = readEnvironmentVariable('SFTP_HOST_KEY')

// Optional overrides (template defaults shown):
// param dataverseTenantId = '<tenant of the subscription>'
// param dataverseAuthorityHost = 'https://login.microsoftonline.com'
// param campaignImsUrl = 'https://ims-na1.adobelogin.com'
// param campaignScopes = 'openid,AdobeID,read_organizations,additional_info.projectedProductContext,campaign_sdk,campaign_config_server_general,deliverability_service_general'
// param sftpPort = 22
// param syncConfig = 'config/sync.json'
// param ingressSchedule = '0 */5 * * * *'
// param runTimeBudgetSeconds = 1500
// param maximumInstanceCount = 40
// param instanceMemoryMB = 2048
// param connectorSettings = {
//   NEW_SETTING: 'value'
// }
