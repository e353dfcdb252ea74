// Log alerts on the connector's run summaries (`run.summary {json}` traces in Application Insights) and on the
// opt-out webhook queue's poison queue (Storage queue logs in Log Analytics), plus an optional e-mail action group.
// The queries live in infra/queries/*.kql; __PLACEHOLDERS__ in them are filled in here.

param namePrefix string
param location string
param tags object
param appInsightsName string
param logAnalyticsName string
param storageAccountName string

@description('Poison queue the Functions host moves failed webhook messages to.')
param poisonQueueName string

@description('E-mail address to notify; empty: no action group, the alerts show in the portal only.')
param emailAddress string = ''

@minValue(1)
param failedRunsInARow int

@minValue(0)
param deadLettersPerHour int

@minValue(5)
param cursorAgeMinutes int

resource appInsights 'Microsoft.Insights/components@2020-02-02' existing = {
  name: appInsightsName
}

resource workspace 'Microsoft.OperationalInsights/workspaces@2025-02-01' existing = {
  name: logAnalyticsName
}

resource storage 'Microsoft.Storage/storageAccounts@2025-06-01' existing = {
  name: storageAccountName
}

resource queueService 'Microsoft.Storage/storageAccounts/queueServices@2025-06-01' existing = {
  parent: storage
  name: 'default'
}

// Queue writes (PutMessage, ...) into the workspace: the only record of a message reaching the poison queue, since
// the queue metrics are per account, not per queue.
resource queueWriteLogs 'Microsoft.Insights/diagnosticSettings@2021-05-01-preview' = {
  name: 'queue-writes'
  scope: queueService
  properties: {
    workspaceId: workspace.id
    logs: [
      {
        category: 'StorageWrite'
        enabled: true
      }
    ]
  }
}

resource actionGroup 'Microsoft.Insights/actionGroups@2023-01-01' = if (!empty(emailAddress)) {
  name: '${namePrefix}-ops'
  location: 'global'
  tags: tags
  properties: {
    groupShortName: 'connector'
    enabled: true
    emailReceivers: [
      {
        name: 'operator'
        emailAddress: emailAddress
        useCommonAlertSchema: true
      }
    ]
  }
}

var actionGroups = empty(emailAddress) ? [] : [actionGroup.id]
var flowDimensions = [
  {
    name: 'flow'
    operator: 'Include'
    values: [
      '*'
    ]
  }
  {
    name: 'scope'
    operator: 'Include'
    values: [
      '*'
    ]
  }
]

resource failedRuns 'Microsoft.Insights/scheduledQueryRules@2023-12-01' = {
  name: '${namePrefix}-failed-runs'
  location: location
  tags: tags
  kind: 'LogAlert'
  properties: {
    displayName: 'Connector: a flow failed ${failedRunsInARow} runs in a row'
    description: 'The last ${failedRunsInARow} runs of one flow and scope all ended failed; the run summary reason says why.'
    severity: 1
    enabled: true
    scopes: [
      appInsights.id
    ]
    evaluationFrequency: 'PT15M'
    windowSize: 'P1D'
    criteria: {
      allOf: [
        {
          query: replace(loadTextContent('../queries/failed-runs.kql'), '__RUNS__', string(failedRunsInARow))
          timeAggregation: 'Count'
          operator: 'GreaterThan'
          threshold: 0
          dimensions: flowDimensions
          failingPeriods: {
            numberOfEvaluationPeriods: 1
            minFailingPeriodsToAlert: 1
          }
        }
      ]
    }
    autoMitigate: true
    actions: {
      actionGroups: actionGroups
    }
  }
}

resource deadLetters 'Microsoft.Insights/scheduledQueryRules@2023-12-01' = {
  name: '${namePrefix}-dead-letters'
  location: location
  tags: tags
  kind: 'LogAlert'
  properties: {
    displayName: 'Connector: dead letters growing'
    description: 'More than ${deadLettersPerHour} records of one flow and scope went to the dead-letter table in an hour.'
    severity: 2
    enabled: true
    scopes: [
      appInsights.id
    ]
    evaluationFrequency: 'PT15M'
    windowSize: 'PT1H'
    criteria: {
      allOf: [
        {
          query: loadTextContent('../queries/dead-letters.kql')
          timeAggregation: 'Total'
          metricMeasureColumn: 'dead_lettered'
          operator: 'GreaterThan'
          threshold: deadLettersPerHour
          dimensions: flowDimensions
          failingPeriods: {
            numberOfEvaluationPeriods: 1
            minFailingPeriodsToAlert: 1
          }
        }
      ]
    }
    autoMitigate: true
    actions: {
      actionGroups: actionGroups
    }
  }
}

resource cursorAge 'Microsoft.Insights/scheduledQueryRules@2023-12-01' = {
  name: '${namePrefix}-cursor-age'
  location: location
  tags: tags
  kind: 'LogAlert'
  properties: {
    displayName: 'Connector: a flow is more than ${cursorAgeMinutes} minutes behind'
    description: 'The newest run of one flow and scope reports a cursor, or ran, more than ${cursorAgeMinutes} minutes ago.'
    severity: 2
    enabled: true
    scopes: [
      appInsights.id
    ]
    evaluationFrequency: 'PT15M'
    windowSize: 'P2D'
    criteria: {
      allOf: [
        {
          query: replace(loadTextContent('../queries/cursor-age.kql'), '__MINUTES__', string(cursorAgeMinutes))
          timeAggregation: 'Count'
          operator: 'GreaterThan'
          threshold: 0
          dimensions: flowDimensions
          failingPeriods: {
            numberOfEvaluationPeriods: 1
            minFailingPeriodsToAlert: 1
          }
        }
      ]
    }
    autoMitigate: true
    actions: {
      actionGroups: actionGroups
    }
  }
}

resource poisonQueue 'Microsoft.Insights/scheduledQueryRules@2023-12-01' = {
  name: '${namePrefix}-poison-queue'
  location: location
  tags: tags
  kind: 'LogAlert'
  dependsOn: [
    queueWriteLogs
  ]
  properties: {
    displayName: 'Connector: webhook messages moved to ${poisonQueueName}'
    description: 'The opt-out webhook receiver gave up on at least one message; it waits in ${poisonQueueName}.'
    severity: 1
    enabled: true
    scopes: [
      workspace.id
    ]
    evaluationFrequency: 'PT15M'
    windowSize: 'PT1H'
    criteria: {
      allOf: [
        {
          query: replace(loadTextContent('../queries/poison-queue.kql'), '__QUEUE__', poisonQueueName)
          timeAggregation: 'Count'
          operator: 'GreaterThan'
          threshold: 0
          failingPeriods: {
            numberOfEvaluationPeriods: 1
            minFailingPeriodsToAlert: 1
          }
        }
      ]
    }
    autoMitigate: false
    actions: {
      actionGroups: actionGroups
    }
  }
}

output alertNames array = [
  failedRuns.name
  deadLetters.name
  cursorAge.name
  poisonQueue.name
]
