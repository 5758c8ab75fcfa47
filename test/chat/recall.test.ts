// Issue 3 §9: recall by the sender within RECALL_WINDOW (every member gets a RecallEvent, history
// shows the message recalled, without content) and delete for me (hidden from that user's history
// only, on all of that user's devices).
import t from 'tap'
import { ask, closeAtEnd, connectAs, eachMode, sendText, startTestBroker, wmq, type Device, type TestBroker } from '../harness.ts'

const { UNKNOWN_CONVERSATION, NOT_MEMBER, UNKNOWN_MESSAGE, FORBIDDEN, RECALL_WINDOW_PASSED, INVALID_ARGUMENT } = wmq.ErrorCode

/** What the device's history sync shows, oldest first. */
async function historyOf (device: Device, conversation: number) {
  const page = await ask(device, { syncHistory: { conversation, limit: 50 } })
  return (page.history?.messages ?? []).map(m => ({
    seq: Number(m.seq), recalled: m.recalled, text: m.content?.text ?? null, hasContent: Boolean(m.content?.body),
  }))
}

const recallsOn = (device: Device) => device.received.filter(r => r.downlink.recall && r.topic.startsWith('u/'))
  .map(r => Number(r.downlink.recall!.seq))
const deletionsOn = (device: Device) => device.received.filter(r => r.downlink.deleted && r.topic.startsWith('u/'))
  .map(r => (r.downlink.deleted!.seqs ?? []).map(Number))

const rowsOf = (tb: TestBroker) => tb.broker.db.query<{ seq: number, recalled: boolean, content: Uint8Array }>(
  'SELECT seq, recalled, content FROM messages ORDER BY conversation_id, seq')

async function recall (device: Device, conversation: number, seq: number) {
  const reply = await ask(device, { recall: { conversation, seq } })
  return reply.recall ? { conversation: Number(reply.recall.conversation), seq: Number(reply.recall.seq) } : { error: reply.error?.code }
}

async function deleteForMe (device: Device, conversation: number, seqs: number[]) {
  const reply = await ask(device, { deleteForMe: { conversation, seqs } })
  return reply.deleted ? { conversation: Number(reply.deleted.conversation), seqs: (reply.deleted.seqs ?? []).map(Number) } : { error: reply.error?.code }
}

async function setUp (t: Parameters<Parameters<typeof eachMode>[2]>[0], tb: TestBroker) {
  const alice = await tb.addUser('alice')
  const bob = await tb.addUser('bob')
  const carol = await tb.addUser('carol')
  const devices = {
    a1: await connectAs(tb, 'alice', 'a1'), a2: await connectAs(tb, 'alice', 'a2'),
    b1: await connectAs(tb, 'bob', 'b1'), c1: await connectAs(tb, 'carol', 'c1'),
  }
  closeAtEnd(t, ...Object.values(devices))
  return { alice, bob, carol, ...devices }
}

eachMode(t, 'recall within the window: every member is told, history shows it recalled', async (t, mode) => {
  const tb = await startTestBroker(t, mode)
  const { alice, bob, a1, a2, b1 } = await setUp(t, tb)
  const conversation = Number((await sendText(a1, { user: bob }, 'oops')).sendAck!.conversation)
  await sendText(a1, { user: bob }, 'fine')
  const cursor = (await ask(b1, { syncConversations: {} })).conversations!.cursor!

  t.same(await recall(a1, conversation, 1), { conversation, seq: 1 }, 'the sender gets the RecallEvent as the reply')
  const [one, two] = await rowsOf(tb)
  t.same([one.recalled, one.content.length], [true, 0], 'the row is marked recalled and its content is gone')
  t.same([two.recalled, wmq.Content.decode(two.content).text], [false, 'fine'], 'the next message is untouched')
  await b1.next(d => d.recall?.seq === 1, 'the recall on b1')
  await a2.next(d => d.recall?.seq === 1, 'the recall on a2')
  t.same((await b1.next(d => d.recall?.seq === 1)).recall, { conversation, seq: 1 }, 'the partner gets RecallEvent{conversation, seq}')

  const expected = [{ seq: 1, recalled: true, text: null, hasContent: false }, { seq: 2, recalled: false, text: 'fine', hasContent: true }]
  t.same(await historyOf(b1, conversation), expected, "the partner's history shows it recalled, with no content")
  t.same(await historyOf(a2, conversation), expected, "and so does the sender's")

  t.same(await recall(a1, conversation, 1), { conversation, seq: 1 }, 'a repeat succeeds again')
  t.same((await rowsOf(tb))[0].recalled, true, '  and changes nothing')

  // Recalling the last message; its events are the markers for the repeat above.
  t.same(await recall(a2, conversation, 2), { conversation, seq: 2 }, 'the sender recalls from another device')
  const summary = ((await ask(b1, { syncConversations: { cursor } })).conversations?.conversations ?? [])
    .find(c => Number(c.conversation) === conversation)
  t.same([summary?.last?.seq, summary?.last?.recalled, summary?.last?.content ?? null], [2, true, null],
    'the conversation list brings the recalled preview again')
  await b1.next(d => d.recall?.seq === 2, 'the second recall on b1')
  await a1.next(d => d.recall?.seq === 2, 'the second recall on a1')
  await sendText(b1, { user: alice }, 'marker')
  await a2.next(d => d.message?.content?.text === 'marker', 'the marker on a2')
  t.same(recallsOn(b1), [1, 2], 'the partner got one event per recall, none for the repeat')
  t.same(recallsOn(a1), [2], "a1 got a2's recall, not an echo of its own")
  t.same(recallsOn(a2), [1], "a2 got a1's recall, not an echo of its own")
})

