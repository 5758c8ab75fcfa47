// Every setting of the broker and the admin command, in one table: its environment variable, its
// flag, its default and what it means. The README's settings table is checked against this one
// (test/config.test.ts), so a knob added here without a row there fails the suite.
import { parseArgs } from 'node:util'

type Kind = 'port' | 'string' | 'secret' | 'integer' | 'level' | 'duration' | 'switch'

interface Setting {
  env: string
  flag: string
  kind: Kind
  default: string
  doc: string
}

export const settings = {
  host: { env: 'HOST', flag: 'host', kind: 'string', default: '0.0.0.0', doc: 'address every listener binds to' },
  mqttPort: { env: 'MQTT_PORT', flag: 'mqtt-port', kind: 'port', default: '1883', doc: 'MQTT over TCP; `off` disables it, 0 picks a free port' },
  wsPort: { env: 'WS_PORT', flag: 'ws-port', kind: 'port', default: '8083', doc: 'MQTT over WebSocket, path `/mqtt`' },
  httpPort: { env: 'HTTP_PORT', flag: 'http-port', kind: 'port', default: '8080', doc: 'HTTP: `/healthz`, the admin API under `/api`' },
  mqttsPort: { env: 'MQTTS_PORT', flag: 'mqtts-port', kind: 'port', default: '8883', doc: 'MQTT over TLS; only when TLS_KEY and TLS_CERT are set' },
  wssPort: { env: 'WSS_PORT', flag: 'wss-port', kind: 'port', default: '8084', doc: 'MQTT over secure WebSocket; only when TLS_KEY and TLS_CERT are set' },
  tlsKey: { env: 'TLS_KEY', flag: 'tls-key', kind: 'string', default: '', doc: 'path of the PEM private key for mqtts and wss' },
  tlsCert: { env: 'TLS_CERT', flag: 'tls-cert', kind: 'string', default: '', doc: 'path of the PEM certificate chain for mqtts and wss' },
  dataDir: { env: 'DATA_DIR', flag: 'data-dir', kind: 'string', default: './data', doc: 'where the embedded database (PGlite) and the local admin key live; `memory` keeps nothing on disk' },
  databaseUrl: { env: 'DATABASE_URL', flag: 'database-url', kind: 'secret', default: '', doc: 'a Postgres server for history instead of the embedded database, e.g. `postgres://user@host/db`' },
  redisUrl: { env: 'REDIS_URL', flag: 'redis-url', kind: 'secret', default: '', doc: 'Redis for sessions (aedes-persistence-redis) and fan-out (mqemitter-redis); needed for several nodes' },
  redisPrefix: { env: 'REDIS_PREFIX', flag: 'redis-prefix', kind: 'string', default: 'wmq:', doc: 'prefix of every Redis key and pub/sub channel, so deployments can share a Redis' },
  redisCluster: { env: 'REDIS_CLUSTER', flag: 'redis-cluster', kind: 'switch', default: 'off', doc: '`on`: REDIS_URL names nodes of a Redis Cluster (one or more URLs, comma-separated) and every key is put in the hash slot of `{REDIS_PREFIX}`' },
  adminKey: { env: 'ADMIN_KEY', flag: 'admin-key', kind: 'secret', default: '', doc: 'bearer key of the HTTP admin API; when empty the broker makes one and keeps it in DATA_DIR/admin.key' },
  adminUrl: { env: 'ADMIN_URL', flag: 'admin-url', kind: 'string', default: '', doc: 'admin command only: the broker to send commands to (default: the local broker, when it runs)' },
  tokenSecret: { env: 'TOKEN_SECRET', flag: 'token-secret', kind: 'secret', default: '', doc: 'HMAC key for access tokens; when empty one is made and kept in the database, shared by every node' },
  tokenTtl: { env: 'TOKEN_TTL', flag: 'token-ttl', kind: 'string', default: '30d', doc: 'lifetime of an issued access token (`90s`, `12h`, `30d`)' },
  logLevel: { env: 'LOG_LEVEL', flag: 'log-level', kind: 'level', default: 'info', doc: '`error`, `warn`, `info` or `debug`' },
  authFreeFailures: { env: 'AUTH_FREE_FAILURES', flag: 'auth-free-failures', kind: 'integer', default: '3', doc: 'failed logins of one login before each further attempt is slowed down (an address gets ten times as many)' },
  authMaxDelayMs: { env: 'AUTH_MAX_DELAY_MS', flag: 'auth-max-delay-ms', kind: 'integer', default: '10000', doc: 'the longest a failed-login slow-down delays a CONNACK' },
  maxPayload: { env: 'MAX_PAYLOAD', flag: 'max-payload', kind: 'integer', default: '65536', doc: 'largest uplink request in bytes; larger ones get TOO_LARGE' },
  maxBody: { env: 'MAX_BODY', flag: 'max-body', kind: 'integer', default: '16384', doc: "largest message content in bytes (text, media description with its thumbnail, custom data)" },
  sendBatchMax: { env: 'SEND_BATCH_MAX', flag: 'send-batch-max', kind: 'integer', default: '500', doc: 'most sends stored in one transaction (group commit)' },
  sendBatchIntervalMs: { env: 'SEND_BATCH_INTERVAL_MS', flag: 'send-batch-interval-ms', kind: 'integer', default: '10', doc: 'under load, the shortest time between two group-commit transactions (an idle broker stores a lone send at once); 0: one right after the other' },
  historyPage: { env: 'HISTORY_PAGE', flag: 'history-page', kind: 'integer', default: '20', doc: 'messages in a history page when the device asks for no number' },
  historyPageMax: { env: 'HISTORY_PAGE_MAX', flag: 'history-page-max', kind: 'integer', default: '100', doc: 'most messages in one history or conversation-list page' },
  historyPageBytes: { env: 'HISTORY_PAGE_BYTES', flag: 'history-page-bytes', kind: 'integer', default: '8192', doc: 'a history page stops growing past this many bytes (at least one message), so a 20 kbit/s link is never blocked for long' },
  maxGroupSize: { env: 'MAX_GROUP_SIZE', flag: 'max-group-size', kind: 'integer', default: '500', doc: 'most members of a group' },
  recallWindow: { env: 'RECALL_WINDOW', flag: 'recall-window', kind: 'duration', default: '2m', doc: 'how long after sending a sender may recall a message' },
  groupReceipts: { env: 'GROUP_RECEIPTS', flag: 'group-receipts', kind: 'switch', default: 'on', doc: "`on`: group members get each other's read receipts; `off`: only the reader's own devices do" },
  typingInterval: { env: 'TYPING_INTERVAL', flag: 'typing-interval', kind: 'duration', default: '2s', doc: 'a device sends at most one typing event per conversation this often; more are dropped' },
  offlineQueueMax: { env: 'OFFLINE_QUEUE_MAX', flag: 'offline-queue-max', kind: 'integer', default: '1000', doc: 'most messages queued for a device that is away; older ones are left to history sync' },
  offlineQueueTtl: { env: 'OFFLINE_QUEUE_TTL', flag: 'offline-queue-ttl', kind: 'duration', default: '7d', doc: 'how long a message waits in the queue of a device that is away; then history sync covers it' },
  searchLimit: { env: 'SEARCH_LIMIT', flag: 'search-limit', kind: 'integer', default: '20', doc: 'most users one search returns' },
  searchRate: { env: 'SEARCH_RATE', flag: 'search-rate', kind: 'integer', default: '30', doc: 'most user searches per device per minute (a burst of this many, then one every 60/SEARCH_RATE s); more get RATE_LIMITED' },
} as const satisfies Record<string, Setting>

