// A shared workbook on the Application Insights component: per flow throughput, lag (cursor age), failures and
// dead letters, all read from the `run.summary {json}` traces. Its content is infra/workbook.json.

param location string
param tags object
param appInsightsName string
param displayName string

resource appInsights 'Microsoft.Insights/components@2020-02-02' existing = {
  name: appInsightsName
}

resource workbook 'Microsoft.Insights/workbooks@2023-06-01' = {
  // A workbook's name must be a GUID; this one is stable per component, so redeploying updates it in place.
  name: guid(appInsights.id, 'connector-workbook')
  location: location
  tags: tags
  kind: 'shared'
  properties: {
    displayName: displayName
    category: 'workbook'
    sourceId: appInsights.id
    serializedData: loadTextContent('../workbook.json')
  }
}

output workbookId string = workbook.id