eachMode(t, 'refused recalls change nothing and tell nobody', async (t, mode) => {
  const tb = await startTestBroker(t, mode)
  const { alice, bob, a1, b1, c1 } = await setUp(t, tb)
  const conversation = Number((await sendText(a1, { user: bob }, 'mine')).sendAck!.conversation) // seq 1
  await sendText(b1, { user: alice }, 'his') // seq 2
  // seq 3: a system message (no client_msg_id), as groups write them, with alice as its actor.
  await tb.broker.db.transaction(async tx => {
    await tx.query('UPDATE conversations SET last_seq = 3 WHERE id = $1', [conversation])
    await tx.query('INSERT INTO messages (conversation_id, seq, sender_id, client_msg_id, sent_at, content) VALUES ($1, 3, $2, NULL, $3, $4)',
      [conversation, alice, Date.now(), wmq.Content.encode({ system: { renamed: 'x', actor: alice } }).finish()])
  })
  await sendText(a1, { user: bob }, 'old') // seq 4, sent "ten minutes ago" (the window is 2 minutes)
  await tb.broker.db.query('UPDATE messages SET sent_at = sent_at - 600000 WHERE conversation_id = $1 AND seq = 4', [conversation])
  await sendText(a1, { user: bob }, 'hidden') // seq 5, deleted for alice
  t.same(await deleteForMe(a1, conversation, [5]), { conversation, seqs: [5] }, 'alice deletes seq 5 for herself')
  const before = { rows: await rowsOf(tb), conversations: await tb.broker.db.query('SELECT * FROM conversations') }

  t.same(await recall(a1, 999, 1), { error: UNKNOWN_CONVERSATION }, 'a conversation that does not exist: UNKNOWN_CONVERSATION')
  t.same(await recall(c1, conversation, 1), { error: NOT_MEMBER }, "someone else's conversation: NOT_MEMBER")
  t.same(await recall(a1, conversation, 99), { error: UNKNOWN_MESSAGE }, 'a seq past the last: UNKNOWN_MESSAGE')
  t.same(await recall(a1, conversation, 0), { error: UNKNOWN_MESSAGE }, 'seq 0: UNKNOWN_MESSAGE')
  t.same(await recall(a1, conversation, 2 ** 60), { error: UNKNOWN_MESSAGE }, 'a seq past 2^53: UNKNOWN_MESSAGE, not INTERNAL')
  t.same(await recall(a1, conversation, 5), { error: UNKNOWN_MESSAGE }, 'a message the sender deleted for herself: UNKNOWN_MESSAGE')
  t.same(await recall(b1, conversation, 1), { error: FORBIDDEN }, "the partner recalling alice's message: FORBIDDEN")
  t.same(await recall(a1, conversation, 2), { error: FORBIDDEN }, "alice recalling bob's message: FORBIDDEN")
  t.same(await recall(a1, conversation, 3), { error: FORBIDDEN }, 'a system message, even by its actor: FORBIDDEN')
  t.same(await recall(a1, conversation, 4), { error: RECALL_WINDOW_PASSED }, 'a message older than the window: RECALL_WINDOW_PASSED')
  t.same({ rows: await rowsOf(tb), conversations: await tb.broker.db.query('SELECT * FROM conversations') }, before,
    'no message and no conversation changed')

  t.same(await recall(a1, conversation, 1), { conversation, seq: 1 }, 'marker: an accepted recall')
  await b1.next(d => d.recall?.seq === 1, 'the accepted recall on b1')
  t.same(recallsOn(b1), [1], 'bob got only the accepted recall')

  await tb.broker.db.query('UPDATE messages SET sent_at = sent_at - 600000 WHERE conversation_id = $1 AND seq = 1', [conversation])
  t.same(await recall(a1, conversation, 1), { conversation, seq: 1 }, 'a repeat once the window has passed still succeeds')
  await sendText(a1, { user: bob }, 'marker')
  await b1.next(d => d.message?.content?.text === 'marker', 'the marker on b1')
  t.same(recallsOn(b1), [1], '  and tells nobody again')
})

