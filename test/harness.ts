// Test harness: a real broker on port 0 in one of two modes, real mqtt.js devices, real services.
//   embedded: history in PGlite (a fresh temp folder), sessions in memory: runs anywhere.
//   services: history in a fresh schema of a real Postgres, sessions and fan-out in a real Redis
//             under a fresh key prefix, so tests run in parallel and again.
// Under CI=true a missing service fails the test; elsewhere the services mode is skipped with a
// line that says how to run it.
import { randomBytes } from 'node:crypto'
import { connect as tcpConnect } from 'node:net'
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import mqtt, { type IClientOptions, type MqttClient } from 'mqtt'
import pg from 'pg'
import { Redis } from 'ioredis'
import type { Test } from 'tap'
import { loadConfig, type Config } from '../broker/config.ts'
import { createLogger } from '../broker/log.ts'
import { startBroker, type Broker } from '../broker/server.ts'
import { addUser, tokenFor } from '../broker/admin/accounts.ts'
import { wmq } from '../schema/generated/chat.js'

export const TEST_DATABASE_URL = process.env.TEST_DATABASE_URL ?? 'postgres://postgres@127.0.0.1:5432/test'
export const TEST_REDIS_URL = process.env.TEST_REDIS_URL ?? 'redis://127.0.0.1:6379'
export const inCI = process.env.CI === 'true'

export type Mode = 'embedded' | 'services'

let reachability: Promise<string | null> | null = null

/** null when Postgres and Redis both answer, else what is missing. */
export function servicesMissing (): Promise<string | null> {
  reachability ??= (async () => {
    const missing: string[] = []
    const client = new pg.Client({ connectionString: TEST_DATABASE_URL, connectionTimeoutMillis: 2000 })
    try {
      await client.connect()
      await client.end()
    } catch (err) {
      missing.push(`Postgres at ${TEST_DATABASE_URL} (${(err as Error).message})`)
    }
    const redis = new Redis(TEST_REDIS_URL, { lazyConnect: true, connectTimeout: 2000, maxRetriesPerRequest: 0, retryStrategy: () => null })
    redis.on('error', () => {})
    try {
      await redis.connect()
      await redis.ping()
    } catch (err) {
      missing.push(`Redis at ${TEST_REDIS_URL} (${(err as Error).message})`)
    } finally {
      redis.disconnect()
    }
    return missing.length ? missing.join(' and ') : null
  })()
  return reachability
}

/**
 * Runs `body` as a subtest in each mode. The services mode needs Postgres and Redis: under CI it
 * fails without them; elsewhere it is skipped with instructions.
 */
export function eachMode (t: Test, name: string, body: (t: Test, mode: Mode) => Promise<void>): void {
  t.test(`${name} [embedded]`, t => body(t, 'embedded'))
  t.test(`${name} [services]`, async t => {
    if (await requireServices(t)) await body(t, 'services')
  })
}

/**
 * Why the Mosquitto the bench compares with (127.0.0.1:1883) cannot be used, or false when it
 * answers. Under CI=true its absence fails `t`; elsewhere the caller skips what needs it.
 */
export async function whyNoMosquitto (t: Test): Promise<string | false> {
  const reachable = await new Promise<boolean>(resolve => {
    const socket = tcpConnect({ host: '127.0.0.1', port: 1883 })
    const done = (ok: boolean) => {
      socket.destroy()
      resolve(ok)
    }
    socket.setTimeout(1_000, () => done(false))
    socket.once('connect', () => done(true))
    socket.once('error', () => done(false))
  })
  if (reachable) return false
  const missing = 'Mosquitto is not reachable at 127.0.0.1:1883'
  if (process.env.CI === 'true') t.fail(`${missing} (required when CI=true)`)
  return missing
}

/**
 * True when Postgres and Redis answer. Otherwise the test fails under CI=true, and elsewhere is
 * skipped with a line that says what is missing and how to run it.
 */
