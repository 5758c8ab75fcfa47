// Presence counts across nodes (broker/shared-state.ts, Redis): a user goes offline once, when the
// last device leaves, even when two devices leave at the same moment on two nodes, or two nodes
// sweep the devices of the same dead node.
import { randomBytes } from 'node:crypto'
import { Redis } from 'ioredis'
import t from 'tap'
import { redisState } from '../../broker/shared-state.ts'
import { requireServices, TEST_REDIS_URL } from '../harness.ts'

t.test('two devices leaving at once on two nodes: exactly one of them takes the user offline', async t => {
  if (!await requireServices(t)) return
  const prefix = `wmqtest:${randomBytes(4).toString('hex')}:`
  const redis = new Redis(TEST_REDIS_URL, { keyPrefix: prefix })
  const [a, b] = [redisState(redis, 'node-a'), redisState(redis, 'node-b')]
  t.teardown(async () => {
    await a.close()
    await b.close()
    const keys = await redis.keys(`${prefix}*`)
    if (keys.length) await redis.del(...keys.map(key => key.slice(prefix.length)))
    redis.disconnect()
  })
  const rounds = 50
  const offline: number[] = []
  for (let user = 1; user <= rounds; user++) {
    t.ok(await a.connect(user, 1), `user ${user} comes online with the first device`)
    t.notOk(await b.connect(user, 2), 'a second device on another node does not')
    // Sent together on one connection, the two leaves' commands reach Redis interleaved.
    const gone = await Promise.all([a.disconnect(user, 1), b.disconnect(user, 2)])
    offline.push(gone.filter(Boolean).length)
    t.notOk(await a.isOnline(user), 'and the user is offline after both')
  }
  t.same(offline, Array(rounds).fill(1), 'each time exactly one leave reported the user gone')
})

t.test('two nodes sweeping the same dead node: each of its users goes offline once, and a user with a device elsewhere stays online', async t => {
  if (!await requireServices(t)) return
  const prefix = `wmqtest:${randomBytes(4).toString('hex')}:`
  const redis = new Redis(TEST_REDIS_URL, { keyPrefix: prefix })
  const states: Array<ReturnType<typeof redisState>> = []
  t.teardown(async () => {
    for (const state of states) await state.close()
    const keys = await redis.keys(`${prefix}*`)
    if (keys.length) await redis.del(...keys.map(key => key.slice(prefix.length)))
    redis.disconnect()
  })
  // node-x counts 40 users' devices, then stops without a goodbye: close() ends its heartbeat and
  // leaves its counts behind, as a killed node does.
  const users = Array.from({ length: 40 }, (_, i) => i + 1)
  const dead = redisState(redis, 'node-x')
  for (const user of users) await dead.connect(user, 1)
  await dead.close()
  // Users 1-5 also have a device on a live node (its counts and heartbeat written as a node writes
  // them; a node of its own would sweep node-x too): the sweep must not take them offline.
  await redis.multi().set('node:node-live', '1', 'PX', 60_000).sadd('nodes', 'node-live').exec()
  for (const user of users.slice(0, 5)) await redis.hincrby(`online:${user}`, 'node-live:2', 1)

  // Two nodes start at once: each sweeps at its first heartbeat, on one connection, so their
  // commands reach Redis interleaved.
  const reports: number[][] = []
  const swept = new Promise<void>(resolve => {
    for (const name of ['node-a', 'node-b']) {
      const state = redisState(redis, name)
      states.push(state)
      state.onOrphans(offline => {
        reports.push(offline)
        if (reports.length === 2) resolve()
      })
    }
  })
  await swept
  const reported = reports.flat().sort((x, y) => x - y)
  t.same(reported, users.slice(5), 'each user of the dead node without another device, reported offline exactly once')
  const [a] = states
  for (const user of users.slice(0, 5)) t.ok(await a.isOnline(user), `user ${user} is still online on the live node`)
  for (const user of users.slice(5)) t.notOk(await a.isOnline(user), `user ${user} is offline`)
})