eachMode(t, 'a recall window of 0 turns recall off', async (t, mode) => {
  const tb = await startTestBroker(t, mode, { recallWindowMs: 0 })
  const { bob, a1 } = await setUp(t, tb)
  const conversation = Number((await sendText(a1, { user: bob }, 'for good')).sendAck!.conversation)
  t.same(await recall(a1, conversation, 1), { error: RECALL_WINDOW_PASSED }, 'RECALL_WINDOW_PASSED at once')
  const [row] = await rowsOf(tb)
  t.same([row.recalled, wmq.Content.decode(row.content).text], [false, 'for good'], 'the message is untouched')
})

eachMode(t, "delete for me: hidden from that user's history only, on all of that user's devices", async (t, mode) => {
  const tb = await startTestBroker(t, mode)
  const { alice, bob, a1, a2, b1 } = await setUp(t, tb)
  const conversation = Number((await sendText(a1, { user: bob }, 'one')).sendAck!.conversation)
  await sendText(b1, { user: alice }, 'two')
  await sendText(a1, { user: bob }, 'three')
  const deletionsOf = (user: number) => tb.broker.db.query<{ seq: number }>(
    'SELECT seq FROM deletions WHERE user_id = $1 ORDER BY seq', [user]).then(rows => rows.map(r => r.seq))

  t.same(await deleteForMe(a1, conversation, [3, 1, 99, 3, 0]), { conversation, seqs: [1, 3] },
    'the reply names the seqs deleted: those of messages, each once')
  t.same(await deletionsOf(alice), [1, 3], 'two deletions are stored for alice')
  t.same((await a2.next(d => Boolean(d.deleted), 'the deletion on a2')).deleted, { conversation, seqs: [1, 3] },
    "the user's other device is told")
  t.same((await historyOf(a2, conversation)).map(m => m.seq), [2], "alice's history no longer has them")
  t.same((await historyOf(b1, conversation)).map(m => m.text), ['one', 'two', 'three'], "bob's history still has everything")
  t.equal((await rowsOf(tb)).length, 3, 'the messages themselves stay')

  t.same(await deleteForMe(a2, conversation, [1, 3]), { conversation, seqs: [1, 3] }, 'a repeat gets the same answer')
  t.same(await deletionsOf(alice), [1, 3], '  and stores nothing more')
  t.same(await deleteForMe(a2, conversation, Array.from({ length: 100 }, (_, i) => i + 1)), { conversation, seqs: [1, 2, 3] },
    '100 seqs are allowed; every existing one is now deleted')

  // Markers: the last deletion's event on a1, and a message to alice and bob.
  await a1.next(d => d.deleted?.seqs?.map(Number).join() === '2', 'the deletion of seq 2 on a1')
  await sendText(b1, { user: alice }, 'marker')
  await sendText(a1, { user: bob }, 'marker')
  await a2.next(d => d.message?.content?.text === 'marker', 'the marker on a2')
  await b1.next(d => d.message?.content?.text === 'marker', 'the marker on b1')
  t.same(deletionsOn(a2), [[1, 3]], "a2 heard of a1's deletion only, not an echo of its own")
  t.same(deletionsOn(a1), [[2]], 'a1 heard only of the seq that was new in the last one')
  t.same(deletionsOn(b1), [], 'bob is told nothing')
  t.same(await deletionsOf(bob), [], 'and nothing is deleted for him')
})

eachMode(t, 'refused deletes store nothing and tell nobody', async (t, mode) => {
  const tb = await startTestBroker(t, mode)
  const { bob, a1, a2, c1 } = await setUp(t, tb)
  const conversation = Number((await sendText(a1, { user: bob }, 'one')).sendAck!.conversation)
  const count = async () => Number((await tb.broker.db.query<{ n: number }>('SELECT count(*)::int AS n FROM deletions'))[0].n)

  t.same(await deleteForMe(a1, conversation, []), { error: INVALID_ARGUMENT }, 'no seqs: INVALID_ARGUMENT')
  t.same(await deleteForMe(a1, conversation, Array.from({ length: 101 }, (_, i) => i + 1)), { error: INVALID_ARGUMENT },
    '101 seqs: INVALID_ARGUMENT')
  t.same(await deleteForMe(a1, 999, [1]), { error: UNKNOWN_CONVERSATION }, 'a conversation that does not exist: UNKNOWN_CONVERSATION')
  t.same(await deleteForMe(c1, conversation, [1]), { error: NOT_MEMBER }, "someone else's conversation: NOT_MEMBER")
  t.equal(await count(), 0, 'no deletion is stored')
  t.same(await deleteForMe(a1, conversation, [2, 3]), { conversation, seqs: [] }, 'seqs with no message: accepted, none deleted')
  t.equal(await count(), 0, '  and none stored')

  t.same(await deleteForMe(a1, conversation, [1]), { conversation, seqs: [1] }, 'marker: an accepted delete')
  await a2.next(d => Boolean(d.deleted), 'the deletion on a2')
  t.same(deletionsOn(a2), [[1]], "alice's other device heard only of the accepted delete")
})

