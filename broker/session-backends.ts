// Where sessions and fan-out live (DESIGN 9): in memory by default, in Redis when REDIS_URL is set
// (aedes-persistence-redis for sessions, mqemitter-redis for fan-out between nodes), one Redis or,
// with REDIS_CLUSTER=on, a Redis Cluster. These three libraries are CommonJS with declarations that
// do not match how Node's ESM loads them, so they are loaded here, once, with the few types this
// project relies on.
import { createRequire } from 'node:module'
import type { EventEmitter } from 'node:events'
import { Cluster, Redis } from 'ioredis'
import mqemitter from 'mqemitter'
import { StartError, type Config } from './config.ts'
import type { Logger } from './log.ts'
import type { SessionStore } from './sessions.ts'

const require = createRequire(import.meta.url)

/** A connection to one Redis or to a Redis Cluster: the same commands either way. */
export type RedisConnection = Redis | Cluster

interface RedisPersistenceOptions {
  conn: RedisConnection
  /** Queued packets handed to a session per CONNECT (library default 1000, DESIGN pitfalls). */
  maxSessionDelivery?: number
  /** Seconds a queued packet lives, per packet. */
  packetTTL?: (packet: unknown) => number
}

const memoryPersistence = require('aedes-persistence') as () => SessionStore
const redisPersistence = require('aedes-persistence-redis') as (options: RedisPersistenceOptions) => SessionStore
const { MQEmitterRedisPrefix } = require('mqemitter-redis') as {
  MQEmitterRedisPrefix: new (prefix: string, options: { subConn: RedisConnection, pubConn: RedisConnection, matchEmptyLevels: boolean }) => { state: EventEmitter }
}

interface ClearingStore {
  outgoingUpdate (client: unknown, packet: object): Promise<unknown>
  outgoingClearMessageId (client: { id: string }, packet: SkippedPacket, cb?: unknown): Promise<unknown> | unknown
}
interface SkippedPacket { messageId?: number, brokerId?: string, brokerCounter?: number }
type ClearSkipped = (client: { id: string }, packet: SkippedPacket) => Promise<unknown>

/**
 * aedes#543: when authorizeForward skips a packet for a persistent session (DESIGN 7, no echo),
 * aedes asks the store to clear it before it has a messageId. The memory store then removes
 * another packet in flight to that client, whose delivery fails with "no such packet" and drops
 * the client; the Redis store finds nothing, and the skipped packet stays queued. Left there, a
 * device's queue would grow by one packet per message it sends (and every PUBACK would scan it).
 * Here such a call clears the skipped packet for that client alone, found by its broker id and
 * counter, the way each store keeps it (`clearSkipped`).
 */
function clearSkippedPackets<T extends object> (store: T, clearSkipped: ClearSkipped): T {
  const clearing = store as unknown as ClearingStore
  const clear = clearing.outgoingClearMessageId.bind(store)
  clearing.outgoingClearMessageId = (client, packet, cb) => {
    if (packet.messageId !== undefined) return clear(client, packet, cb)
    // Not queued (a clean session), or the store unreachable: the copy then goes with its session's
    // next connect or its age.
    const cleared = clearSkipped(client, packet).catch(() => undefined)
    if (typeof cb === 'function') cleared.then(() => cb(null))
    return cleared
  }
  return store
}

/** A packet identifier no MQTT packet has (they are 1-65535): marks a skipped packet for clearing. */
const SKIPPED = -1

/**
 * The memory store keeps a copy of each packet per client: the client's copy is given an
 * identifier no real packet has, and cleared by it.
 */
function clearSkippedInMemory (store: object): ClearSkipped {
  const { outgoingUpdate, outgoingClearMessageId } = store as ClearingStore
  return async (client, packet) => {
    await outgoingUpdate.call(store, client, { ...packet, messageId: SKIPPED })
    await outgoingClearMessageId.call(store, client, { messageId: SKIPPED })
  }
}

/**
 * aedes-persistence-redis keeps one packet for all its subscribers (`packet:{broker}:{counter}`,
 * with a count of the clients still owing it) and a list per client: the packet leaves the
 * client's list, and is deleted with its count when no client owes it any more. (Its own update
 * would rewrite the one packet every other client is still to get.)
 */
