// The Function App's complete app settings. Deployed after rbac.bicep so that identity-based storage and the
// Key Vault references resolve on first start (role propagation can still take a few minutes).

param functionAppName string

@description('Every app setting, name to string value. This resource replaces the app settings as a whole.')
param appSettings object

resource site 'Microsoft.Web/sites@2025-05-01' existing = {
  name: functionAppName
}

resource settings 'Microsoft.Web/sites/config@2025-05-01' = {
  parent: site
  name: 'appsettings'
  properties: appSettings
}
