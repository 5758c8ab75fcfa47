// What a run measures: this broker (weakmq) started for the run, one node or several sharing one
// database and one Redis prefix, or Mosquitto, the plain MQTT reference already running on
// 127.0.0.1:1883. A target hands out device accounts and their addresses, names the processes doing
// its work (for CPU and memory), and cleans up after itself: weakmq's database, Redis keys and
// processes; Mosquitto's persistent sessions.
import { fork, type ChildProcess } from 'node:child_process'
import { randomBytes } from 'node:crypto'
import { once } from 'node:events'
import { mkdtempSync, readFileSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import mqtt from 'mqtt'
import pg from 'pg'
import { Redis } from 'ioredis'
import { issueToken } from '../broker/auth/tokens.ts'
import { loadConfig, type Config } from '../broker/config.ts'
import { createLogger } from '../broker/log.ts'
import { startBroker, type Broker } from '../broker/server.ts'
import type { Queryable } from '../broker/storage/db.ts'
import type { ChildReply, ChildRequest, ChildStats } from './broker-child.ts'
import { processesWhere, rssBytes, type LoopDelay } from './system.ts'

export const BENCH_DATABASE_URL = process.env.BENCH_DATABASE_URL ?? process.env.TEST_DATABASE_URL ?? 'postgres://postgres@127.0.0.1:5432/test'
export const BENCH_REDIS_URL = process.env.BENCH_REDIS_URL ?? process.env.TEST_REDIS_URL ?? 'redis://127.0.0.1:6379'
export const MOSQUITTO_URL = process.env.BENCH_MOSQUITTO_URL ?? 'mqtt://127.0.0.1:1883'

/** One simulated device's identity on a target. */
export interface Account {
  index: number
  /** weakmq: the user id; plain MQTT: the number in the user's topic. */
  user: number
  clientId: string
  login?: string
  token?: string
}

export interface Target {
  readonly kind: 'weakmq' | 'plain'
  readonly name: string
  /** Broker nodes the devices are spread over: 1, or more for weakmq started with several. */
  readonly nodes: number
  /**
   * Where device `index` connects. weakmq's nodes take the devices in turn (device i on node
   * i % N), so the two devices of a pair (2k, 2k+1) and consecutive group members are on different
   * nodes, and their messages cross through Redis.
   */
  addressOf(index: number): { host: string; port: number }
  /** Accounts for devices 0..n-1, one user each. */
  accounts(n: number): Promise<Account[]>
  /** Process ids by role, for the CPU meter; every weakmq node is a 'broker', so their CPU adds up. */
  processes(): Promise<Record<string, number[]>>
  /** Resident memory of the broker in bytes (weakmq: summed over its nodes). */
  rss(): Promise<number | null>
  /**
   * Heap in use by the broker in bytes: V8's heapUsed for weakmq (summed over its nodes); for
   * Mosquitto its own count ($SYS/broker/heap/current, fresh: published after the call, so up to
   * sys_interval, 10 s).
   * Unlike RSS it falls when memory is freed, so before/after compares across runs.
   */
  heap(): Promise<number | null>
  /**
   * How late the broker's event loop ran since the last call (the worst node's), or null where it
   * is not measured: Mosquitto, and weakmq in this process (the generator's loop is its loop).
   */
  loopDelay(): Promise<LoopDelay | null>
  /** Transactions committed so far in the target's database (weakmq on Postgres only). */
  commits(): Promise<number | null>
  describe(): Record<string, string>
  close(): Promise<void>
}

export interface WeakmqOptions {
  /** History: a fresh database on the Postgres server, or an in-memory PGlite (tests). */
  history: 'postgres' | 'pglite'
  sessions: 'memory' | 'redis'
  /** The broker in its own process (the default for measurements) or in this one (tests). */
  process: 'child' | 'inprocess'
  /** Broker nodes on the one database and Redis prefix (default 1); more than one needs Redis sessions. */
  nodes?: number
  overrides?: Partial<Config>
}

const DEVICE_ID_BASE = 1000
const TOKEN_TTL_MS = 24 * 3600_000

/** Users {prefix}1..{prefix}n in one statement, in index order. */
async function insertUsers(db: Queryable, n: number, prefix: string): Promise<Array<{ id: number; login: string }>> {
  const rows = await db.query<{ id: number; login: string }>(
    'INSERT INTO users (login) SELECT $2 || g FROM generate_series(1, $1::int) g RETURNING id, login', [n, prefix])
  const number = (login: string) => Number(login.slice(prefix.length))
  return rows.map((row) => ({ id: Number(row.id), login: row.login })).sort((a, b) => number(a.login) - number(b.login))
}

function pgQueryable(client: pg.Client): Queryable {
  return {
    query: async (sql, params) => (await client.query(sql, params)).rows,
    exec: async (sql) => { await client.query(sql) },
  }
}

/**
 * The broker's defaults, except the group commit's two settings, which a run may vary as for the
 * broker itself (`SEND_BATCH_INTERVAL_MS=2 npm run bench -- throughput`); describe() records which ran.
 */
function baseConfig(): Config {
  return {
    ...loadConfig([], { SEND_BATCH_MAX: process.env.SEND_BATCH_MAX, SEND_BATCH_INTERVAL_MS: process.env.SEND_BATCH_INTERVAL_MS }),
    host: '127.0.0.1',
    mqttPort: 0,
    wsPort: null,
    httpPort: null,
    logLevel: 'warn',
    adminKey: randomBytes(18).toString('base64url'),
    tokenSecret: randomBytes(24).toString('base64url'),
  }
}

/**
 * The Node flags `npm start` gives the broker (package.json), so the bench measures the broker as
 * it is run. A young generation of 64 MB semi-spaces instead of V8's 16: the state of a send lives
 * for its commit (tens of ms), and with small semi-spaces much of it survived two scavenges and
 * was promoted, to be collected again by the old generation's collector. In seven alternating
 * pairs of runs the sustained rate rose from 9,287 to 10,189 msg/s (mean; higher in all seven) and
 * the broker's CPU at 5,000 msg/s fell from 77.7% to 73.9% of a core (BENCHMARKS.md, eleventh
 * series), for about 75 MB more memory under load.
 */
export const BROKER_NODE_FLAGS = ['--max-semi-space-size=64']

function startChild(config: Config): Promise<{ child: ChildProcess; ports: Record<string, number> }> {
  const file = fileURLToPath(new URL('./broker-child.ts', import.meta.url))
  // BENCH_BROKER_NODE_ARGS adds Node flags to the broker process, e.g. `--cpu-prof --cpu-prof-dir=/tmp/prof`;
  // a flag given there again wins over the one before it.
  const extra = (process.env.BENCH_BROKER_NODE_ARGS ?? '').split(' ').filter(Boolean)
  const child = fork(file, [], { execArgv: ['--import', 'tsx', ...BROKER_NODE_FLAGS, ...extra], stdio: ['ignore', 'inherit', 'inherit', 'ipc'] })
  return new Promise((resolve, reject) => {
    const onExit = (code: number | null) => reject(new Error(`the broker process exited (${code}) before it was ready`))
    child.once('exit', onExit)
    child.once('message', (reply: ChildReply) => {
      child.off('exit', onExit)
      if (reply.type === 'ready') resolve({ child, ports: reply.ports })
      else {
        child.kill()
        reject(new Error(`the broker did not start: ${reply.type === 'failed' ? reply.error : reply.type}`))
      }
    })
    child.send({ type: 'start', config } satisfies ChildRequest)
  })
}

function askChild(child: ChildProcess, request: ChildRequest, expect: ChildReply['type'], limitMs = 10_000): Promise<ChildReply | null> {
  if (!child.connected) return Promise.resolve(null)
  return new Promise((resolve) => {
    const timer = setTimeout(() => { child.off('message', onMessage); resolve(null) }, limitMs)
    const onMessage = (reply: ChildReply) => {
      if (reply.type !== expect) return
      clearTimeout(timer)
      child.off('message', onMessage)
      resolve(reply)
    }
    child.on('message', onMessage)
    child.send(request)
  })
}

/** A total, or null when any part is unknown. */
function sumOrNull(values: Array<number | null>): number | null {
  return values.some((value) => value === null) ? null : values.reduce<number>((a, b) => a + (b ?? 0), 0)
}

/**
 * weakmq on a fresh database (and Redis prefix), in child processes or in this one. Several nodes
 * share the database and the Redis prefix, as a deployment's nodes do: sessions and fan-out go
 * through Redis, so a message between two nodes crosses it.
 */
export async function startWeakmq(options: WeakmqOptions): Promise<Target> {
  const nodes = options.nodes ?? 1
  if (!Number.isInteger(nodes) || nodes < 1) throw new Error(`nodes must be a whole number >= 1, not ${nodes}`)
  if (nodes > 1 && (options.sessions !== 'redis' || options.history !== 'postgres')) {
    throw new Error('several weakmq nodes need Redis sessions and the Postgres server (they share them)')
  }
  const tag = randomBytes(4).toString('hex')
  const config = baseConfig()
  const cleanup: Array<() => Promise<void>> = []
  // Every step runs, and one that fails says so: a database or Redis keys left behind must be seen.
  const undo = async () => {
    for (const step of cleanup.reverse()) {
      await step().catch((err: Error) => process.stderr.write(`bench: cleanup of the weakmq target failed: ${err.message}\n`))
    }
  }
  let database = ''
  let admin: pg.Client | null = null
  try {
    if (options.history === 'postgres') {
      database = `bench_${tag}`
      admin = new pg.Client({ connectionString: BENCH_DATABASE_URL })
      await admin.connect()
      await admin.query(`CREATE DATABASE ${database}`)
      const url = new URL(BENCH_DATABASE_URL)
      url.pathname = `/${database}`
      config.databaseUrl = url.toString()
      const statsClient = admin
      statsClient.on('error', () => {}) // a lost stats connection only costs the commit counts
      cleanup.push(async () => {
        await statsClient.end().catch(() => {})
        // A connection of its own for the drop, so it does not depend on one open for minutes.
        const dropper = new pg.Client({ connectionString: BENCH_DATABASE_URL })
        await dropper.connect()
        try {
          await dropper.query(`DROP DATABASE IF EXISTS ${database} WITH (FORCE)`)
        } finally {
          await dropper.end()
        }
      })
    } else {
      config.dataDir = 'memory'
    }
    if (options.sessions === 'redis') {
      config.redisUrl = BENCH_REDIS_URL
      config.redisPrefix = `wmqbench:${tag}:`
      cleanup.push(async () => {
        const redis = new Redis(BENCH_REDIS_URL)
        let cursor = '0'
        do {
          const [next, keys] = await redis.scan(cursor, 'MATCH', `${config.redisPrefix}*`, 'COUNT', 1000)
          cursor = next
          if (keys.length) await redis.del(...keys)
        } while (cursor !== '0')
        redis.disconnect()
      })
    }
    if (config.databaseUrl === '' && config.dataDir !== 'memory') {
      const dir = mkdtempSync(join(tmpdir(), 'wmq-bench-'))
      config.dataDir = dir
      cleanup.push(async () => rmSync(dir, { recursive: true, force: true }))
    }
    Object.assign(config, options.overrides ?? {})

    // The nodes start one after another; each one started is in `cleanup` before the next begins.
    const ports: number[] = []
    let brokerPids: number[]
    let db: Queryable
    let rss: () => Promise<number | null>
    let heap: () => Promise<number | null>
    let loopDelay: () => Promise<LoopDelay | null> = async () => null
    if (options.process === 'child') {
      const children: ChildProcess[] = []
      for (let node = 0; node < nodes; node++) {
        const { child, ports: childPorts } = await startChild(config)
        cleanup.push(async () => {
          const exited = once(child, 'exit')
          if (!await askChild(child, { type: 'close' }, 'closed', 20_000)) child.kill('SIGKILL')
          await Promise.race([exited, new Promise((resolve) => setTimeout(resolve, 5000))])
        })
        children.push(child)
        ports.push(childPorts.MQTT)
      }
      brokerPids = children.map((child) => child.pid!)
      const client = new pg.Client({ connectionString: config.databaseUrl })
      await client.connect()
      cleanup.push(() => client.end())
      db = pgQueryable(client)
      const statsOf = (child: ChildProcess) => askChild(child, { type: 'stats' }, 'stats') as Promise<ChildStats | null>
      rss = async () => sumOrNull(await Promise.all(children.map(async (child) => (await statsOf(child))?.rss ?? rssBytes(child.pid!))))
      heap = async () => sumOrNull(await Promise.all(children.map(async (child) => (await statsOf(child))?.heapUsed ?? null)))
      loopDelay = async () => {
        const delays = await Promise.all(children.map((child) => askChild(child, { type: 'loop' }, 'loop') as Promise<(LoopDelay & { type: 'loop' }) | null>))
        if (delays.some((delay) => delay === null)) return null
        return { p99: Math.max(...delays.map((d) => d!.p99)), max: Math.max(...delays.map((d) => d!.max)) }
      }
    } else {
      const brokers: Broker[] = []
      for (let node = 0; node < nodes; node++) {
        const broker = await startBroker(config, createLogger(config.logLevel))
        cleanup.push(() => broker.close())
        brokers.push(broker)
        ports.push(broker.ports.MQTT)
      }
      db = brokers[0].db
      // In-process nodes share this process: its memory is theirs together.
      brokerPids = [process.pid]
      rss = async () => process.memoryUsage().rss
      heap = async () => process.memoryUsage().heapUsed
    }
    const secret = Buffer.from(config.tokenSecret, 'utf8')
    // The server's own writers work for every database, ours included: counted with our backends.
    const postgresWriters = ['walwriter', 'checkpointer', 'background writer'].flatMap((name) => processesWhere((cmdline) => cmdline.startsWith('postgres: ') && cmdline.includes(name)))
    const redisServer = options.sessions === 'redis' ? processesWhere((cmdline) => cmdline.startsWith('redis-server')) : []
    let provisioned = 0
    let devices = 0
    return {
      kind: 'weakmq',
      name: 'weakmq',
      nodes,
      addressOf: (index) => ({ host: '127.0.0.1', port: ports[index % nodes] }),
      async accounts(n) {
        // Each call makes new users and devices: device ids follow on from the last call's.
        const users = await insertUsers(db, n, `b${tag}${provisioned}-`)
        const firstDevice = DEVICE_ID_BASE + devices
        provisioned++
        devices += n
        const expires = Date.now() + TOKEN_TTL_MS
        return users.map((user, index) => ({
          index,
          user: user.id,
          clientId: (firstDevice + index).toString(36),
          login: user.login,
          token: issueToken(secret, user.id, expires),
        }))
      },
      async processes() {
        const roles: Record<string, number[]> = { broker: brokerPids }
        if (admin && database) {
          const backends = await admin.query<{ pid: number }>('SELECT pid FROM pg_stat_activity WHERE datname = $1', [database])
          roles.postgres = [...backends.rows.map((row) => row.pid), ...postgresWriters]
        }
        if (options.sessions === 'redis') roles.redis = redisServer
        return roles
      },
      rss,
      heap,
      loopDelay,
      async commits() {
        if (!admin || !database) return null
        const rows = await admin.query<{ commits: string }>('SELECT xact_commit AS commits FROM pg_stat_database WHERE datname = $1', [database])
        return rows.rows[0] ? Number(rows.rows[0].commits) : null
      },
      describe: () => ({
        broker: nodes === 1
          ? `weakmq (${options.process === 'child' ? 'own process' : 'in the generator process'})`
          : `weakmq, ${nodes} nodes (${options.process === 'child' ? 'a process each' : 'in the generator process'}; device i on node i % ${nodes}; CPU and memory summed)`,
        nodes: String(nodes),
        history: options.history === 'postgres' ? `Postgres server, fresh database${nodes > 1 ? ' shared by the nodes' : ''}` : 'PGlite in memory',
        sessions: options.sessions === 'redis' ? `Redis (aedes-persistence-redis, mqemitter-redis)${nodes > 1 ? ', one prefix shared by the nodes' : ''}` : 'memory',
        sendBatchMax: String(config.sendBatchMax),
        sendBatchIntervalMs: String(config.sendBatchIntervalMs),
        logLevel: config.logLevel,
      }),
      close: undo,
    }
  } catch (err) {
    await undo()
    throw err
  }
}

function mosquittoPid(): number | null {
  try {
    return Number(readFileSync('/run/mosquitto/mosquitto.pid', 'utf8').trim()) || null
  } catch {
    return processesWhere((cmdline) => /^(\S*\/)?mosquitto\s/.test(cmdline))[0] ?? null
  }
}

/** The next $SYS/broker/heap/current Mosquitto publishes (not the retained one), or null within 15 s. */
function mosquittoHeap(url: string): Promise<number | null> {
  return new Promise((resolve) => {
    const client = mqtt.connect(url, { clientId: `bheap${randomBytes(4).toString('hex')}`, clean: true, protocolVersion: 4, reconnectPeriod: 0 })
    const done = (value: number | null) => {
      clearTimeout(timer)
      client.end(true)
      resolve(value)
    }
    const timer = setTimeout(() => done(null), 15_000)
    client.on('error', () => done(null))
    client.on('connect', () => client.subscribe('$SYS/broker/heap/current', { qos: 0 }))
    client.on('message', (_topic, payload, packet) => {
      if (!packet.retain) done(parseInt(payload.toString('utf8'), 10) || null)
    })
  })
}

/**
 * Mosquitto, already running. Client ids and topic numbers are fresh per run; at close every
 * session the run made is cleaned (CONNECT with clean=true), so the broker keeps nothing of it.
 */
export async function mosquitto(url = MOSQUITTO_URL): Promise<Target> {
  const { hostname, port } = new URL(url)
  const tag = randomBytes(3).toString('hex')
  // Small numbers, so topics are as short as weakmq's `u/{user}` (the bytes scenario compares them).
  const userBase = 1 + Math.floor(Math.random() * 1000)
  const clientIds: string[] = []
  let provisioned = 0
  const pid = mosquittoPid()
  return {
    kind: 'plain',
    name: 'mosquitto',
    nodes: 1,
    async accounts(n) {
      const batch = provisioned++
      const accounts = Array.from({ length: n }, (_, index) => ({
        index,
        user: userBase + batch * 1_000_000 + index,
        clientId: `b${tag}${batch}-${index.toString(36)}`,
      }))
      clientIds.push(...accounts.map((a) => a.clientId))
      return accounts
    },
    addressOf: () => ({ host: hostname, port: Number(port || 1883) }),
    processes: async () => ({ broker: pid ? [pid] : [] }),
    rss: async () => (pid ? rssBytes(pid) : null),
    heap: () => mosquittoHeap(url),
    loopDelay: async () => null,
    commits: async () => null,
    describe: () => ({ broker: 'Mosquitto (already running, persistence on, default limits)' }),
    async close() {
      // Fifty at a time: a clean CONNECT drops the session the run left behind.
      for (let i = 0; i < clientIds.length; i += 50) {
        await Promise.all(clientIds.slice(i, i + 50).map((clientId) => new Promise<void>((resolve) => {
          const client = mqtt.connect(url, { clientId, clean: true, protocolVersion: 4, reconnectPeriod: 0, connectTimeout: 5000 })
          const done = () => client.end(true, {}, () => resolve())
          client.once('connect', done)
          client.once('error', done)
        })))
      }
    },
  }
}
