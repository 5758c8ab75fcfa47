// Issue 6 §3: each pitfall of the pinned libraries listed in DESIGN.md, with a regression test.
import t from 'tap'
import { Redis } from 'ioredis'
import type { MqttClient } from 'mqtt'
import { loadConfig } from '../../broker/config.ts'
import { startBroker } from '../../broker/server.ts'
import { ask, closeAtEnd, connectDevice, eachMode, sendText, startTestBroker, TEST_REDIS_URL, testConfig, freshStorage } from '../harness.ts'

const subscribe = (client: MqttClient, topics: string[]) => new Promise<number[]>((resolve, reject) =>
  client.subscribe(topics, { qos: 1 }, (err, granted) => err ? reject(err) : resolve((granted ?? []).map(g => g.qos))))

eachMode(t, 'a SUBSCRIBE with several topics gets its SUBACK', async (t, mode) => {
  const tb = await startTestBroker(t, mode)
  await tb.addUser('alice')
  const a1 = await connectDevice(tb.mqttUrl, { clientId: 'a1', username: 'alice', password: await tb.token('alice') })
  closeAtEnd(t, a1)
  t.same(await subscribe(a1.client, ['u/1', 'd/a1', 'p/1']), [1, 1, 1], 'three topics in one SUBSCRIBE, granted')
  t.ok((await ask(a1, { ping: {} })).pong, 'and the session goes on')
})

t.test('broker ids are unique per start, so Redis packet keys never collide after a restart', async t => {
  const storage = await freshStorage('services')
  t.teardown(() => storage.drop())
  const config = testConfig(storage.overrides)
  const first = await startBroker(config)
  const firstId = first.aedes.id
  await first.close()
  const second = await startBroker(config)
  t.teardown(() => second.close())
  t.not(second.aedes.id, firstId, `a restart on the same Redis gets a new broker id (${firstId.slice(0, 8)} then ${second.aedes.id.slice(0, 8)})`)
})

t.test('Redis unreachable at start: one clear error, no crash from mqemitter-redis', async t => {
  const config = { ...testConfig({ dataDir: 'memory' }), redisUrl: 'redis://127.0.0.1:1' }
  await t.rejects(startBroker(config), /cannot reach Redis in REDIS_URL/)
  t.equal(loadConfig([], {}).redisUrl, '', 'REDIS_URL is optional')
})

t.test('mqemitter-redis errors after start are reported, not thrown', async t => {
  const storage = await freshStorage('services')
  t.teardown(() => storage.drop())
  const logs: string[] = []
  const { createLogger } = await import('../../broker/log.ts')
  const broker = await startBroker(testConfig(storage.overrides), createLogger('debug', line => logs.push(line)))
  t.teardown(() => broker.close())
  // Kill this broker's Redis connections (and only its own: they are named) from Redis' side.
  const admin = new Redis(TEST_REDIS_URL)
  const mine = (await admin.client('LIST') as string).split('\n')
    .filter(line => line.includes(`name=${broker.config.redisPrefix}`)).map(line => /id=(\d+)/.exec(line)![1])
  t.equal(mine.length, 3, 'the broker holds three named connections: subscriber, publisher, sessions')
  for (const id of mine) await admin.client('KILL', 'ID', id)
  admin.disconnect()
  await new Promise(resolve => setTimeout(resolve, 300)) // let the errors arrive
  t.equal(broker.aedes.closed, false, 'the broker is still running')
  const alive = new Redis(TEST_REDIS_URL)
  await alive.ping() // Redis is fine; ioredis reconnects the broker's connections by itself
  alive.disconnect()
})

eachMode(t, 'a reconnect hands over a queue longer than the library default of maxSessionDelivery', async (t, mode) => {
  const tb = await startTestBroker(t, mode, { offlineQueueMax: 1200 })
  await tb.addUser('alice')
  const bob = await tb.addUser('bob')
  const a1 = await connectDevice(tb.mqttUrl, { clientId: 'a1', username: 'alice', password: await tb.token('alice') })
  const away = await connectDevice(tb.mqttUrl, { clientId: 'b1', username: 'bob', password: await tb.token('bob') })
  await away.end()
  for (let chunk = 0; chunk < 11; chunk++) { // a hundred at a time: each reply has its own wait limit
    await Promise.all(Array.from({ length: 100 }, (_, i) => sendText(a1, { user: bob }, `m${chunk * 100 + i}`)))
  }
  const b1 = await connectDevice(tb.mqttUrl, { clientId: 'b1', username: 'bob', password: await tb.token('bob') })
  closeAtEnd(t, a1, b1)
  await b1.until(() => b1.received.filter(r => r.downlink.message).length >= 1100, 'all 1100 queued messages on one connection')
  t.equal(new Set(b1.received.map(r => Number(r.downlink.message?.seq))).size, 1100, '1100 distinct messages, more than 1000, without another reconnect')
})