export async function requireServices (t: Test): Promise<boolean> {
  const missing = await servicesMissing()
  if (!missing) return true
  if (inCI) t.fail(`CI=true and a service is missing: ${missing}`)
  else t.plan(0, `skipped: needs ${missing}; start Postgres and Redis (or set TEST_DATABASE_URL / TEST_REDIS_URL) to run it`)
  return false
}

export interface TestBroker {
  broker: Broker
  config: Config
  mode: Mode
  /** Every log line the broker wrote. */
  logs: string[]
  mqttUrl: string
  /** Restarts the broker on the same data (same folder, schema and prefix); ports change. */
  restart (): Promise<void>
  addUser (login: string, password?: string): Promise<number>
  token (login: string, ttlMs?: number): Promise<string>
}

export interface ModeStorage { overrides: Partial<Config>, drop (): Promise<void> }

/** Fresh, isolated storage for one test in `mode`. */
export async function freshStorage (mode: Mode): Promise<ModeStorage> {
  const tag = randomBytes(5).toString('hex')
  if (mode === 'embedded') {
    const dataDir = mkdtempSync(join(tmpdir(), 'wmq-test-'))
    return { overrides: { dataDir }, drop: async () => rmSync(dataDir, { recursive: true, force: true }) }
  }
  const schema = `t_${tag}`
  const admin = new pg.Client({ connectionString: TEST_DATABASE_URL })
  await admin.connect()
  await admin.query(`CREATE SCHEMA ${schema}`)
  await admin.end()
  const url = new URL(TEST_DATABASE_URL)
  url.searchParams.set('options', `-c search_path=${schema}`)
  const redisPrefix = `wmqtest:${tag}:`
  const dataDir = mkdtempSync(join(tmpdir(), 'wmq-test-'))
  return {
    overrides: { databaseUrl: url.toString(), redisUrl: TEST_REDIS_URL, redisPrefix, dataDir },
    drop: async () => {
      rmSync(dataDir, { recursive: true, force: true })
      const db = new pg.Client({ connectionString: TEST_DATABASE_URL })
      await db.connect()
      await db.query(`DROP SCHEMA ${schema} CASCADE`)
      await db.end()
      const redis = new Redis(TEST_REDIS_URL)
      const keys = await redis.keys(`${redisPrefix}*`)
      if (keys.length) await redis.del(...keys)
      redis.disconnect()
    },
  }
}

export function testConfig (overrides: Partial<Config> = {}): Config {
  return {
    ...loadConfig([], {}),
    host: '127.0.0.1',
    mqttPort: 0,
    wsPort: 0,
    httpPort: 0,
    logLevel: 'debug',
    ...overrides,
  }
}

/** A broker for one test, closed and its storage dropped when the test ends. */
export async function startTestBroker (t: Test, mode: Mode, overrides: Partial<Config> = {}): Promise<TestBroker> {
  const storage = await freshStorage(mode)
  const config = testConfig({ ...storage.overrides, ...overrides })
  const logs: string[] = []
  const log = createLogger(config.logLevel, line => {
    logs.push(line)
    if (process.env.TEST_LOG) process.stderr.write(line + '\n')
  })
  const tb: TestBroker = {
    broker: await startBroker(config, log),
    config,
    mode,
    logs,
    get mqttUrl () { return `mqtt://127.0.0.1:${this.broker.ports.MQTT}` },
    async restart () {
      await this.broker.close()
      this.broker = await startBroker(config, log)
    },
    async addUser (login, password = 'correct horse') {
      return (await addUser(this.broker.db, login, password)).id
    },
    async token (login, ttlMs = 3_600_000) {
      return (await tokenFor(this.broker.db, this.broker.tokenSecret, login, ttlMs)).token
    },
  }
  t.teardown(async () => {
    await tb.broker.close()
    await storage.drop()
  })
  return tb
}

export interface Device {
  client: MqttClient
  /** Every Downlink received, with its topic. */
  received: Array<{ topic: string, downlink: wmq.Downlink }>
  /** Every Presence received (topics p/{user}), with its topic. */
  presence: Array<{ topic: string, presence: wmq.Presence }>
  /** Resolves with the first received Downlink (past or future) that matches. */
  next (match: (d: wmq.Downlink, topic: string) => boolean, what?: string): Promise<wmq.Downlink>
  /** Resolves once `condition` holds, checked now and after every arrival (of any kind). */
  until (condition: () => boolean, what: string): Promise<void>
  request (uplink: wmq.IUplink): Promise<void>
  end (): Promise<void>
}

