// Issue 3 §7: offline queues are bounded by count and age; a reconnect hands over the whole queue
// (no waiting for another reconnect past maxSessionDelivery), and history sync covers the rest.
import t from 'tap'
import { Redis } from 'ioredis'
import { ask, closeAtEnd, connectDevice, eachMode, sendText, startTestBroker, TEST_REDIS_URL, type TestBroker } from '../harness.ts'

async function awayAndBack (tb: TestBroker, count: number) {
  await tb.addUser('alice')
  const bob = await tb.addUser('bob')
  const connect = async (login: string, device: string) =>
    connectDevice(tb.mqttUrl, { clientId: device, username: login, password: await tb.token(login) })
  const a1 = await connect('alice', 'a1')
  const away = await connect('bob', 'b1')
  await away.end()
  const acks = []
  for (let i = 1; i <= count; i++) acks.push(await sendText(a1, { user: bob }, `m${i}`))
  return { a1, acks, conversation: Number(acks[0].sendAck!.conversation), back: () => connect('bob', 'b1') }
}

eachMode(t, 'a queue bounded by count: the newest arrive, sync brings the rest', async (t, mode) => {
  const tb = await startTestBroker(t, mode, { offlineQueueMax: 5 })
  const { a1, conversation, back } = await awayAndBack(tb, 12)
  const b1 = await back()
  closeAtEnd(t, a1, b1)
  await b1.until(() => b1.received.some(r => Number(r.downlink.message?.seq) === 12), 'the newest message')
  const marker = await ask(b1, { ping: {} }) // everything queued before the pong has arrived
  t.ok(marker.pong)
  const seqs = b1.received.map(r => Number(r.downlink.message?.seq)).filter(Boolean)
  t.ok(seqs.length >= 5 && seqs.length <= 6, `the queue kept about OFFLINE_QUEUE_MAX = 5 (got ${seqs.length})`)
  t.same(seqs, Array.from({ length: seqs.length }, (_, i) => 13 - seqs.length + i), 'the newest ones, in order, on one connection')
  const history = await ask(b1, { syncHistory: { conversation, afterSeq: 0, limit: 100 } })
  t.same(history.history!.messages!.map(m => Number(m.seq)), Array.from({ length: 12 }, (_, i) => i + 1), 'sync brings every message')
})

eachMode(t, 'a queue bounded by age', async (t, mode) => {
  const tb = await startTestBroker(t, mode, { offlineQueueTtlMs: 1 }) // Redis counts in whole seconds: 1 s
  const { a1, conversation, back } = await awayAndBack(tb, 3)
  if (mode === 'services') {
    // Wait for Redis to expire the queued packets (a condition, not a timing assertion).
    const redis = new Redis(TEST_REDIS_URL)
    for (let i = 0; i < 100 && (await redis.keys(`${tb.config.redisPrefix}packet:*`)).length > 0; i++) await new Promise(r => setTimeout(r, 100))
    redis.disconnect()
  }
  const b1 = await back()
  closeAtEnd(t, a1, b1)
  const marker = await ask(b1, { ping: {} })
  t.ok(marker.pong)
  t.same(b1.received.filter(r => r.downlink.message).length, 0, 'expired messages are not handed over')
  const list = await ask(b1, { syncConversations: {} })
  const summary = list.conversations!.conversations![0]
  t.same([Number(summary.conversation), Number(summary.lastSeq), Number(summary.unread)], [conversation, 3, 3],
    'the conversation list shows what was missed')
  const history = await ask(b1, { syncHistory: { conversation } })
  t.same(history.history!.messages!.map(m => m.content?.text), ['m1', 'm2', 'm3'], 'and sync brings it')
})
