// Where sessions and fan-out live (DESIGN 9): in memory by default, in Redis when REDIS_URL is set
// (aedes-persistence-redis for sessions, mqemitter-redis for fan-out between nodes). These three
// libraries are CommonJS with declarations that do not match how Node's ESM loads them, so they are
// loaded here, once, with the few types this project relies on.
import { createRequire } from 'node:module'
import type { EventEmitter } from 'node:events'
import { Redis } from 'ioredis'
import mqemitter from 'mqemitter'
import { StartError, type Config } from './config.ts'
import type { Logger } from './log.ts'
import type { SessionStore } from './sessions.ts'

const require = createRequire(import.meta.url)

interface RedisPersistenceOptions {
  conn: Redis
  /** Queued packets handed to a session per CONNECT (library default 1000, DESIGN pitfalls). */
  maxSessionDelivery?: number
  /** Seconds a queued packet lives, per packet. */
  packetTTL?: (packet: unknown) => number
}

const memoryPersistence = require('aedes-persistence') as () => SessionStore
const redisPersistence = require('aedes-persistence-redis') as (options: RedisPersistenceOptions) => SessionStore
const { MQEmitterRedisPrefix } = require('mqemitter-redis') as {
  MQEmitterRedisPrefix: new (prefix: string, options: { subConn: Redis, pubConn: Redis, matchEmptyLevels: boolean }) => { state: EventEmitter }
}

interface ClearingStore {
  outgoingClearMessageId (client: unknown, packet: { messageId?: number }, cb?: unknown): Promise<unknown> | unknown
}

/**
 * aedes#543: when authorizeForward skips a packet for a persistent session (DESIGN 7, no echo),
 * aedes asks the store to clear it before it has a messageId. The memory store then removes
 * another packet in flight to that client, whose delivery fails with "no such packet" and drops
 * the client; the Redis store finds nothing. Here such a call clears nothing in either store: the
 * skipped packet is cleared when the device next connects (aedes gives it an id before filtering).
 */
function clearOnlyWithMessageId<T extends object> (store: T): T {
  const clearing = store as unknown as ClearingStore
  const clear = clearing.outgoingClearMessageId.bind(store)
  clearing.outgoingClearMessageId = (client, packet, cb) => {
    if (packet.messageId !== undefined) return clear(client, packet, cb)
    if (typeof cb === 'function') return cb(null)
    return Promise.resolve(undefined)
  }
  return store
}

export interface SessionBackend {
  kind: 'memory' | 'redis'
  persistence: SessionStore
  mq: object
  close (): Promise<void>
}

export async function openSessionBackend (config: Config, log: Logger): Promise<SessionBackend> {
  if (!config.redisUrl) {
    return {
      kind: 'memory',
      persistence: clearOnlyWithMessageId(memoryPersistence()),
      mq: mqemitter({ concurrency: 100, matchEmptyLevels: true }),
      close: async () => {},
    }
  }
  const opened: Redis[] = []
  const connect = async (role: string, keyPrefix?: string) => {
    const redis = new Redis(config.redisUrl, { keyPrefix, lazyConnect: true, maxRetriesPerRequest: null })
    redis.on('error', (err: Error) => log.warn('redis connection error', { role, error: err.message }))
    opened.push(redis)
    try {
      await redis.connect()
    } catch (err) {
      for (const r of opened) r.disconnect()
      throw new StartError(`cannot reach Redis in REDIS_URL: ${(err as Error).message}`)
    }
    return redis
  }
  // The subscriber connection is ready before mqemitter-redis sees it, and its errors have a
  // listener: otherwise it can emit an error on start and crash the process (DESIGN pitfalls).
  const subConn = await connect('subscriber')
  const pubConn = await connect('publisher')
  const conn = await connect('sessions', config.redisPrefix)
  const mq = new MQEmitterRedisPrefix(config.redisPrefix, { subConn, pubConn, matchEmptyLevels: true })
  mq.state.on('error', (err: Error) => log.warn('redis fan-out error', { error: err.message }))
  return {
    kind: 'redis',
    persistence: clearOnlyWithMessageId(redisPersistence({ conn })),
    mq,
    // aedes closes the emitter (and with it subConn and pubConn); the session connection is ours.
    close: async () => { conn.disconnect() },
  }
}
