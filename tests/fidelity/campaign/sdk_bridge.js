'use strict'
// Adobe's @adobe/aio-lib-campaign-standard driven from pytest: one JSON request per stdin line, one JSON answer
// per stdout line. Requests:
//   {"id": 1, "op": "init", "client": "main", "tenantId": "...", "apiKey": "...", "accessToken": "..."}
//   {"id": 2, "op": "call", "client": "main", "method": "getProfile", "args": ["@..."]}
// Answers: {"id", "ok": true, "status", "body", "url"} or {"id", "ok": false, "code", "status", "message"}.
//
// Where the SDK sends its requests: its bundled OpenAPI spec (spec/api.json) names one server,
// https://mc.adobe.io/{ORGANIZATION}/campaign, and the SDK offers no option to change it. This process changes
// that server in its own loaded copy of the spec, before the SDK reads it, to the sandbox given in
// CAMPAIGN_SANDBOX_ROOT (loopback only). Nothing else is touched: TLS checks stay as they are for every host.

const readline = require('readline')

// Answers own stdout; whatever else writes there (the SDK's logger warns on deprecated calls) goes to stderr.
const answer = process.stdout.write.bind(process.stdout)
process.stdout.write = process.stderr.write.bind(process.stderr)

const repo = process.env.REPO_ROOT || process.cwd()
const sandboxRoot = process.env.CAMPAIGN_SANDBOX_ROOT || ''
if (!/^http:\/\/(127\.0\.0\.1|localhost):\d+$/.test(sandboxRoot)) {
  process.stderr.write(`CAMPAIGN_SANDBOX_ROOT must be http://127.0.0.1:<port>, got ${JSON.stringify(sandboxRoot)}\n`)
  process.exit(2)
}
const sdkPath = require.resolve('@adobe/aio-lib-campaign-standard', { paths: [repo] })
const spec = require(require.resolve('@adobe/aio-lib-campaign-standard/spec/api.json', { paths: [repo] }))
spec.servers[0].url = `${sandboxRoot}/{ORGANIZATION}/campaign`
const sdk = require(sdkPath)
const version = require(require.resolve('@adobe/aio-lib-campaign-standard/package.json', { paths: [repo] })).version

const clients = {}

function answerOf (result) {
  // Swagger responses carry status/url/body; triggerSignalActivity and getGDPRDataFile resolve plain objects.
  if (result && typeof result === 'object' && 'status' in result && ('body' in result || 'text' in result)) {
    return { ok: true, status: result.status, body: result.body === undefined ? result.text : result.body, url: result.url }
  }
  return { ok: true, status: null, body: result, url: null }
}

function errorOf (error) {
  const message = String((error && error.message) || error)
  const status = /\] (\d{3}) - /.exec(message)
  return { ok: false, code: (error && error.code) || null, status: status ? Number(status[1]) : null, message }
}

async function handle (request) {
  if (request.op === 'hello') {
    return { ok: true, body: { version, node: process.version } }
  }
  if (request.op === 'methods') {
    const client = await sdk.init('probe', 'probe', 'probe')
    const names = Object.getOwnPropertyNames(Object.getPrototypeOf(client))
    return { ok: true, body: names.filter(n => n !== 'constructor' && !n.startsWith('_')).sort() }
  }
  if (request.op === 'init') {
    clients[request.client] = await sdk.init(request.tenantId, request.apiKey, request.accessToken)
    return { ok: true, body: { tenantId: clients[request.client].tenantId } }
  }
  if (request.op === 'call') {
    const client = clients[request.client]
    if (!client) throw new Error(`no client named ${request.client}`)
    if (typeof client[request.method] !== 'function' || request.method.startsWith('_')) {
      throw new Error(`the SDK has no method ${request.method}`)
    }
    return answerOf(await client[request.method](...(request.args || [])))
  }
  throw new Error(`unknown op ${request.op}`)
}

const lines = readline.createInterface({ input: process.stdin })
lines.on('line', line => {
  let request
  try {
    request = JSON.parse(line)
  } catch (error) {
    answer(JSON.stringify({ id: null, ...errorOf(error) }) + '\n')
    return
  }
  handle(request)
    .catch(errorOf)
    .then(reply => answer(JSON.stringify({ id: request.id, ...reply }) + '\n'))
})