export type SettingName = keyof typeof settings
export type LogLevel = 'error' | 'warn' | 'info' | 'debug'

/** A listener's port: a number (0 = any free port) or null when switched off. */
export type Port = number | null

export interface Config {
  host: string
  mqttPort: Port
  wsPort: Port
  httpPort: Port
  mqttsPort: Port
  wssPort: Port
  tlsKey: string
  tlsCert: string
  dataDir: string
  databaseUrl: string
  redisUrl: string
  redisPrefix: string
  redisCluster: boolean
  adminKey: string
  adminUrl: string
  tokenSecret: string
  tokenTtlMs: number
  logLevel: LogLevel
  authFreeFailures: number
  authMaxDelayMs: number
  maxPayload: number
  maxBody: number
  sendBatchMax: number
  sendBatchIntervalMs: number
  historyPage: number
  historyPageMax: number
  historyPageBytes: number
  maxGroupSize: number
  recallWindowMs: number
  groupReceipts: boolean
  typingIntervalMs: number
  offlineQueueMax: number
  offlineQueueTtlMs: number
  searchLimit: number
  searchRate: number
}

/** A setting that cannot be parsed. */
export class ConfigError extends Error {}

/** A setting that parses but names something unusable: an unreachable server, a held folder. */
export class StartError extends Error {}

const levels: readonly LogLevel[] = ['error', 'warn', 'info', 'debug']

function parsePort (name: SettingName, value: string): Port {
  if (value === 'off') return null
  const port = Number(value)
  if (!Number.isInteger(port) || port < 0 || port > 65535) {
    throw new ConfigError(`${settings[name].env} must be a port from 0 to 65535 or "off", not "${value}"`)
  }
  return port
}

function parseInteger (name: SettingName, value: string): number {
  const n = Number(value)
  if (!Number.isInteger(n) || n < 0) throw new ConfigError(`${settings[name].env} must be a whole number, not "${value}"`)
  return n
}

