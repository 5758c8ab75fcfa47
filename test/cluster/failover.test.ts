// Issue 6 §4: a node killed during traffic, Redis restarted during traffic, Postgres unreachable.
// In each case nothing acknowledged is lost: after reconnect and sync, the application holds every
// acknowledged message exactly once; and no send is acknowledged that was not stored.
import t, { type Test } from 'tap'
import { spawn } from 'node:child_process'
import { createServer } from 'node:net'
import { openPostgres } from '../../broker/storage/db.ts'
import { FlakyLink } from '../../bench/lab/flaky-link.ts'
import {
  ask, closeAtEnd, connectDevice, addUsersAt, freshStorage, requireServices, newClientMsgId, spawnBroker, startTestBroker,
  TEST_DATABASE_URL, wmq, type Device, type Node,
} from '../harness.ts'


const on = (url: string, login: string, device: string) =>
  connectDevice(url, { clientId: device, username: login, password: `${login}-password` })

/**
 * A sender the way the SDK sends: each message keeps its client_msg_id until acknowledged, and is
 * sent again (same id) after a reconnect. Returns the acknowledged (conversation:seq -> text).
 */
class Sender {
  acked = new Map<string, string>()
  private ref = 1
  constructor (public device: Device, private to: number) {}
  async send (text: string, clientMsgId = newClientMsgId()): Promise<boolean> {
    const ref = this.ref++
    const reply = this.device.next(d => d.ref === ref, `reply ${ref}`).catch(() => null)
    let onClose = () => {}
    const closed = new Promise<null>(resolve => { onClose = () => resolve(null) })
    this.device.client.once('close', onClose)
    this.device.client.publish('s', Buffer.from(wmq.Uplink.encode({ ref, send: { clientMsgId, user: this.to, content: { text } } }).finish()), { qos: 1 })
    const answer = await Promise.race([reply, closed])
    this.device.client.off('close', onClose) // one listener per send would pile up on the client
    if (!answer?.sendAck) return false
    this.acked.set(`${answer.sendAck.conversation}:${answer.sendAck.seq}`, text)
    return true
  }
}

/** Everything the application on `device` holds after a full history sync, deduplicated. */
async function syncedView (device: Device, earlier: Device[]): Promise<Map<string, { text: string, copies: number }>> {
  const view = new Map<string, { text: string, copies: number }>()
  const add = (m: wmq.IMessage) => {
    const key = `${m.conversation}:${m.seq}`
    const entry = view.get(key)
    view.set(key, { text: m.content?.text ?? '', copies: (entry?.copies ?? 0) + 1 })
  }
  for (const d of [...earlier, device]) d.received.forEach(r => r.downlink.message && add(r.downlink.message))
  for (const c of (await ask(device, { syncConversations: {} })).conversations!.conversations!) {
    let after = 0
    for (;;) {
      const page = (await ask(device, { syncHistory: { conversation: c.conversation, afterSeq: after, limit: 100 } })).history!
      page.messages!.forEach(add)
      if (!page.more || page.messages!.length === 0) break
      after = Number(page.messages!.at(-1)!.seq)
    }
  }
  return view
}

function checkAllThere (t: Test, acked: Map<string, string>, view: Map<string, { text: string }>, who: string): void {
  const missing = [...acked].filter(([key, text]) => view.get(key)?.text !== text).map(([key]) => key)
  t.same(missing, [], `${who}: every acknowledged message is there (${acked.size})`)
}

async function rowsOf (databaseUrl: string): Promise<{ n: number, distinct: number }> {
  const db = await openPostgres(databaseUrl)
  try {
    const [row] = await db.query<{ n: number, distinct: number }>(
      'SELECT count(*)::int AS n, count(DISTINCT content)::int AS distinct FROM messages')
    return row
  } finally {
    await db.close()
  }
}

t.test('kill -9 of a node during traffic: its devices reconnect elsewhere and lose nothing', async t => {
  if (!await requireServices(t)) return
  const storage = await freshStorage('services')
  t.teardown(() => storage.drop())
  const o = storage.overrides
  const env = { DATABASE_URL: o.databaseUrl!, REDIS_URL: o.redisUrl!, REDIS_PREFIX: o.redisPrefix!, DATA_DIR: o.dataDir! }
  const [a, b] = await Promise.all([spawnBroker(t, env), spawnBroker(t, env)])
  const [, bob] = await addUsersAt(o.databaseUrl!, ['alice', 'bob'])
  const b1 = await on(b.mqttUrl, 'bob', 'b1')
  const firstA1 = await on(a.mqttUrl, 'alice', 'a1')
  closeAtEnd(t, b1)
  const sender = new Sender(firstA1, bob)

  let i = 0
  let pending: { text: string, id: Uint8Array } | null = null
  const traffic = (async () => {
    for (; i < 500; i++) {
      pending = { text: `m${i}`, id: newClientMsgId() }
      if (!await sender.send(pending.text, pending.id)) return
      pending = null
    }
  })()
  await firstA1.until(() => sender.acked.size >= 30, 'thirty acknowledged')
  a.child.kill('SIGKILL')
  await traffic
  t.ok(sender.acked.size >= 30, `node A killed after ${sender.acked.size} acknowledged sends`)

  // The device fails over to node B and sends again what was not acknowledged, with the same id.
  const a1 = await on(b.mqttUrl, 'alice', 'a1')
  closeAtEnd(t, a1)
  sender.device = a1
  if (pending) t.ok(await sender.send((pending as { text: string }).text, (pending as { id: Uint8Array }).id), 'the unacknowledged send, sent again on B, is acknowledged')
  for (let k = 0; k < 5; k++) t.ok(await sender.send(`after${k}`), `send ${k} after the failover`)

  const view = await syncedView(b1, [])
  checkAllThere(t, sender.acked, view, 'bob, after sync')
  t.same([...view.values()].filter(v => v.copies > 2).length, 0, 'no message reached bob more than once live plus once in history')
  const rows = await rowsOf(o.databaseUrl!)
  t.equal(rows.n, rows.distinct, `no message stored twice (${rows.n} rows): the re-sent one was deduplicated`)
})

