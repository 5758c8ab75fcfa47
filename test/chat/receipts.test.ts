// Issue 3 §8: delivered and read receipts, stored, only moving forward, capped to the last seq;
// unread counts through the conversation-list sync; the partner and the reader's other devices get
// a receipt event, the device that sent the receipt does not (DESIGN 7).
import t from 'tap'
import { ask, closeAtEnd, connectAs, eachMode, sendText, startTestBroker, wmq, type Device, type TestBroker } from '../harness.ts'

const { UNKNOWN_CONVERSATION, NOT_MEMBER } = wmq.ErrorCode

/** The receipt events a device got on its user inbox, in arrival order. */
const receiptsOn = (device: Device) => device.received.filter(r => r.downlink.receipt && r.topic.startsWith('u/'))
  .map(r => ({ user: Number(r.downlink.receipt!.user), delivered: Number(r.downlink.receipt!.deliveredSeq), read: Number(r.downlink.receipt!.readSeq) }))

/** A receipt request's reply, as plain numbers. */
async function mark (device: Device, conversation: number, deliveredSeq: number, readSeq: number) {
  const reply = await ask(device, { receipt: { conversation, deliveredSeq, readSeq } })
  if (!reply.receipt) return { error: reply.error?.code }
  const { user, deliveredSeq: delivered, readSeq: read } = reply.receipt
  return { user: Number(user), delivered: Number(delivered), read: Number(read) }
}

/** The conversation as the device's conversation-list sync shows it (since `cursor`), or null. */
async function listed (device: Device, conversation: number, cursor: Uint8Array = new Uint8Array()) {
  const page = await ask(device, { syncConversations: { cursor } })
  const summary = (page.conversations?.conversations ?? []).find(c => Number(c.conversation) === conversation)
  return summary ? { unread: Number(summary.unread), readSeq: Number(summary.readSeq), lastSeq: Number(summary.lastSeq) } : null
}

const cursorOf = async (device: Device) => (await ask(device, { syncConversations: {} })).conversations!.cursor!

const stateOf = async (tb: TestBroker, conversation: number, user: number) =>
  (await tb.broker.db.query<{ delivered: number, read: number, changed: string }>(
    'SELECT delivered_seq AS delivered, read_seq AS read, changed_in::text AS changed FROM members WHERE conversation_id = $1 AND user_id = $2',
    [conversation, user]))[0]

