// The broker: storage, sessions, the aedes hooks, the chat service and the listeners, put together
// from one Config. `startBroker` is what `npm start` runs and what every test starts on port 0.
import { randomBytes } from 'node:crypto'
import type { EventEmitter } from 'node:events'
import { chmodSync, existsSync, mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import { join, resolve } from 'node:path'
import { Aedes } from 'aedes'
import { createThrottle } from './auth/throttle.ts'
import { createChatContext } from './chat/context.ts'
import { createRequestHandler } from './chat/requests.ts'
import { createMessageWriter } from './chat/writer.ts'
import { StartError, type Config } from './config.ts'
import { installHooks } from './hooks.ts'
import { httpHandler } from './http.ts'
import { openListeners, type Listener } from './listeners.ts'
import { createLogger, type Logger } from './log.ts'
import { openSessionBackend } from './session-backends.ts'
import { otherSessionSubscribed } from './sessions.ts'
import { memoryState, redisState } from './shared-state.ts'
import { openPglite, openPostgres, type Db } from './storage/db.ts'
import { migrate } from './storage/migrate.ts'
import { brokerSecret, lastSeen } from './storage/users.ts'
import { mayReadPresence } from './storage/contacts.ts'
import { createPresence } from './chat/presence.ts'

export interface Broker {
  aedes: Aedes
  db: Db
  config: Config
  log: Logger
  /** Bound ports by listener name: MQTT, WebSocket, HTTP, MQTTS, WSS. */
  ports: Record<string, number>
  adminKey: string
  tokenSecret: Uint8Array
  close (): Promise<void>
}

/** Written to DATA_DIR while an embedded broker runs, so the admin command finds its API. */
export const RUNNING_FILE = 'broker.json'
const ADMIN_KEY_FILE = 'admin.key'

export function pidAlive (pid: number): boolean {
  try {
    process.kill(pid, 0)
    return true
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM'
  }
}

export function readRunningFile (dataDir: string): { pid: number, httpPort: number | null } | null {
  const file = join(dataDir, RUNNING_FILE)
  if (!existsSync(file)) return null
  try {
    const running = JSON.parse(readFileSync(file, 'utf8')) as { pid: number, httpPort: number | null }
    return pidAlive(running.pid) ? running : null
  } catch {
    return null
  }
}

/** DATA_DIR=memory: history in an in-memory PGlite, nothing written to disk. */
export const inMemory = (config: Config) => config.dataDir === 'memory'

/** The configured admin key, or the one kept in DATA_DIR (made on first use, readable by its owner only). */
export function localAdminKey (config: Config): string {
  if (config.adminKey) return config.adminKey
  if (inMemory(config)) return randomBytes(24).toString('base64url') // lives as long as the broker
  const file = join(config.dataDir, ADMIN_KEY_FILE)
  if (existsSync(file)) return readFileSync(file, 'utf8').trim()
  mkdirSync(config.dataDir, { recursive: true })
  const key = randomBytes(24).toString('base64url')
  writeFileSync(file, key + '\n', { mode: 0o600 })
  chmodSync(file, 0o600)
  return key
}

/** History storage: a Postgres server when DATABASE_URL is set, else PGlite in DATA_DIR (`memory` for none). */
export async function openHistory (config: Config): Promise<Db> {
  if (config.databaseUrl) {
    try {
      return await openPostgres(config.databaseUrl)
    } catch (err) {
      throw new StartError(`cannot reach the Postgres server in DATABASE_URL: ${(err as Error).message}`)
    }
  }
  return openPglite(inMemory(config) ? null : config.dataDir)
}

export async function startBroker (config: Config, log: Logger = createLogger(config.logLevel)): Promise<Broker> {
  const embedded = !config.databaseUrl && !inMemory(config)
  if (embedded) {
    const running = readRunningFile(config.dataDir)
    if (running && running.pid !== process.pid) {
      throw new StartError(`another broker (pid ${running.pid}) is using ${resolve(config.dataDir)}: stop it, or set DATA_DIR to another folder`)
    }
  }
  const db = await openHistory(config)
  const cleanup: Array<() => Promise<void>> = [() => db.close()]
  const undo = async () => { for (const step of cleanup.reverse()) await step().catch(() => {}) }
  try {
    const applied = await migrate(db)
    if (applied.length) log.info('database migrated', { applied: applied.join(',') })
    const tokenSecret = config.tokenSecret ? Buffer.from(config.tokenSecret, 'utf8') : await brokerSecret(db, 'token')
    const adminKey = localAdminKey(config)

    const sessions = await openSessionBackend(config, log)
    cleanup.push(() => sessions.close())
    // No fixed broker id: a fixed one makes Redis packet keys collide after a restart (DESIGN pitfalls).
    const aedes = new Aedes({ persistence: sessions.persistence, mq: sessions.mq, maxClientsIdLength: 23 })
    ;(aedes as EventEmitter).on('error', (err: Error) => log.error('broker error', { error: err.message }))
    await aedes.listen()
    // aedes waits for Redis to confirm its emitter closed; a Redis that is gone never does.
    const closeAedes = () => new Promise<void>(resolve => {
      const giveUp = setTimeout(resolve, 5000)
      aedes.close(() => { clearTimeout(giveUp); resolve() })
    })
    cleanup.push(closeAedes)

    const state = sessions.redis ? redisState(sessions.redis, aedes.id) : memoryState()
    cleanup.splice(cleanup.indexOf(closeAedes), 0, () => state.close()) // after aedes, before Redis
    const throttle = createThrottle(state, config.authFreeFailures, config.authMaxDelayMs)
    const writer = createMessageWriter(db, log, config.sendBatchMax, config.sendBatchIntervalMs)
    cleanup.push(() => writer.flush()) // at shutdown: after the listeners close, before the sessions
    const presence = createPresence(aedes, state, log, user => lastSeen(db, user))
    cleanup.push(async () => presence.close())
    installHooks(aedes, {
      db,
      log,
      tokenSecret,
      throttle,
      sessions: sessions.persistence,
      presence,
      handleRequest: createRequestHandler(createChatContext({
        broker: aedes,
        db,
        log,
        writer,
        limits: config,
        reachesOtherDevices: async (user, device) =>
          await otherSessionSubscribed(sessions.persistence, user, device) || await state.otherDeviceOnline(user, device),
      })),
      mayReadPresence: (reader, user) => mayReadPresence(db, reader, user),
    })

    const started = Date.now()
    let ports: Record<string, number> = {}
    const listenerSet = await openListeners(config, (stream, req) => aedes.handle(stream, req), httpHandler({
      broker: aedes,
      db,
      adminKey,
      tokenSecret,
      tokenTtlMs: config.tokenTtlMs,
      log,
      throttle,
      ports: () => ports,
      health: () => ({
        ok: true,
        broker: aedes.id,
        history: db.kind,
        sessions: sessions.kind,
        clients: aedes.connectedClients,
        uptimeSeconds: Math.round((Date.now() - started) / 1000),
      }),
    }))
    ports = Object.fromEntries(listenerSet.listeners.map((l: Listener) => [l.name, l.port]))
    if (embedded) {
      writeFileSync(join(config.dataDir, RUNNING_FILE), JSON.stringify({ pid: process.pid, httpPort: ports.HTTP ?? null }) + '\n')
      cleanup.push(async () => { rmSync(join(config.dataDir, RUNNING_FILE), { force: true }) })
    }
    cleanup.push(() => listenerSet.close())

    let closing: Promise<void> | null = null
    return {
      aedes,
      db,
      config,
      log,
      ports,
      adminKey,
      tokenSecret,
      close: () => {
        // Stop accepting first (listeners close last in `cleanup`, so they go first here), then
        // close the sessions, then storage.
        closing ??= undo()
        return closing
      },
    }
  } catch (err) {
    await undo()
    throw err
  }
}