function parseSwitch (name: SettingName, value: string): boolean {
  if (value === 'on' || value === 'off') return value === 'on'
  throw new ConfigError(`${settings[name].env} must be "on" or "off", not "${value}"`)
}

/** "90s", "12h", "30d", or plain milliseconds. */
export function parseDuration (value: string): number {
  const match = /^(\d+)(ms|s|m|h|d)?$/.exec(value.trim())
  if (!match) throw new ConfigError(`"${value}" is not a duration like 90s, 15m, 12h or 30d`)
  const units: Record<string, number> = { ms: 1, s: 1000, m: 60_000, h: 3_600_000, d: 86_400_000 }
  const unit = units[match[2] ?? 'ms']
  return Number(match[1]) * unit
}

/**
 * The configuration from (in order of precedence) command-line flags, the environment and the
 * defaults. Unknown flags are refused so a typo does not silently fall back to a default.
 */
export function loadConfig (argv: string[] = [], env: NodeJS.ProcessEnv = process.env): Config {
  const options = Object.fromEntries(
    Object.values(settings).map(s => [s.flag, { type: 'string' as const }]))
  let flags: Record<string, string | boolean | undefined>
  try {
    flags = parseArgs({ args: argv, options, strict: true, allowPositionals: false }).values
  } catch (err) {
    throw new ConfigError(`${(err as Error).message}: the settings and their flags are listed in README.md (Settings)`)
  }
  const raw = (name: SettingName): string => {
    const s: Setting = settings[name]
    const flag = flags[s.flag]
    if (typeof flag === 'string') return flag
    return env[s.env] ?? s.default
  }
  const logLevel = raw('logLevel') as LogLevel
  if (!levels.includes(logLevel)) throw new ConfigError(`LOG_LEVEL must be one of ${levels.join(', ')}, not "${logLevel}"`)
  const config: Config = {
    host: raw('host'),
    mqttPort: parsePort('mqttPort', raw('mqttPort')),
    wsPort: parsePort('wsPort', raw('wsPort')),
    httpPort: parsePort('httpPort', raw('httpPort')),
    mqttsPort: parsePort('mqttsPort', raw('mqttsPort')),
    wssPort: parsePort('wssPort', raw('wssPort')),
    tlsKey: raw('tlsKey'),
    tlsCert: raw('tlsCert'),
    dataDir: raw('dataDir'),
    databaseUrl: raw('databaseUrl'),
    redisUrl: raw('redisUrl'),
    redisPrefix: raw('redisPrefix'),
    redisCluster: parseSwitch('redisCluster', raw('redisCluster')),
    adminKey: raw('adminKey'),
    adminUrl: raw('adminUrl'),
    tokenSecret: raw('tokenSecret'),
    tokenTtlMs: parseDuration(raw('tokenTtl')),
    logLevel,
    authFreeFailures: parseInteger('authFreeFailures', raw('authFreeFailures')),
    authMaxDelayMs: parseInteger('authMaxDelayMs', raw('authMaxDelayMs')),
    maxPayload: parseInteger('maxPayload', raw('maxPayload')),
    maxBody: parseInteger('maxBody', raw('maxBody')),
    sendBatchMax: Math.max(1, parseInteger('sendBatchMax', raw('sendBatchMax'))),
    sendBatchIntervalMs: parseInteger('sendBatchIntervalMs', raw('sendBatchIntervalMs')),
    historyPage: Math.max(1, parseInteger('historyPage', raw('historyPage'))),
    historyPageMax: Math.max(1, parseInteger('historyPageMax', raw('historyPageMax'))),
    historyPageBytes: parseInteger('historyPageBytes', raw('historyPageBytes')),
    maxGroupSize: Math.max(2, parseInteger('maxGroupSize', raw('maxGroupSize'))),
    recallWindowMs: parseDuration(raw('recallWindow')),
    groupReceipts: parseSwitch('groupReceipts', raw('groupReceipts')),
    typingIntervalMs: parseDuration(raw('typingInterval')),
    offlineQueueMax: Math.max(1, parseInteger('offlineQueueMax', raw('offlineQueueMax'))),
    offlineQueueTtlMs: parseDuration(raw('offlineQueueTtl')),
    searchLimit: Math.max(1, parseInteger('searchLimit', raw('searchLimit'))),
    searchRate: Math.max(1, parseInteger('searchRate', raw('searchRate'))),
  }
  if (Boolean(config.tlsKey) !== Boolean(config.tlsCert)) {
    throw new ConfigError('TLS_KEY and TLS_CERT go together: set both or neither')
  }
  // The prefix is the keys' hash tag on a Redis Cluster: empty, or holding a brace, it would not be one.
  if (config.redisCluster && !/^[^{}]+$/.test(config.redisPrefix)) {
    throw new ConfigError(`REDIS_CLUSTER=on needs a REDIS_PREFIX without braces to use as the hash tag, not "${config.redisPrefix}"`)
  }
  return config
}
