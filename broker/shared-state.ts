// What the broker nodes must agree on (issue 6 §2): who is online, and rate-limit counters. In
// memory for one node; in Redis when REDIS_URL is set, so presence and limits hold across nodes.
//
// Redis keys (under REDIS_PREFIX; on a Redis Cluster under `{REDIS_PREFIX}`, one hash slot, so
// a MULTI over several of them is allowed):
//   online:{user}       hash  {node}:{device} -> connections of that device on that node
//   node:{node}         string, expires NODE_TTL_MS after the node's last heartbeat
//   node-users:{node}   set of users with a device on that node (to clean up after a dead node)
//   nodes               set of node ids
//   fail:{key}          failed-login counter, forgotten after FAILURE_MEMORY_MS
//   once:{key}          "done within the interval" marker (typing events)
import type { RedisConnection } from './session-backends.ts'

const FAILURE_MEMORY_MS = 15 * 60_000
export const NODE_TTL_MS = 30_000
const HEARTBEAT_MS = 10_000

export interface SharedState {
  /** Counts a device connection; true when this made its user go from offline to online. */
  connect (user: number, device: number): Promise<boolean>
  /** Uncounts one; true when the user now has no device connected anywhere. */
  disconnect (user: number, device: number): Promise<boolean>
  isOnline (user: number): Promise<boolean>
  /** True when a device of `user` other than `device` is connected, on any node. */
  otherDeviceOnline (user: number, device: number): Promise<boolean>
  failures (key: string): Promise<number>
  fail (key: string): Promise<void>
  clearFailures (key: string): Promise<void>
  /** True the first time in `intervalMs` for this key, false for repeats within it. */
  once (key: string, intervalMs: number): Promise<boolean>
  /**
   * After each sweep of a node that stopped without a goodbye: the users its devices leave
   * offline (none, when their other devices are still connected or another node swept first).
   */
  onOrphans (handler: (users: number[]) => void): void
  close (): Promise<void>
}

export function memoryState (now: () => number = Date.now): SharedState {
  const online = new Map<number, Map<number, number>>()
  const failures = new Map<string, { count: number, at: number }>()
  const done = new Map<string, number>()
  const bounded = <K, V>(map: Map<K, V>) => { if (map.size > 100_000) map.delete(map.keys().next().value!) }
  return {
    async connect (user, device) {
      const devices = online.get(user) ?? new Map<number, number>()
      const wasOnline = devices.size > 0
      devices.set(device, (devices.get(device) ?? 0) + 1)
      online.set(user, devices)
      return !wasOnline
    },
    async disconnect (user, device) {
      const devices = online.get(user)
      if (!devices) return true
      const left = (devices.get(device) ?? 1) - 1
      if (left > 0) devices.set(device, left)
      else devices.delete(device)
      if (devices.size === 0) online.delete(user)
      return !online.has(user)
    },
    async isOnline (user) { return online.has(user) },
    async otherDeviceOnline (user, device) {
      for (const other of online.get(user)?.keys() ?? []) if (other !== device) return true
      return false
    },
    async failures (key) {
      const entry = failures.get(key)
      if (!entry || now() - entry.at > FAILURE_MEMORY_MS) return 0
      return entry.count
    },
    async fail (key) {
      const count = (await this.failures(key)) + 1
      failures.delete(key)
      failures.set(key, { count, at: now() })
      bounded(failures)
    },
    async clearFailures (key) { failures.delete(key) },
    async once (key, intervalMs) {
      const at = now()
      const last = done.get(key)
      if (last !== undefined && at - last < intervalMs) return false
      done.delete(key)
      done.set(key, at)
      bounded(done)
      return true
    },
    onOrphans () {}, // one node: nothing can be orphaned
    async close () {},
  }
}

