// Issue 3 §1-2: send, SendAck after commit, delivery to every device of every member but the sender.
import pg from 'pg'
import t from 'tap'
import {
  ask, closeAtEnd, connectDevice, eachMode, newClientMsgId, requireServices, sendText, startTestBroker, textsOf, wmq,
  type TestBroker,
} from '../harness.ts'
import { waitFor } from '../clients/ts/sdk.ts'

/** Connects a device of `login` (clean=false unless told). */
const connecting = (tb: TestBroker) => async (login: string, device: string, clean = false) =>
  connectDevice(tb.mqttUrl, { clientId: device, username: login, password: await tb.token(login), clean })

eachMode(t, 'two users, three devices', async (t, mode) => {
  const tb = await startTestBroker(t, mode)
  const alice = await tb.addUser('alice')
  const bob = await tb.addUser('bob')
  const connect = connecting(tb)
  const [a1, a2, b1] = [await connect('alice', 'a1'), await connect('alice', 'a2'), await connect('bob', 'b1')]
  closeAtEnd(t, a1, a2, b1)

  const first = await sendText(a1, { user: bob }, 'hi bob')
  t.ok(first.sendAck, 'the sender gets a SendAck')
  const conversation = first.sendAck!.conversation
  t.equal(first.sendAck!.seq, 1, 'seq 1 in a new conversation')
  const second = await sendText(b1, { user: alice }, 'hi alice')
  t.same([second.sendAck!.conversation, second.sendAck!.seq], [conversation, 2], 'the reply is seq 2 of the same conversation')
  const third = await sendText(a2, { user: bob }, 'from my other phone')
  t.equal(third.sendAck!.seq, 3)

  await b1.next(d => d.message?.seq === 3, 'message 3 on b1')
  await a1.next(d => d.message?.seq === 3, 'message 3 on a1')
  await a2.next(d => d.message?.seq === 2, 'message 2 on a2')
  t.same(textsOf(b1), ['hi bob', 'from my other phone'], "bob's device gets alice's messages in seq order, not its own")
  t.same(textsOf(a1), ['hi alice', 'from my other phone'], "a1 gets bob's message and a2's, not an echo of its own")
  t.same(textsOf(a2), ['hi bob', 'hi alice'], "a2 gets a1's message and bob's")

  const onA2 = a2.received.find(r => r.downlink.message?.seq === 1)!
  t.equal(onA2.topic, `u/${alice.toString(36)}`, 'messages arrive on the user inbox')
  t.equal(Number(onA2.downlink.message!.peer), bob, "the sender's other device learns the peer")
  t.equal(onA2.downlink.message!.clientMsgId?.length, 8, "and the sender's client_msg_id")
  const onB1 = b1.received.find(r => r.downlink.message?.seq === 1)!.downlink.message!
  t.same({ sender: Number(onB1.sender), peer: Number(onB1.peer), cmid: onB1.clientMsgId?.length ?? 0, time: Number(onB1.time) === Number(first.sendAck!.time) },
    { sender: alice, peer: 0, cmid: 0, time: true }, 'the recipient gets the sender and the commit time, no client_msg_id')

  const rows = await tb.broker.db.query<{ seq: number, sender: number }>('SELECT seq, sender_id AS sender FROM messages ORDER BY seq')
  t.same(rows, [{ seq: 1, sender: alice }, { seq: 2, sender: bob }, { seq: 3, sender: alice }], 'three rows, seq 1..3')
  const stored = await tb.broker.db.query<{ content: Uint8Array }>('SELECT content FROM messages WHERE seq = 1')
  t.equal(wmq.Content.decode(stored[0].content).text, 'hi bob', 'the content is stored as protobuf bytes')

  const notUser = await sendText(a1, { user: 999 }, 'nobody')
  t.equal(notUser.error?.code, wmq.ErrorCode.UNKNOWN_USER, 'a send to an unknown user gets UNKNOWN_USER')
  const toSelf = await sendText(a1, { user: alice }, 'a note to self')
  t.ok(toSelf.sendAck, 'a note to oneself is a conversation too')
  const noTarget = await ask(a1, { send: { clientMsgId: newClientMsgId(), content: { text: 'x' } } })
  t.equal(noTarget.error?.code, wmq.ErrorCode.INVALID_ARGUMENT, 'a send without a recipient gets INVALID_ARGUMENT')
})

// aedes#543 and the no-echo rule (DESIGN 7): the copy of a message skipped for the device that sent
// it must not stay in that device's session queue, or the queue grows by one packet per message
// the device sends, in memory or in Redis, for as long as it stays connected.
eachMode(t, 'a sending device keeps no queued copy of its own messages', async (t, mode) => {
  const tb = await startTestBroker(t, mode)
  const alice = await tb.addUser('alice')
  const bob = await tb.addUser('bob')
  const connect = connecting(tb)
  const [a1, a2, b1] = [await connect('alice', 'a1'), await connect('alice', 'a2'), await connect('bob', 'b1')]
  closeAtEnd(t, a1, a2, b1)

  for (let i = 0; i < 30; i++) t.ok((await sendText(a1, { user: bob }, `text ${i}`)).sendAck, `send ${i} acknowledged`)
  await b1.next(d => d.message?.content?.text === 'text 29', 'the last text on b1')
  await a2.next(d => d.message?.content?.text === 'text 29', "the last text on alice's other device")

  const { persistence: store } = tb.broker.aedes as unknown as { persistence: { outgoingStream (client: { id: string }): AsyncIterable<unknown> } }
  const queued = async (device: string) => {
    let n = 0
    for await (const _ of store.outgoingStream({ id: device })) n++
    return n
  }
  // PUBACKs are cleared as they arrive; give them a bounded while.
  let left: number[] = []
  for (let tries = 0; tries < 50; tries++) {
    left = [await queued('a1'), await queued('a2'), await queued('b1')]
    if (left.every(n => n === 0)) break
    await new Promise(resolve => setTimeout(resolve, 100))
  }
  t.same(left, [0, 0, 0], 'no packet left queued for a1 (the sender), a2 or b1 once everything is acknowledged')
  t.same(textsOf(a1), [], 'and a1 got no echo of its own texts')
})