function clearSkippedInRedis (conn: RedisConnection): ClearSkipped {
  return async (client, packet) => {
    const key = `packet:${packet.brokerId}:${packet.brokerCounter}`
    const removed = await conn.lrem(`outgoing:${encodeURIComponent(client.id)}`, 0, key)
    if (removed > 0 && await conn.decr(`${key}:offlineCount`) <= 0) await conn.del(key, `${key}:offlineCount`)
  }
}

interface QueueingStore {
  broker?: { clients: Record<string, unknown> }
  outgoingEnqueueCombi (subs: Array<{ clientId: string }>, packet: QueuedPacket): Promise<void>
  outgoingClearMessageId (client: { id: string }, packet: { messageId?: number }): Promise<unknown>
  outgoingStream (client: { id: string }): AsyncIterable<QueuedPacket>
}
interface QueuedPacket { brokerId: string, brokerCounter: number, messageId?: number }

/**
 * Issue 3 §7 for the memory store, which has neither a bound nor an expiry: a session that is away
 * keeps at most `max` packets (the oldest go first) and is not handed packets older than `ttlMs`.
 * What it misses it finds by the seq gap and fetches with a history sync (DESIGN 1).
 *
 * Ages are kept as marks, not per packet (a time per packet would hold every packet ever sent for
 * `ttlMs`, a week by default): the broker numbers its packets in order (brokerCounter), so the
 * first counter of each short interval dates every packet after it, to within the interval.
 */
function boundMemoryQueues<T extends object> (store: T, max: number, ttlMs: number): T {
  const queue = store as unknown as QueueingStore
  const enqueue = queue.outgoingEnqueueCombi.bind(store)
  const clear = queue.outgoingClearMessageId.bind(store)
  const stream = queue.outgoingStream.bind(store)
  const queued = new Map<string, number>() // client id -> packets queued while away
  const interval = Math.min(Math.max(ttlMs / 1000, 1), 60_000)
  const marks: Array<{ at: number, counter: number }> = [] // ascending in both
  const online = (clientId: string) => Boolean(queue.broker?.clients[clientId])
  queue.outgoingEnqueueCombi = async (subs, packet) => {
    const now = Date.now()
    const last = marks.at(-1)
    if (!last || now - last.at >= interval) marks.push({ at: now, counter: packet.brokerCounter })
    await enqueue(subs, packet)
    for (const { clientId } of subs) {
      if (online(clientId)) continue // delivered and acknowledged as it goes
      const count = (queued.get(clientId) ?? 0) + 1
      // Away, nothing of its queue has a messageId yet: clearing "no id" drops the oldest entry.
      if (count > max) await clear({ id: clientId }, { messageId: undefined })
      queued.set(clientId, Math.min(count, max))
    }
  }
  // Packets numbered below this were enqueued before `cutoff` (none was, when no mark is that recent).
  const firstSince = (cutoff: number) => marks.find(mark => mark.at >= cutoff)?.counter ?? Infinity
  queue.outgoingStream = (client) => {
    queued.delete(client.id)
    const fresh = firstSince(Date.now() - ttlMs)
    return (async function * () {
      for await (const packet of stream(client)) {
        if (packet.brokerCounter >= fresh) yield packet
      }
    })()
  }
  // Marks older than the age bound date nothing any more but the boundary, which the next one keeps.
  const sweep = setInterval(() => {
    const cutoff = Date.now() - ttlMs
    while (marks.length > 1 && marks[0].at < cutoff) marks.shift()
  }, Math.min(Math.max(ttlMs, 1000), 60_000))
  sweep.unref()
  return store
}

/**
 * Issue 3 §7 for the Redis store: packets expire after `ttlMs` (its packetTTL), a session's list
 * keeps the newest `max` entries, and a CONNECT hands over the whole list (maxSessionDelivery =
 * max; the library's default of 1000 would leave the rest until the next reconnect).
 */
function boundRedisQueues<T extends object> (store: T, conn: RedisConnection, max: number): T {
  const queue = store as unknown as QueueingStore
  const enqueue = queue.outgoingEnqueueCombi.bind(store)
  queue.outgoingEnqueueCombi = async (subs, packet) => {
    await enqueue(subs, packet)
    const trim = conn.pipeline()
    for (const { clientId } of subs) trim.ltrim(`outgoing:${clientId}`, -max, -1)
    await trim.exec()
  }
  return store
}

