// Issue 6: several broker nodes (child processes) on one Redis and one Postgres.
import t, { type Test } from 'tap'
import {
  ask, closeAtEnd, connectDevice, addUsersAt, freshStorage, requireServices, sendText, spawnBroker,
  type Device, type Node,
} from '../harness.ts'
import { wmq } from '../../schema/generated/chat.js'

/** N nodes sharing a fresh Postgres schema and Redis prefix, started together. */
async function cluster (t: Test, count: number, env: Record<string, string> = {}): Promise<{ nodes: Node[], users: (logins: string[]) => Promise<number[]> }> {
  const storage = await freshStorage('services')
  t.teardown(() => storage.drop())
  const o = storage.overrides
  const shared = { DATABASE_URL: o.databaseUrl!, REDIS_URL: o.redisUrl!, REDIS_PREFIX: o.redisPrefix!, DATA_DIR: o.dataDir!, ...env }
  const nodes = await Promise.all(Array.from({ length: count }, () => spawnBroker(t, shared)))
  return { nodes, users: (logins: string[]) => addUsersAt(o.databaseUrl!, logins) }
}

const on = (node: Node, login: string, device: string) =>
  connectDevice(node.mqttUrl, { clientId: device, username: login, password: `${login}-password` })

const seqsOf = (device: Device, conversation: number) => device.received
  .map(r => r.downlink.message).filter(m => m && Number(m.conversation) === conversation).map(m => Number(m!.seq))


t.test('three nodes: a sender on A, recipients on B and C, in seq order', async t => {
  if (!await requireServices(t)) return
  const { nodes: [a, b, c], users } = await cluster(t, 3)
  const [, bob, carol] = await users(['alice', 'bob', 'carol'])
  const [a1, b1, c1] = [await on(a, 'alice', 'a1'), await on(b, 'bob', 'b1'), await on(c, 'carol', 'c1')]
  closeAtEnd(t, a1, b1, c1)
  const group = Number((await ask(a1, { groupCreate: { name: 'spread', members: [bob, carol] } })).group!.group)
  const acks = []
  for (let i = 0; i < 30; i++) acks.push(await sendText(a1, { group }, `g${i}`))
  t.same(acks.map(r => Number(r.sendAck!.seq)), Array.from({ length: 30 }, (_, i) => i + 2), 'seqs 2..31 from node A')
  for (const [name, device] of [['bob on B', b1], ['carol on C', c1]] as const) {
    await device.until(() => seqsOf(device, group).length === 31, `${name}: all 31`)
    t.same(seqsOf(device, group), Array.from({ length: 31 }, (_, i) => i + 1), `${name} got every message once, in seq order`)
  }
  const direct = await sendText(b1, { user: carol }, 'from B to C')
  await c1.until(() => c1.received.some(r => r.downlink.message?.content?.text === 'from B to C'), '1:1 across nodes')
  t.ok(direct.sendAck, 'a 1:1 message from a device on B reaches a device on C')
})

// Node A plans a batch from what it read for the batches before (issue 3 §3); a change made on
// node B meanwhile is found by A's write, which then reads again (migration 007).
t.test('members and blocks changed on one node bind the sends of another at once', async t => {
  if (!await requireServices(t)) return
  const { nodes: [a, b], users } = await cluster(t, 2)
  const [alice, , carol] = await users(['alice', 'bob', 'carol'])
  const [a1, b1, c1] = [await on(a, 'alice', 'a1'), await on(b, 'bob', 'b1'), await on(b, 'carol', 'c1')]
  closeAtEnd(t, a1, b1, c1)
  const group = Number((await ask(b1, { groupCreate: { name: 'g', members: [alice] } })).group!.group) // seq 1
  for (const text of ['one', 'two']) t.ok((await sendText(a1, { group }, text)).sendAck, `alice sends "${text}" on A`)
  t.equal((await ask(b1, { groupUpdate: { group, add: { users: [carol] } } })).group?.members, 3, 'bob adds carol on B (seq 4)')
  t.equal(Number((await sendText(a1, { group }, 'three')).sendAck?.seq), 5, 'alice sends again on A')
  await c1.until(() => seqsOf(c1, group).includes(5), 'carol gets it')
  t.same(seqsOf(c1, group), [4, 5], 'carol, added on B, gets the next message sent on A, after her addition')

  t.ok((await ask(b1, { groupUpdate: { group, remove: { users: [alice] } } })).group, 'bob removes alice on B (seq 6)')
  t.equal((await sendText(a1, { group }, 'four')).error?.code, wmq.ErrorCode.NOT_MEMBER, 'her next send on A: NOT_MEMBER')

  for (const text of ['hi', 'hello']) t.ok((await sendText(a1, { user: carol }, text)).sendAck, `alice writes "${text}" to carol on A`)
  t.ok((await ask(c1, { contactUpdate: { user: alice, block: true } })).contact, 'carol blocks alice on B')
  t.equal((await sendText(a1, { user: carol }, 'still there?')).error?.code, wmq.ErrorCode.FORBIDDEN, 'her next send on A is refused')
})