const WAIT_LIMIT_MS = 15_000

/**
 * Connects an mqtt.js client (MQTT 3.1.1, clean=false unless told) and resolves on CONNACK.
 * `listen` runs before the CONNECT leaves: a session's queued packets can arrive in the same read
 * as the CONNACK, before a listener added once connected would see them.
 */
export function connectRaw (url: string, options: IClientOptions, listen?: (client: MqttClient) => void): Promise<MqttClient> {
  return new Promise((resolve, reject) => {
    const client = mqtt.connect(url, { protocolVersion: 4, clean: false, reconnectPeriod: 0, connectTimeout: 10_000, ...options })
    listen?.(client)
    client.once('connect', () => resolve(client))
    client.once('error', err => {
      client.end(true)
      reject(err)
    })
  })
}

export async function connectDevice (url: string, options: IClientOptions): Promise<Device> {
  const received: Device['received'] = []
  const presence: Device['presence'] = []
  const waiters = new Set<() => void>()
  const client = await connectRaw(url, options, client => client.on('message', (topic, payload) => {
    if (topic.startsWith('p/')) presence.push({ topic, presence: wmq.Presence.decode(payload) })
    else received.push({ topic, downlink: wmq.Downlink.decode(payload) })
    for (const wake of waiters) wake()
  }))
  return {
    client,
    received,
    presence,
    next (match, what = 'a matching downlink') {
      return new Promise((resolve, reject) => {
        let seen = 0
        const check = () => {
          for (; seen < received.length; seen++) {
            if (match(received[seen].downlink, received[seen].topic)) {
              cleanup()
              resolve(received[seen].downlink)
              return
            }
          }
        }
        // A limit so a broken broker fails the test instead of hanging it; not a timing assertion.
        const timer = setTimeout(() => { cleanup(); reject(new Error(`no ${what} within ${WAIT_LIMIT_MS} ms`)) }, WAIT_LIMIT_MS)
        const cleanup = () => { clearTimeout(timer); waiters.delete(check) }
        waiters.add(check)
        check()
      })
    },
    until (condition, what) {
      return new Promise((resolve, reject) => {
        const check = () => { if (condition()) { cleanup(); resolve() } }
        const timer = setTimeout(() => { cleanup(); reject(new Error(`${what}: not within ${WAIT_LIMIT_MS} ms`)) }, WAIT_LIMIT_MS)
        const cleanup = () => { clearTimeout(timer); waiters.delete(check) }
        waiters.add(check)
        check()
      })
    },
    request (uplink) {
      return new Promise((resolve, reject) => client.publish('s', Buffer.from(wmq.Uplink.encode(uplink).finish()), { qos: 1 },
        err => err ? reject(err) : resolve()))
    },
    end () {
      // mqtt.js does not call back an end() of a connection the broker already closed.
      if (!client.connected) return new Promise(resolve => client.end(true, {}, () => resolve()))
      return new Promise(resolve => client.end(false, {}, () => resolve()))
    },
  }
}

/** Closes every device at the end of the test. */
export function closeAtEnd (t: Test, ...devices: Array<Device | MqttClient>): void {
  t.teardown(() => Promise.all(devices.map(d => 'client' in d ? d.end() : new Promise<void>(resolve => d.end(true, {}, () => resolve())))).then(() => {}))
}

/** Publishes an event to a user's inbox the way the chat service does, and waits for the broker. */
export { sendToUser, replyTo } from '../broker/chat/reply.ts'
export { wmq }

/** A fresh client_msg_id: 8 random bytes, as the SDK makes them. */
export const newClientMsgId = (): Uint8Array => new Uint8Array(randomBytes(8))

let nextRef = 1