/** Uncounts a connection of KEYS[1]'s field ARGV[1]; the devices left, counted in the same step. */
const DISCONNECT = `
  if redis.call('HINCRBY', KEYS[1], ARGV[1], -1) <= 0 then redis.call('HDEL', KEYS[1], ARGV[1]) end
  return redis.call('HLEN', KEYS[1])`

/** Removes KEYS[1]'s fields that start with ARGV[1] (a dead node's); how many, and how many are left. */
const SWEEP = `
  local removed = 0
  for _, f in ipairs(redis.call('HKEYS', KEYS[1])) do
    if string.sub(f, 1, #ARGV[1]) == ARGV[1] then
      redis.call('HDEL', KEYS[1], f)
      removed = removed + 1
    end
  end
  return {removed, redis.call('HLEN', KEYS[1])}`

export function redisState (redis: RedisConnection, node: string): SharedState {
  const field = (device: number) => `${node}:${device}`
  let orphanHandler: (users: number[]) => void = () => {}

  const beat = async () => {
    await redis.multi().set(`node:${node}`, '1', 'PX', NODE_TTL_MS).sadd('nodes', node).exec()
  }
  // A node that stopped without a goodbye (kill -9, lost host) leaves its devices counted as
  // online; whichever node sees its heartbeat gone removes them. Each user's fields go in one
  // script that also counts what is left, so a user is reported offline once: by the sweep that
  // removed the last of them, not by a second node sweeping the same dead node, nor by a sweep
  // and a live device's leave that both saw the hash empty.
  const sweep = async () => {
    for (const other of await redis.smembers('nodes')) {
      if (other === node || await redis.exists(`node:${other}`)) continue
      const users = (await redis.smembers(`node-users:${other}`)).map(Number)
      const nowOffline: number[] = []
      for (const user of users) {
        const [removed, left] = await redis.eval(SWEEP, 1, `online:${user}`, `${other}:`) as [number, number]
        if (removed > 0 && left === 0) nowOffline.push(user)
      }
      await redis.multi().del(`node-users:${other}`).srem('nodes', other).exec()
      orphanHandler(nowOffline)
    }
  }
  const tick = () => { beat().then(sweep).catch(() => {}) } // Redis away: try again next beat
  const timer = setInterval(tick, HEARTBEAT_MS)
  timer.unref()
  tick()

  return {
    async connect (user, device) {
      const [[, count], , [, size]] = await redis.multi()
        .hincrby(`online:${user}`, field(device), 1)
        .sadd(`node-users:${node}`, String(user))
        .hlen(`online:${user}`)
        .exec() as Array<[Error | null, number]>
      return count === 1 && size === 1
    },
    async disconnect (user, device) {
      // One script, so only the last device to leave sees the hash empty: as three commands, two
      // devices leaving at once on two nodes both saw it empty, and their user went offline twice.
      return await redis.eval(DISCONNECT, 1, `online:${user}`, field(device)) === 0
    },
    async isOnline (user) { return await redis.hlen(`online:${user}`) > 0 },
    async otherDeviceOnline (user, device) {
      return (await redis.hkeys(`online:${user}`)).some(key => key.slice(key.lastIndexOf(':') + 1) !== String(device))
    },
    async failures (key) { return Number(await redis.get(`fail:${key}`) ?? 0) },
    async fail (key) { await redis.multi().incr(`fail:${key}`).pexpire(`fail:${key}`, FAILURE_MEMORY_MS).exec() },
    async clearFailures (key) { await redis.del(`fail:${key}`) },
    async once (key, intervalMs) {
      return await redis.set(`once:${key}`, '1', 'PX', Math.max(1, intervalMs), 'NX') === 'OK'
    },
    onOrphans (handler) { orphanHandler = handler },
    async close () {
      clearInterval(timer)
      // Stopping ends the heartbeat: another node (or the next start) sweeps what this one leaves,
      // and publishes the users who are then offline, as for a node that died.
      await redis.del(`node:${node}`).catch(() => {})
    },
  }
}