// The copy for the sender's other devices is skipped only when no other device can take it: one
// whose persistent session is away gets it when it comes back, one on a clean session gets it live.
eachMode(t, "the sender's other devices: away, and on a clean session", async (t, mode) => {
  const tb = await startTestBroker(t, mode)
  await tb.addUser('alice')
  const bob = await tb.addUser('bob')
  const connect = connecting(tb)
  const a2 = await connect('alice', 'a2')
  await new Promise<void>(resolve => a2.client.end(false, {}, () => resolve())) // a2's session stays, away
  const [a1, b1] = [await connect('alice', 'a1'), await connect('bob', 'b1')]
  closeAtEnd(t, a1, b1)

  t.ok((await sendText(a1, { user: bob }, 'while a2 is away')).sendAck, 'a1 sends while a2 is away')
  const a3 = await connect('alice', 'a3', true)
  closeAtEnd(t, a3)
  t.ok((await sendText(a1, { user: bob }, 'with a3 on a clean session')).sendAck, 'a1 sends with a3 connected')
  await a3.next(d => d.message?.content?.text === 'with a3 on a clean session', 'the copy on a3')
  t.pass('a3, on a clean session, gets the copy live')

  const back = await connect('alice', 'a2')
  closeAtEnd(t, back)
  await back.until(() => textsOf(back).length === 2, 'both copies on a2')
  t.same(textsOf(back), ['while a2 is away', 'with a3 on a clean session'], 'a2 gets both copies from its session when it comes back')
  t.same(textsOf(a1), [], 'a1 gets no echo')
})

// A QoS 1 request's PUBACK leaves when aedes takes the request, before its reply (hooks.ts): a
// send's reply waits for its commit, and its PUBACK held back with it held back the device's next
// packets as well. The PUBACKs still leave in the order the requests came.
t.test("sends waiting for Postgres hold back neither the device's next request nor its reply", async t => {
  // PROTOCOL.md section 3: requests are taken in order, replies come as they are ready. Sends
  // blocked in Postgres (their conversation row locked by this test) must not hold back the ping
  // after them. Postgres server only: PGlite has one connection.
  if (!await requireServices(t)) return
  const tb = await startTestBroker(t, 'services')
  await tb.addUser('alice')
  const bob = await tb.addUser('bob')
  const a1 = await connecting(tb)('alice', 'a1')
  closeAtEnd(t, a1)
  const conversation = (await sendText(a1, { user: bob }, 'first')).sendAck!.conversation
  const locker = new pg.Client({ connectionString: tb.config.databaseUrl! })
  await locker.connect()
  t.teardown(() => locker.end())
  const blocked = () => locker.query(
    "SELECT count(*)::int AS n FROM pg_locks l JOIN pg_stat_activity a USING (pid) WHERE NOT l.granted AND a.query LIKE '%UPDATE conversations%'")
  const stream = a1.client.stream as unknown as { cork (): void, uncork (): void }
  // Packet ids of the device's QoS 1 publishes, and of the PUBACKs it got, in order.
  const published: number[] = []
  const pubacks: number[] = []
  a1.client.on('packetsend', packet => { if (packet.cmd === 'publish' && packet.qos === 1) published.push(packet.messageId!) })
  a1.client.on('packetreceive', packet => { if (packet.cmd === 'puback') pubacks.push(packet.messageId!) })
  // One send, then two in one segment (aedes reads on once every packet of a read is done).
  for (const [qos, sends, ref] of [[0, 1, 10], [0, 2, 20], [1, 1, 30], [1, 2, 40]] as const) {
    const publish = (uplink: wmq.IUplink) => a1.client.publish('s', Buffer.from(wmq.Uplink.encode(uplink).finish()), { qos })
    const what = `${sends} send(s) at QoS ${qos}`
    await locker.query('BEGIN')
    await locker.query('SELECT 1 FROM conversations WHERE id = $1 FOR UPDATE', [conversation])
    stream.cork()
    for (let i = 0; i < sends; i++) publish({ ref: ref + i, send: { clientMsgId: newClientMsgId(), user: bob, content: { text: `waits ${i}` } } })
    process.nextTick(() => stream.uncork())
    await waitFor(async () => (await blocked()).rows[0].n > 0, 'the send waiting for the row lock')
    publish({ ref: ref + 9, ping: {} })
    await a1.next(d => d.ref === ref + 9, `the pong after ${what}`)
    t.notOk(a1.received.some(r => r.downlink.ref === ref), `${what}: the ping was answered while they still waited`)
    await locker.query('ROLLBACK')
    for (let i = 0; i < sends; i++) {
      const ack = await a1.next(d => d.ref === ref + i, 'the SendAck')
      t.equal(ack.sendAck?.conversation, conversation, `${what}: and send ${i + 1} is stored once the lock is gone`)
    }
  }
  await a1.until(() => pubacks.length === published.length, 'every PUBACK')
  t.same(pubacks, published, 'PUBACKs in the order of the requests [MQTT-4.6.0-2], though the pings were answered first')
})