interface SubscribingStore {
  addSubscriptions (client: { id: string }, subs: object[]): Promise<void>
}

/**
 * DESIGN pitfalls: a SUBSCRIBE carrying several topics hangs without SUBACK on Redis persistence.
 * aedes stores the packet's subscriptions once per topic, each time with the whole list;
 * aedes-persistence-redis waits for its broadcast keyed by client and first topic, so all but one
 * of those calls wait forever. Calls with the same list share one store call here.
 */
function storeEachSubscribeOnce<T extends object> (store: T): T {
  const subscribing = store as unknown as SubscribingStore
  const add = subscribing.addSubscriptions.bind(store)
  const pending = new WeakMap<object[], Promise<void>>()
  subscribing.addSubscriptions = (client, subs) => {
    let stored = pending.get(subs)
    if (!stored) {
      stored = add(client, subs)
      pending.set(subs, stored)
    }
    return stored
  }
  return store
}

/**
 * No will is ever stored: preConnect drops them (presence is the broker's to publish). aedes still
 * asks the store to delete the will at every CONNECT, as `delWill(client).finally(...)` with no
 * rejection handler: with Redis closing or lost, that rejection is unhandled and Node would stop
 * the process. Here it resolves at once, and saves a Redis round trip per CONNECT.
 */
function withoutWills<T extends object> (store: T): T {
  (store as unknown as { delWill: () => Promise<undefined> }).delWill = async () => undefined
  return store
}

interface MatchingStore {
  subscriptionsByTopic (topic: string, cb?: unknown): unknown
  addSubscriptions (...args: unknown[]): unknown
  removeSubscriptions (...args: unknown[]): unknown
  cleanSubscriptions (...args: unknown[]): unknown
}
type Matches = Array<{ clientId: string }>

/**
 * Every QoS 1 publish asks the store which sessions a topic reaches (aedes queues it for each), and
 * every send asks it for the sender's inbox (copyForSender): a walk of the subscription trie each
 * time, 4% of the broker's samples at 5,000 msg/s. The memory store's subscriptions change only
 * through its own methods, so the answer per topic is kept until the next change begins, and not
 * kept when a change began while it was being found. The Redis store is not wrapped: its
 * subscriptions also change on other nodes. The lists are shared: the callers only read them.
 */
export function rememberMatches<T extends object> (store: T): T {
  const matching = store as unknown as MatchingStore
  const match = matching.subscriptionsByTopic.bind(store)
  const found = new Map<string, Matches>()
  let changes = 0
  const changed = () => {
    changes++
    found.clear()
  }
  for (const name of ['addSubscriptions', 'removeSubscriptions', 'cleanSubscriptions'] as const) {
    const change = matching[name].bind(store) as (...args: unknown[]) => unknown
    matching[name] = (...args: unknown[]) => {
      changed()
      const done = args.at(-1)
      if (typeof done === 'function') args[args.length - 1] = (...results: unknown[]) => { changed(); done(...results) }
      const result = change(...args)
      if (result instanceof Promise) result.then(changed, changed)
      return result
    }
  }
  matching.subscriptionsByTopic = (topic, cb) => {
    if (cb) return match(topic, cb) // aedes and this project ask for promises; a callback is passed through
    const known = found.get(topic)
    if (known) return Promise.resolve(known)
    const before = changes
    return (match(topic) as Promise<Matches>).then(subs => {
      if (changes === before) found.set(topic, subs)
      return subs
    })
  }
  return store
}

function memoryStore (config: Config): SessionStore {
  const store = memoryPersistence()
  return withoutWills(clearSkippedPackets(boundMemoryQueues(rememberMatches(store), config.offlineQueueMax, config.offlineQueueTtlMs), clearSkippedInMemory(store)))
}

function redisStore (config: Config, conn: RedisConnection): SessionStore {
  const store = redisPersistence({
    conn,
    maxSessionDelivery: config.offlineQueueMax,
    packetTTL: () => Math.max(1, Math.ceil(config.offlineQueueTtlMs / 1000)),
  })
  return withoutWills(clearSkippedPackets(storeEachSubscribeOnce(boundRedisQueues(store, conn, config.offlineQueueMax)), clearSkippedInRedis(conn)))
}