t.test('a device that moves to another node takes over its session and gets its queue', async t => {
  if (!await requireServices(t)) return
  const { nodes: [a, b, c], users } = await cluster(t, 3)
  const [, bob] = await users(['alice', 'bob'])
  const a1 = await on(a, 'alice', 'a1')
  closeAtEnd(t, a1)
  const away = await on(b, 'bob', 'b1')
  await away.end()
  for (let i = 1; i <= 5; i++) await sendText(a1, { user: bob }, `queued${i}`)
  const moved = await on(c, 'bob', 'b1')
  await moved.until(() => moved.received.filter(r => r.downlink.message).length === 5, 'the queue on node C')
  t.same(moved.received.map(r => r.downlink.message?.content?.text), ['queued1', 'queued2', 'queued3', 'queued4', 'queued5'],
    'the session left on B is served on C, in order')

  // Still connected to C, the same device connects to A: A takes the session, C drops the old connection.
  const closedOnC = new Promise<void>(resolve => moved.client.once('close', () => resolve()))
  const again = await on(a, 'bob', 'b1')
  closeAtEnd(t, again)
  await closedOnC
  t.pass('the connection on C is closed when the device connects to A')
  await sendText(a1, { user: bob }, 'after the takeover')
  await again.until(() => again.received.some(r => r.downlink.message?.content?.text === 'after the takeover'), 'delivery on A')
  t.pass('and the session on A receives')
})

t.test('presence and login slow-down agree across nodes', async t => {
  if (!await requireServices(t)) return
  const { nodes: [a, b, c], users } = await cluster(t, 3, { AUTH_FREE_FAILURES: '2', AUTH_MAX_DELAY_MS: '50' })
  const [alice, bob] = await users(['alice', 'bob'])
  const b1 = await on(b, 'bob', 'b1')
  const a1 = await on(a, 'alice', 'a1')
  closeAtEnd(t, b1)
  await sendText(a1, { user: bob }, 'hi')
  await new Promise<void>((resolve, reject) => b1.client.subscribe(`p/${alice.toString(36)}`, { qos: 0 }, err => err ? reject(err) : resolve()))
  const states = () => b1.presence.map(p => p.presence.online ? 'online' : 'offline')
  await b1.until(() => states().length > 0, 'presence on B')
  const a2 = await on(c, 'alice', 'a2')
  await a1.end()
  await a2.end()
  await b1.until(() => states().includes('offline'), 'offline once both are gone')
  t.same(states(), ['online', 'offline'], 'alice stayed online while a device on C remained, across nodes')

  const refused = async (node: Node) => {
    try { (await on(node, 'bob', 'b2')).client.end(true); return false } catch { return true }
  }
  const wrong = (node: Node) => connectDevice(node.mqttUrl, { clientId: 'b2', username: 'bob', password: 'wrong' }).then(() => false, () => true)
  t.ok(await wrong(a) && await wrong(b), 'two failures, on A and on B')
  t.ok(await wrong(c), 'a third, on C')
  t.match(c.log(), /login slowed down after repeated failures login=bob/, 'node C slows it down: the count is shared')
  t.notOk(await refused(c), 'the right password still gets in')
})

