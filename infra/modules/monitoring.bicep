// Log Analytics workspace and a workspace-based Application Insights component that accepts Entra ID-authenticated
// telemetry only (the app sends APPLICATIONINSIGHTS_AUTHENTICATION_STRING=Authorization=AAD).

param logAnalyticsName string
param appInsightsName string
param location string
param tags object

@minValue(30)
@maxValue(730)
param retentionInDays int = 30

resource workspace 'Microsoft.OperationalInsights/workspaces@2025-02-01' = {
  name: logAnalyticsName
  location: location
  tags: tags
  properties: {
    sku: {
      name: 'PerGB2018'
    }
    retentionInDays: retentionInDays
  }
}

resource appInsights 'Microsoft.Insights/components@2020-02-02' = {
  name: appInsightsName
  location: location
  tags: tags
  kind: 'web'
  properties: {
    Application_Type: 'web'
    WorkspaceResourceId: workspace.id
    IngestionMode: 'LogAnalytics'
    // Instrumentation-key ingestion is refused: only the app's identity (Monitoring Metrics Publisher) can write.
    DisableLocalAuth: true
  }
}

output appInsightsName string = appInsights.name
output logAnalyticsName string = workspace.name
// Not a secret once local auth is disabled: the key in it grants nothing without an Entra token.
output connectionString string = appInsights.properties.ConnectionString