export interface SessionBackend {
  kind: 'memory' | 'redis'
  /** The sessions connection (keys under REDIS_PREFIX), for state shared by the nodes. */
  redis: RedisConnection | null
  persistence: SessionStore
  mq: object
  close (): Promise<void>
}

/** REDIS_URL in cluster mode: one or more nodes of the cluster (ioredis finds the others). */
const clusterNodes = (urls: string): string[] => urls.split(',').map(url => url.trim()).filter(Boolean)

/**
 * The nodes ioredis finds through CLUSTER SLOTS get only the shared options: the user, password
 * and TLS of the first URL are given to every node.
 */
function credentials (urls: string): { username?: string, password?: string, tls?: object } {
  const url = clusterNodes(urls)[0] ?? ''
  if (!/^rediss?:\/\//.test(url)) return {} // host:port
  const first = new URL(url)
  return {
    ...(first.username ? { username: decodeURIComponent(first.username) } : {}),
    ...(first.password ? { password: decodeURIComponent(first.password) } : {}),
    ...(first.protocol === 'rediss:' ? { tls: {} } : {}),
  }
}

export async function openSessionBackend (config: Config, log: Logger): Promise<SessionBackend> {
  if (!config.redisUrl) {
    return {
      kind: 'memory',
      redis: null,
      persistence: memoryStore(config),
      // No limit on publishes in flight, as with mqemitter-redis. With one, the publishes over it
      // wait in an array that mqemitter shifts one at a time, which costs its whole length once it
      // is long: 40,000 waiting took over a second to go through instead of 40 ms, and a broker
      // that fell behind did not catch up (BENCHMARKS.md, problems found).
      mq: mqemitter({ concurrency: 0, matchEmptyLevels: true }),
      close: async () => {},
    }
  }
  const opened: RedisConnection[] = []
  const connect = async (role: string, keyPrefix?: string) => {
    // Named, so an operator (or a test) can tell this node's connections apart in CLIENT LIST.
    const options = { lazyConnect: true, maxRetriesPerRequest: null, connectionName: `${config.redisPrefix}${role}` }
    const redis = config.redisCluster
      ? new Cluster(clusterNodes(config.redisUrl), { keyPrefix, lazyConnect: true, redisOptions: { ...options, ...credentials(config.redisUrl) } })
      : new Redis(config.redisUrl, { ...options, keyPrefix })
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
  // mqemitter-redis closes with `subConn.quit()` and `pubConn.quit()` and drops both promises: if the
  // connection ends first (a slow or lost Redis at shutdown), the rejection has no handler.
  for (const redis of [subConn, pubConn]) {
    const quit = redis.quit.bind(redis)
    redis.quit = (() => { const quitting = quit(); quitting.catch(() => {}); return quitting }) as typeof redis.quit
  }
  // On a Redis Cluster every key carries the prefix as its hash tag, `{wmq:}client:a1`: all of them
  // hash to one slot, so the multi-key steps here and in aedes-persistence-redis (MULTI, pipelines,
  // MSET, DEL of several keys) never fail with CROSSSLOT. The cluster gives failover, not sharding.
  const conn = await connect('sessions', config.redisCluster ? `{${config.redisPrefix}}` : config.redisPrefix)
  const mq = new MQEmitterRedisPrefix(config.redisPrefix, { subConn, pubConn, matchEmptyLevels: true })
  mq.state.on('error', (err: Error) => log.warn('redis fan-out error', { error: err.message }))
  return {
    kind: 'redis',
    redis: conn,
    persistence: redisStore(config, conn),
    mq,
    // aedes closes the emitter (and with it subConn and pubConn) when Redis answers; after that,
    // or when it does not, every connection is ended here.
    close: async () => {
      // quit() lets commands still in flight (the last PUBACKs' bookkeeping) finish first.
      const quit = Promise.all(opened.map(redis => redis.quit().catch(() => {})))
      await Promise.race([quit, new Promise(resolve => setTimeout(resolve, 2000).unref())])
      for (const redis of opened) redis.disconnect()
    },
  }
}