/** Sends a text and resolves with the broker's reply to it (a SendAck or an Error). */
export async function sendText (device: Device, to: { user?: number, group?: number }, text: string,
  clientMsgId = newClientMsgId()): Promise<wmq.Downlink> {
  const ref = nextRef++
  const reply = device.next(d => d.ref === ref, `reply to send ${ref}`)
  await device.request({ ref, send: { clientMsgId, ...to, content: { text } } })
  return reply
}

/** Sends any request and resolves with the reply carrying its ref. */
export async function ask (device: Device, request: Omit<wmq.IUplink, 'ref'>): Promise<wmq.Downlink> {
  const ref = nextRef++
  const reply = device.next(d => d.ref === ref, `reply to request ${ref}`)
  await device.request({ ...request, ref })
  return reply
}

/** The texts of the chat messages a device received, in arrival order. */
export const textsOf = (device: Device): string[] =>
  device.received.filter(r => r.downlink.message).map(r => r.downlink.message!.content?.text ?? '')

/** Connects a device of `login` (clean=false) with a fresh token. */
export async function connectAs (tb: TestBroker, login: string, clientId: string): Promise<Device> {
  return connectDevice(tb.mqttUrl, { clientId, username: login, password: await tb.token(login) })
}

export interface Node {
  child: import('node:child_process').ChildProcess
  ports: { mqtt: number, ws: number, http: number }
  mqttUrl: string
  /** Everything the node wrote to stderr (its log). */
  log (): string
  /** Resolves with the exit code once the process ends. */
  exited: Promise<number | null>
}

/**
 * `npm start` as a child process (node --import tsx broker/main.ts) with these settings on top of
 * ports 0 on 127.0.0.1; resolves once it listens. Killed at the end of the test if still running.
 */
export async function spawnBroker (t: Test, env: Record<string, string>): Promise<Node> {
  const { spawn } = await import('node:child_process')
  const child = spawn(process.execPath, ['--import', 'tsx', 'broker/main.ts'], {
    env: { ...process.env, MQTT_PORT: '0', WS_PORT: '0', HTTP_PORT: '0', HOST: '127.0.0.1', LOG_LEVEL: 'info', ...env },
    stdio: ['ignore', 'ignore', 'pipe'],
  })
  let log = ''
  const exited = new Promise<number | null>(resolve => child.on('exit', code => resolve(code)))
  t.teardown(() => { if (child.exitCode === null) child.kill('SIGKILL') })
  const ports = await new Promise<Node['ports']>((resolve, reject) => {
    child.stderr!.on('data', (chunk: Buffer) => {
      log += chunk.toString()
      const match = /listening: MQTT (\d+), WebSocket (\d+)\/mqtt, HTTP (\d+)/.exec(log)
      if (match) resolve({ mqtt: Number(match[1]), ws: Number(match[2]), http: Number(match[3]) })
    })
    void exited.then(code => reject(new Error(`broker exited (${code}) before listening:\n${log}`)))
  })
  return { child, ports, mqttUrl: `mqtt://127.0.0.1:${ports.mqtt}`, log: () => log, exited }
}

/** Adds users (password `{login}-password`) straight into a Postgres a cluster of nodes shares. */
export async function addUsersAt (databaseUrl: string, logins: string[]): Promise<number[]> {
  const { openPostgres } = await import('../broker/storage/db.ts')
  const db = await openPostgres(databaseUrl)
  try {
    const ids: number[] = []
    for (const login of logins) ids.push((await addUser(db, login, `${login}-password`)).id)
    return ids
  } finally {
    await db.close()
  }
}

/** Runs the admin command in this process; resolves with the lines it printed. */
export async function adminLines (argv: string[], env: NodeJS.ProcessEnv): Promise<string[]> {
  const { runAdmin } = await import('../broker/admin/cli.ts')
  const lines: string[] = []
  await runAdmin(argv, line => lines.push(line), env)
  return lines
}

/** The error the admin command fails with (an Error saying so when it succeeds instead). */
export async function adminFailure (argv: string[], env: NodeJS.ProcessEnv): Promise<Error> {
  try {
    return new Error(`expected a failure, got: ${(await adminLines(argv, env)).join(' | ')}`)
  } catch (err) {
    return err as Error
  }
}