t.test('Redis restarted during traffic: the broker says so, recovers, loses nothing acknowledged', async t => {
  if (!await requireServices(t)) return
  const port = await new Promise<number>(resolve => {
    const probe = createServer().listen(0, '127.0.0.1', () => {
      const { port } = probe.address() as { port: number }
      probe.close(() => resolve(port))
    })
  })
  const startRedis = () => {
    const child = spawn('redis-server', ['--port', String(port), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no'], { stdio: 'ignore' })
    t.teardown(() => { child.kill('SIGKILL') })
    return child
  }
  let redis = startRedis()
  const storage = await freshStorage('services')
  t.teardown(() => storage.drop())
  const o = storage.overrides
  const env = { DATABASE_URL: o.databaseUrl!, REDIS_URL: `redis://127.0.0.1:${port}`, REDIS_PREFIX: 'r:', DATA_DIR: o.dataDir! }
  let a: Node | null = null
  for (let attempt = 0; attempt < 50 && !a; attempt++) {
    a = await spawnBroker(t, env).catch(() => null) // until redis-server listens
    if (!a) await new Promise(resolve => setTimeout(resolve, 100))
  }
  const b = await spawnBroker(t, env)
  const [, bob] = await addUsersAt(o.databaseUrl!, ['alice', 'bob'])
  const a1 = await on(a!.mqttUrl, 'alice', 'a1')
  const b1 = await on(b.mqttUrl, 'bob', 'b1')
  closeAtEnd(t, a1, b1)
  const sender = new Sender(a1, bob)
  for (let k = 0; k < 10; k++) await sender.send(`before${k}`)

  redis.kill('SIGKILL')
  await new Promise(resolve => redis.once('exit', resolve))
  // While Redis is away: sends are stored (Postgres) but replies cannot cross nodes; the device
  // keeps its connection to the node. Whatever is acknowledged must survive.
  const during = Promise.race([sender.send('during'), new Promise(resolve => setTimeout(() => resolve(false), 2000))])
  await during
  redis = startRedis()
  let recovered = false
  for (let attempt = 0; attempt < 100 && !recovered; attempt++) {
    recovered = await Promise.race([sender.send(`after${attempt}`), new Promise<boolean>(resolve => setTimeout(() => resolve(false), 1000))])
  }
  t.ok(recovered, 'sends are acknowledged again once Redis is back')
  t.match(a!.log(), /redis (connection|fan-out) error/, 'the node said Redis was away')
  t.equal(a!.child.exitCode, null, 'and kept running')
  const view = await syncedView(b1, [])
  checkAllThere(t, sender.acked, view, 'bob, after sync')
})

t.test('Postgres unreachable: sends get an error, never a false acknowledgement, and succeed when it returns', async t => {
  if (!await requireServices(t)) return
  const target = new URL(TEST_DATABASE_URL)
  let link = new FlakyLink({ target: { host: target.hostname, port: Number(target.port || 5432) } })
  const { port } = await link.listen()
  const storage = await freshStorage('services')
  t.teardown(async () => { await link.close(); await storage.drop() })
  const proxied = new URL(storage.overrides.databaseUrl!)
  proxied.port = String(port)
  const tb = await startTestBroker(t, 'services', { databaseUrl: proxied.toString() })
  const [, bob] = [await tb.addUser('alice'), await tb.addUser('bob')]
  const a1 = await connectDevice(tb.mqttUrl, { clientId: 'a1', username: 'alice', password: await tb.token('alice') })
  closeAtEnd(t, a1)
  const sender = new Sender(a1, bob)
  t.ok(await sender.send('before'), 'a send is acknowledged while Postgres is there')

  await link.close() // Postgres is gone: connections reset, new ones refused
  const id = newClientMsgId()
  const refused = await ask(a1, { send: { clientMsgId: id, user: bob, content: { text: 'while away' } } })
  t.equal(refused.error?.code, wmq.ErrorCode.UNAVAILABLE, 'a send while Postgres is away gets UNAVAILABLE, not a SendAck')
  t.ok(a1.client.connected, 'the device keeps its connection')

  link = new FlakyLink({ target: { host: target.hostname, port: Number(target.port || 5432) }, port })
  await link.listen()
  let again: wmq.Downlink | null = null
  for (let attempt = 0; attempt < 50 && !again?.sendAck; attempt++) {
    again = await ask(a1, { send: { clientMsgId: id, user: bob, content: { text: 'while away' } } })
    if (!again.sendAck) await new Promise(resolve => setTimeout(resolve, 100))
  }
  t.ok(again?.sendAck, 'the same send succeeds once Postgres is back')
  const rows = await tb.broker.db.query<{ text: string }>('SELECT content FROM messages ORDER BY seq')
  t.equal(rows.length, 2, 'two rows: the refused attempt stored nothing')
})
