// Issue 3: the embedded broker killed (SIGKILL) and restarted mid-conversation loses nothing: after
// reconnect and sync each device holds every acknowledged message exactly once (DESIGN 1, 5).
import t from 'tap'
import { mkdtempSync, readFileSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { ask, connectDevice, newClientMsgId, spawnBroker, wmq, type Device, type Node } from '../harness.ts'

async function admin (running: Node, dataDir: string, path: string, body: unknown): Promise<{ id?: number, token?: string }> {
  const key = readFileSync(join(dataDir, 'admin.key'), 'utf8').trim()
  const res = await fetch(`http://127.0.0.1:${running.ports.http}${path}`, {
    method: 'POST', headers: { authorization: `Bearer ${key}`, 'content-type': 'application/json' }, body: JSON.stringify(body),
  })
  return res.json() as Promise<{ id?: number, token?: string }>
}

/** What the application on a device holds: messages by (conversation, seq), deduplicated as the SDK does. */
const held = (device: Device, extra: wmq.IMessage[] = []) => {
  const seen = new Map<string, number>()
  for (const m of [...device.received.map(r => r.downlink.message).filter(Boolean) as wmq.IMessage[], ...extra]) {
    const key = `${m.conversation}:${m.seq}`
    seen.set(key, (seen.get(key) ?? 0) + 1)
  }
  return seen
}

t.test('SIGKILL mid-conversation, restart, reconnect, sync', async t => {
  const dataDir = mkdtempSync(join(tmpdir(), 'wmq-crash-'))
  const start = () => spawnBroker(t, { DATA_DIR: dataDir })
  let running = await start()
  t.teardown(() => rmSync(dataDir, { recursive: true, force: true }))
  const alice = (await admin(running, dataDir, '/api/users', { login: 'alice', password: 'alice-password' })).id!
  const bob = (await admin(running, dataDir, '/api/users', { login: 'bob', password: 'bob-password' })).id!
  const options = (login: string, clientId: string) => ({ clientId, username: login, password: `${login}-password`, reconnectPeriod: 0 })
  const url = () => running.mqttUrl
  let [a1, b1] = [await connectDevice(url(), options('alice', 'a1')), await connectDevice(url(), options('bob', 'b1'))]

  // Both send continuously; the broker is killed once some sends are acknowledged.
  const acked = new Map<string, string>() // conversation:seq -> text
  let sent = 0
  let ref = 1000
  const sendLoop = async (device: Device, to: number, name: string) => {
    const closed = new Promise<null>(resolve => device.client.once('close', () => resolve(null)))
    for (let i = 0; i < 200 && device.client.connected; i++) {
      const myRef = ref++
      const text = `${name}${i}`
      const reply = device.next(d => d.ref === myRef, 'ack').catch(() => null)
      device.client.publish('s', Buffer.from(wmq.Uplink.encode({ ref: myRef, send: { clientMsgId: newClientMsgId(), user: to, content: { text } } }).finish()), { qos: 1 })
      sent++
      const ack = await Promise.race([reply, closed])
      if (!ack?.sendAck) return
      acked.set(`${ack.sendAck.conversation}:${ack.sendAck.seq}`, text)
    }
  }
  const loops = [sendLoop(a1, bob, 'a'), sendLoop(b1, alice, 'b')]
  await a1.until(() => acked.size >= 40, 'forty acknowledged sends')
  running.child.kill('SIGKILL')
  await Promise.all(loops)
  await Promise.all([a1.end(), b1.end()])
  t.ok(acked.size >= 40 && sent > acked.size - 1, `killed after ${acked.size} acknowledged of ${sent} sent`)

  await running.exited
  running = await start()
  const before = { a1, b1 }
  a1 = await connectDevice(url(), options('alice', 'a1'))
  b1 = await connectDevice(url(), options('bob', 'b1'))
  for (const [name, device, was] of [['a1', a1, before.a1], ['b1', b1, before.b1]] as const) {
    const list = (await ask(device, { syncConversations: {} })).conversations!.conversations!
    const history: wmq.IMessage[] = []
    for (const c of list) {
      let after = 0
      for (;;) {
        const page = (await ask(device, { syncHistory: { conversation: c.conversation, afterSeq: after, limit: 100 } })).history!
        history.push(...page.messages!)
        if (!page.more || page.messages!.length === 0) break
        after = Number(page.messages!.at(-1)!.seq)
      }
    }
    const app = held(was, history)
    const missing = [...acked.keys()].filter(key => !app.has(key))
    t.same(missing, [], `${name}: every acknowledged message is there after sync`)
    const historyKeys = history.map(m => `${m.conversation}:${m.seq}`)
    t.equal(new Set(historyKeys).size, historyKeys.length, `${name}: no seq twice in history`)
    for (const [key, text] of acked) {
      const stored = history.find(m => `${m.conversation}:${m.seq}` === key)
      if (stored?.content?.text !== text) t.fail(`${name}: ${key} holds "${stored?.content?.text}", not the acknowledged "${text}"`)
    }
  }
  await Promise.all([a1.end(), b1.end()])
})
