// Presence counts across nodes (broker/shared-state.ts, Redis): a user goes offline once, when the
// last device leaves, even when two devices leave at the same moment on two nodes.
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