eachMode(t, 'in a group: every member is told of a recall; system messages cannot be recalled', async (t, mode) => {
  const tb = await startTestBroker(t, mode)
  const { bob, carol, a1, a2, b1, c1 } = await setUp(t, tb)
  const group = Number((await ask(a1, { groupCreate: { name: 'g', members: [bob, carol] } })).group!.group) // seq 1: GroupCreated
  await sendText(a1, { group }, 'oops') // seq 2

  t.same(await recall(a1, group, 1), { error: FORBIDDEN }, 'the GroupCreated system message, even by its actor: FORBIDDEN')
  t.same(await recall(b1, group, 2), { error: FORBIDDEN }, "another member's message: FORBIDDEN")
  t.same(await recall(a1, group, 2), { conversation: group, seq: 2 }, 'the sender recalls her message')
  for (const [name, device] of [['bob', b1], ['carol', c1], ["alice's other device", a2]] as const) {
    await device.next(d => d.recall?.seq === 2, `the recall on ${name}`)
    t.same(recallsOn(device), [2], `${name} is told`)
  }
  t.same((await historyOf(c1, group)).map(m => [m.seq, m.recalled, m.hasContent]), [[1, false, true], [2, true, false]],
    "carol's history shows it recalled")
})

// Issue 3 §6: a device whose session is gone (and the RecallEvent and DeletedEvent in it) learns of
// them from the conversation list: each summary names the seqs recalled, and those its user deleted,
// that the cursor the device asks from had not seen.
eachMode(t, 'the conversation list names what was recalled and deleted since the cursor', async (t, mode) => {
  const tb = await startTestBroker(t, mode)
  const { alice, bob, a1, b1 } = await setUp(t, tb)
  const b2 = await connectAs(tb, 'bob', 'b2')
  closeAtEnd(t, b2)
  const conversation = Number((await sendText(a1, { user: bob }, 'one')).sendAck!.conversation)
  await sendText(a1, { user: bob }, 'two')
  await sendText(b1, { user: alice }, 'three')
  const list = async (device: Device, cursor: Uint8Array) => {
    const page = (await ask(device, { syncConversations: { cursor } })).conversations!
    const summary = (page.conversations ?? []).find(c => Number(c.conversation) === conversation)
    return {
      cursor: page.cursor!,
      changes: summary ? { recalled: (summary.recalled ?? []).map(Number), deleted: (summary.deleted ?? []).map(Number) } : null,
    }
  }
  const everything = new Uint8Array()
  const before = (await list(b1, everything)).cursor
  t.ok(before.length > 0, 'b1 holds a cursor, as a device that has the three messages does')
  t.same((await list(b1, before)).changes, null, 'nothing has changed since it')

  t.same(await recall(a1, conversation, 2), { conversation, seq: 2 }, 'alice recalls seq 2')
  t.same(await deleteForMe(b2, conversation, [1, 3]), { conversation, seqs: [1, 3] }, "bob deletes seqs 1 and 3 for himself on b2")
  t.same((await list(b1, before)).changes, { recalled: [2], deleted: [1, 3] },
    "bob's device with the old cursor is told both, though it may have lost the events")
  t.same((await list(a1, before)).changes, { recalled: [2], deleted: [] }, "alice's: the recall, not bob's deletions")
  t.same((await list(b1, everything)).changes, { recalled: [2], deleted: [1, 3] }, 'from the empty cursor too (the whole list)')
  const after = (await list(b1, before)).cursor
  t.notSame(Buffer.from(after), Buffer.from(before), 'the cursor moved past the changes')
  t.same((await list(b1, after)).changes, null, 'and from there nothing is left to tell')

  t.same(await deleteForMe(b2, conversation, [1]), { conversation, seqs: [1] }, 'a repeated deletion')
  t.same((await list(b1, after)).changes, null, '  changes nothing and moves no cursor')
  t.same(await recall(a1, conversation, 2), { conversation, seq: 2 }, 'nor does a repeated recall')
  t.same((await list(b1, after)).changes, null, '  either')
})
