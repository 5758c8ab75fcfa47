// The SDK against a real broker, on a good link: every call speaks the protocol of
// schema/chat.proto and gets its reply; events arrive typed; the application's timeline holds each
// message once, its own included (placed by the SendAck, DESIGN 7).
import t from 'tap'
import { ChatError, ErrorCode, type Receipt, type TypingEvent } from '../../../clients/ts/index.ts'
import { eachMode, startTestBroker } from '../../harness.ts'
import { sdkClient, seqTexts, waitFor } from './sdk.ts'

eachMode(t, 'send, receive, history, receipts, typing, recall, delete for me', async (t, mode) => {
  const tb = await startTestBroker(t, mode)
  const alice = await tb.addUser('alice')
  const bob = await tb.addUser('bob')
  const a1 = await sdkClient(t, tb, 'alice', 'a1')
  const a2 = await sdkClient(t, tb, 'alice', 'a2')
  const b1 = await sdkClient(t, tb, 'bob', 'b1', { deliveryReceipts: true, deliveryReceiptDelayMs: 10 })
  await Promise.all([a1, a2, b1].map(d => d.client.whenSynced()))
  t.equal(a1.client.state, 'online', 'online after connect')
  t.same([a1.client.user, b1.client.user], [alice, bob], 'a new device knows its user id once synced (from the Pong)')

  const receipts: Receipt[] = []
  a1.client.on('receipt', r => receipts.push(r))
  const typing: TypingEvent[] = []
  b1.client.on('typing', e => typing.push(e))

  const first = await a1.client.send({ user: bob }, 'hello bob')
  t.match(first, { conversation: Number, seq: 1, clientMsgId: /^[0-9a-f]{16}$/ }, 'send resolves on the SendAck')
  const conversation = first.conversation
  await waitFor(() => receipts.some(r => r.user === bob && r.deliveredSeq === 1), "bob's delivered receipt reaches alice")
  const second = await b1.client.send({ user: alice }, { text: 'hi alice' })
  t.equal(second.seq, 2)
  await waitFor(() => a1.messages.length === 2 && a2.messages.length === 2 && b1.messages.length === 2, 'two messages everywhere')
  t.same(seqTexts(a1.messages), [[1, 'hello bob'], [2, 'hi alice']], "a1's timeline: its own message (from the ack), then bob's")
  t.same(seqTexts(a2.messages), [[1, 'hello bob'], [2, 'hi alice']], "a2 gets a1's message as alice's")
  t.same(seqTexts(b1.messages), [[1, 'hello bob'], [2, 'hi alice']])
  t.match(a1.messages[0], { mine: true, peer: bob, group: false }, 'own message: mine, with its peer')
  t.match(a2.messages[0], { mine: true, peer: bob, sender: alice, clientMsgId: first.clientMsgId }, "a2 knows a1's message is alice's")
  t.match(b1.messages[0], { mine: false, sender: alice, peer: alice, clientMsgId: '' }, 'bob sees it from alice')
  t.equal(a1.client.user, alice, 'and keeps it')

  const third = await a1.client.send({ user: bob }, 'read me')
  await waitFor(() => b1.messages.length === 3, 'the third message on b1')
  const read = await b1.client.markRead(conversation, third.seq)
  t.match(read, { conversation, user: bob, readSeq: 3, deliveredSeq: 3 }, 'markRead resolves with the stored state')
  await waitFor(() => receipts.some(r => r.readSeq === 3), 'the read receipt reaches alice')

  a1.client.typing(conversation, true)
  await waitFor(() => typing.length > 0, 'typing reaches bob')
  t.same(typing[0], { conversation, user: alice, active: true })

  const page = await b1.client.history(conversation, { after: 0, limit: 10 })
  t.same({ seqs: page.messages.map(m => m.seq), more: page.more, lastSeq: page.lastSeq }, { seqs: [1, 2, 3], more: false, lastSeq: 3 }, 'history after 0')
  const older = await b1.client.history(conversation, { before: 3, limit: 1 })
  t.same([older.messages.map(m => m.seq), older.more], [[2], true], 'history before a seq: the newest below it')

  const recalls: number[] = []
  b1.client.on('recall', r => recalls.push(r.seq))
  t.same(await a1.client.recall(conversation, 1), { conversation, seq: 1 }, 'recall resolves')
  await waitFor(() => recalls.includes(1), 'bob hears of the recall')
  t.match((await b1.client.history(conversation)).messages[0], { seq: 1, recalled: true, content: null }, 'history shows it recalled')
  await t.rejects(b1.client.recall(conversation, 1), { code: ErrorCode.FORBIDDEN }, "bob may not recall alice's message")

  t.same(await b1.client.deleteForMe(conversation, [2]), { conversation, seqs: [2] }, 'delete for me')
  t.same((await b1.client.history(conversation)).messages.map(m => m.seq), [1, 3], "gone from bob's history only")
  t.same((await a1.client.history(conversation)).messages.map(m => m.seq), [1, 2, 3])

  await t.rejects(a1.client.send({ user: 9999 }, 'nobody'), ChatError, 'a refused send rejects with ChatError')
  t.same(a1.client.pendingSends(), [], 'and leaves the outbox')
  t.ok(typeof await a1.client.ping() === 'number', 'ping returns the server clock')
  t.same([...a1.errors, ...a2.errors, ...b1.errors], [], 'no errors reported')
})
