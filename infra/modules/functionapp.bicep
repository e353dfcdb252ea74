// Flex Consumption plan and the Python 3.11 Function App with a system-assigned identity. App settings are applied
// by appsettings.bicep after the identity has its roles (rbac.bicep), so the first start finds working access.
// Flex refuses or ignores many classic site properties (functions-app-settings.md, "Flex Consumption plan
// deprecations": ftpsState, alwaysOn, linuxFxVersion, ...): none is set here, and tests/infra checks it.

param planName string
param functionAppName string
param location string
param tags object

@description('Blob endpoint of the storage account, ending with "/".')
param blobEndpoint string

@description('Container that receives the deployment package (func azure functionapp publish).')
param deploymentContainerName string

@minValue(1)
@maxValue(1000)
param maximumInstanceCount int

@allowed([
  512
  2048
  4096
])
param instanceMemoryMB int

@allowed([
  'RollingUpdate'
  'Recreate'
])
param siteUpdateStrategy string

// 2025-05-01: the first Microsoft.Web API version whose schema has functionAppConfig.siteUpdateStrategy (older
// Bicep CLIs may not know its types yet and warn BCP081; the template still deploys).
resource plan 'Microsoft.Web/serverfarms@2025-05-01' = {
  name: planName
  location: location
  tags: tags
  kind: 'functionapp'
  sku: {
    name: 'FC1'
    tier: 'FlexConsumption'
  }
  properties: {
    reserved: true
  }
}

resource site 'Microsoft.Web/sites@2025-05-01' = {
  name: functionAppName
  location: location
  // azd deploys the `api` service of azure.yaml to the resource carrying this tag.
  tags: union(tags, {
    'azd-service-name': 'api'
  })
  kind: 'functionapp,linux'
  identity: {
    type: 'SystemAssigned'
  }
  properties: {
    serverFarmId: plan.id
    httpsOnly: true
    siteConfig: {
      minTlsVersion: '1.2'
    }
    // Flex declares runtime, scale, package source and update strategy here instead of in app settings.
    functionAppConfig: {
      deployment: {
        storage: {
          type: 'blobContainer'
          value: '${blobEndpoint}${deploymentContainerName}'
          authentication: {
            type: 'SystemAssignedIdentity'
          }
        }
      }
      scaleAndConcurrency: {
        maximumInstanceCount: maximumInstanceCount
        instanceMemoryMB: instanceMemoryMB
      }
      runtime: {
        name: 'python'
        version: '3.11'
      }
      siteUpdateStrategy: {
        type: siteUpdateStrategy
      }
    }
  }
}

output name string = site.name
output principalId string = site.identity.principalId
output defaultHostName string = site.properties.defaultHostName