eachMode(t, '1:1 receipts: stored, forward only, capped, on every device of both users', async (t, mode) => {
  const tb = await startTestBroker(t, mode)
  const alice = await tb.addUser('alice')
  const bob = await tb.addUser('bob')
  const [a1, a2, b1] = [await connectAs(tb, 'alice', 'a1'), await connectAs(tb, 'alice', 'a2'), await connectAs(tb, 'bob', 'b1')]
  closeAtEnd(t, a1, a2, b1)

  let conversation = 0
  for (const text of ['one', 'two', 'three']) conversation = Number((await sendText(b1, { user: alice }, text)).sendAck!.conversation)
  t.same(await listed(a2, conversation), { unread: 3, readSeq: 0, lastSeq: 3 }, 'three unread before any receipt')
  const before = await cursorOf(a2)
  const unmarked = await stateOf(tb, conversation, alice)

  t.same(await mark(a1, conversation, 3, 2), { user: alice, delivered: 3, read: 2 }, 'the reply carries the stored state')
  const marked = await stateOf(tb, conversation, alice)
  t.match(marked, { delivered: 3, read: 2 }, 'delivered 3 and read 2 are stored')
  t.ok(BigInt(marked.changed) > BigInt(unmarked.changed), "  alice's membership is marked changed by the receipt's transaction")
  await b1.next(d => d.receipt?.readSeq === 2, 'the receipt on b1')
  await a2.next(d => d.receipt?.readSeq === 2, 'the receipt on a2')
  t.same(receiptsOn(b1), [{ user: alice, delivered: 3, read: 2 }], 'the partner gets the receipt event')
  t.same(receiptsOn(a2), [{ user: alice, delivered: 3, read: 2 }], "and so does the reader's other device")
  t.same(await listed(a2, conversation), { unread: 1, readSeq: 2, lastSeq: 3 }, 'unread = last seq - read seq on every device')
  t.same(await listed(a2, conversation, before), { unread: 1, readSeq: 2, lastSeq: 3 },
    'the conversation comes again in the list sync since the cursor taken before the receipt')
  t.same(await listed(b1, conversation), { unread: 0, readSeq: 3, lastSeq: 3 }, "bob's own read state is untouched (his sends count as read)")

  for (const text of ['four', 'five']) await sendText(b1, { user: alice }, text)
  t.same(await mark(a2, conversation, 0, 4), { user: alice, delivered: 4, read: 4 }, 'read implies delivered')
  await a1.next(d => d.receipt?.readSeq === 4, 'the receipt of a2 on a1')

  const { changed } = await stateOf(tb, conversation, alice)
  t.same(await mark(a1, conversation, 1, 1), { user: alice, delivered: 4, read: 4 }, 'a receipt behind the stored state moves nothing back')
  t.same(await stateOf(tb, conversation, alice), { delivered: 4, read: 4, changed }, '  nothing is written, the change mark included')

  t.same(await mark(a1, conversation, 2 ** 62, 99), { user: alice, delivered: 5, read: 5 }, 'seqs past the last one are capped to it')
  t.match(await stateOf(tb, conversation, alice), { delivered: 5, read: 5 }, '  and stored capped')
  t.same(await listed(a1, conversation), { unread: 0, readSeq: 5, lastSeq: 5 }, 'nothing unread')

  // Markers: the last receipt's events, then a message to alice, arrive after anything sent before them.
  await b1.next(d => d.receipt?.readSeq === 5, 'the last receipt on b1')
  await sendText(b1, { user: alice }, 'marker')
  await a1.next(d => d.message?.content?.text === 'marker', 'the marker on a1')
  await a2.next(d => d.message?.content?.text === 'marker', 'the marker on a2')
  t.same(receiptsOn(b1).map(r => r.read), [2, 4, 5], 'the partner got one event per receipt that moved, none for the one that did not')
  t.same(receiptsOn(a2).map(r => r.read), [2, 5], 'a2 got the receipts of a1, not an echo of its own')
  t.same(receiptsOn(a1).map(r => r.read), [4], 'a1 got the receipt of a2, not an echo of its own')
})

eachMode(t, 'refused receipts write nothing and tell nobody', async (t, mode) => {
  const tb = await startTestBroker(t, mode)
  const alice = await tb.addUser('alice')
  await tb.addUser('bob')
  await tb.addUser('carol')
  const [a1, b1, c1] = [await connectAs(tb, 'alice', 'a1'), await connectAs(tb, 'bob', 'b1'), await connectAs(tb, 'carol', 'c1')]
  closeAtEnd(t, a1, b1, c1)
  const conversation = Number((await sendText(b1, { user: alice }, 'hello')).sendAck!.conversation)
  await sendText(b1, { user: alice }, 'again')
  const snapshot = () => tb.broker.db.query('SELECT conversation_id, user_id, delivered_seq, read_seq, changed_in::text FROM members ORDER BY 1, 2')
  const before = await snapshot()

  t.same(await mark(a1, 999, 1, 1), { error: UNKNOWN_CONVERSATION }, 'a conversation that does not exist: UNKNOWN_CONVERSATION')
  t.same(await mark(a1, 0, 1, 1), { error: UNKNOWN_CONVERSATION }, 'conversation 0: UNKNOWN_CONVERSATION')
  t.same(await mark(a1, 2 ** 60, 1, 1), { error: UNKNOWN_CONVERSATION }, 'a conversation id past 2^53: UNKNOWN_CONVERSATION, not INTERNAL')
  t.same(await mark(c1, conversation, 2, 2), { error: NOT_MEMBER }, "someone else's conversation: NOT_MEMBER")
  t.same(await snapshot(), before, 'no read state changed')

  // Marker: an accepted receipt's event reaches bob after anything the refused ones could have sent.
  t.same(await mark(a1, conversation, 1, 1), { user: alice, delivered: 1, read: 1 }, 'an accepted receipt')
  await b1.next(d => d.receipt?.readSeq === 1, 'the accepted receipt on b1')
  t.same(receiptsOn(b1), [{ user: alice, delivered: 1, read: 1 }], 'bob got only the accepted receipt')
  t.ok(a1.client.connected && c1.client.connected, 'the refused devices keep their connections')
})

/** Alice makes a group with bob and carol (seq 1: its GroupCreated system message) and writes in it (seq 2). */
async function groupOfThree (t: Parameters<Parameters<typeof eachMode>[2]>[0], tb: TestBroker) {
  const ids = { alice: await tb.addUser('alice'), bob: await tb.addUser('bob'), carol: await tb.addUser('carol') }
  const [a1, b1, b2, c1] = await Promise.all([['alice', 'a1'], ['bob', 'b1'], ['bob', 'b2'], ['carol', 'c1']]
    .map(([login, id]) => connectAs(tb, login, id)))
  closeAtEnd(t, a1, b1, b2, c1)
  const created = await ask(a1, { groupCreate: { name: 'g', members: [ids.bob, ids.carol] } })
  const group = Number(created.group!.group)
  t.same((await sendText(a1, { group }, 'hello group')).sendAck?.seq, 2, 'a group with a system message and a text')
  return { ...ids, a1, b1, b2, c1, group }
}

eachMode(t, 'group receipts (GROUP_RECEIPTS on, the default): every member is told', async (t, mode) => {
  const tb = await startTestBroker(t, mode)
  const { bob, a1, b1, b2, c1, group } = await groupOfThree(t, tb)
  t.same(await mark(b1, group, 2, 2), { user: bob, delivered: 2, read: 2 }, 'bob reads the group')
  for (const [name, device] of [['alice', a1], ['carol', c1], ["bob's other device", b2]] as const) {
    await device.next(d => d.receipt?.readSeq === 2, `the receipt on ${name}`)
    t.same(receiptsOn(device), [{ user: bob, delivered: 2, read: 2 }], `${name} gets bob's receipt`)
  }
  t.same(await listed(b2, group), { unread: 0, readSeq: 2, lastSeq: 2 }, "bob's unread count is 0")
})

eachMode(t, "GROUP_RECEIPTS off: only the reader's own devices are told", async (t, mode) => {
  const tb = await startTestBroker(t, mode, { groupReceipts: false })
  const { bob, a1, b1, b2, c1, group } = await groupOfThree(t, tb)
  t.same(await mark(b1, group, 2, 2), { user: bob, delivered: 2, read: 2 }, 'bob reads the group')
  await b2.next(d => d.receipt?.readSeq === 2, "the receipt on bob's other device")
  t.same(receiptsOn(b2), [{ user: bob, delivered: 2, read: 2 }], "bob's other device gets it")
  // Marker: a message bob sends after the receipt reaches alice and carol after any receipt event.
  await sendText(b1, { group }, 'marker')
  await a1.next(d => d.message?.content?.text === 'marker', 'the marker on alice')
  await c1.next(d => d.message?.content?.text === 'marker', 'the marker on carol')
  t.same([receiptsOn(a1), receiptsOn(c1)], [[], []], 'the other members get no receipt')
  t.match(await stateOf(tb, group, bob), { delivered: 3, read: 3 }, 'the read state is stored all the same (the marker is read by its sender)')
})

eachMode(t, 'a member who left: receipts capped at leaving, and told to nobody else', async (t, mode) => {
  const tb = await startTestBroker(t, mode)
  const { bob, carol, a1, b1, c1, group } = await groupOfThree(t, tb)
  t.ok((await ask(c1, { groupUpdate: { group, leave: true } })).group, 'carol leaves (seq 3)')
  await sendText(a1, { group }, 'after carol') // seq 4
  t.same(await mark(c1, group, 99, 99), { user: carol, delivered: 3, read: 3 }, 'her receipt is capped at the seq she left at')
  t.same(await listed(c1, group), { unread: 0, readSeq: 3, lastSeq: 3 }, 'nothing unread in what she can see')
  // Marker: bob's receipt reaches alice after anything carol's could have sent.
  t.same(await mark(b1, group, 4, 4), { user: bob, delivered: 4, read: 4 }, 'bob reads everything')
  await a1.next(d => d.receipt?.user === bob, "bob's receipt on alice")
  t.same(receiptsOn(a1).map(r => r.user), [bob], "alice got bob's receipt, not carol's")
})
