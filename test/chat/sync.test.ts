// Issue 3 §6: the conversation list since a cursor, and bounded history pages.
import t from 'tap'
import { ask, closeAtEnd, connectDevice, eachMode, sendText, startTestBroker, wmq } from '../harness.ts'

eachMode(t, 'conversation list and history', async (t, mode) => {
  const tb = await startTestBroker(t, mode, { historyPage: 4, historyPageMax: 6, historyPageBytes: 400 })
  const [alice, bob, carol] = [await tb.addUser('alice'), await tb.addUser('bob'), await tb.addUser('carol')]
  const connect = async (login: string, device: string) =>
    connectDevice(tb.mqttUrl, { clientId: device, username: login, password: await tb.token(login) })
  const [a1, b1, c1] = [await connect('alice', 'a1'), await connect('bob', 'b1'), await connect('carol', 'c1')]
  closeAtEnd(t, a1, b1, c1)

  for (let i = 1; i <= 10; i++) await sendText(a1, { user: bob }, `ab${i}`)
  const withCarol = Number((await sendText(c1, { user: alice }, 'hi from carol')).sendAck!.conversation)
  const withBob = Number((await sendText(b1, { user: alice }, 'ab11 from bob')).sendAck!.conversation)

  const list = (await ask(a1, { syncConversations: {} })).conversations!
  const rows = list.conversations!.map(c => ({ conversation: Number(c.conversation), last: Number(c.lastSeq), unread: Number(c.unread),
    peer: Number(c.peer), preview: c.last?.content?.text }))
  t.ok(withBob < withCarol, 'the conversation with bob came first')
  t.same(rows, [
    { conversation: withBob, last: 11, unread: 1, peer: bob, preview: 'ab11 from bob' },
    { conversation: withCarol, last: 1, unread: 1, peer: carol, preview: 'hi from carol' },
  ], "alice's list: in conversation order, with last seq, unread (her own messages are read) and a preview")
  t.equal(list.more, false)

  const bobsList = (await ask(b1, { syncConversations: {} })).conversations!.conversations!
  t.same(bobsList.map(c => [Number(c.unread), Number(c.readSeq)]), [[0, 11]], 'bob has read what he answered')

  const cursor = list.cursor!
  t.ok(cursor.length > 0 && cursor.length < 40, `the cursor is a few bytes (${cursor.length})`)
  t.same((await ask(a1, { syncConversations: { cursor } })).conversations!.conversations, [], 'nothing new since the cursor')
  await sendText(c1, { user: alice }, 'another')
  const since = (await ask(a1, { syncConversations: { cursor } })).conversations!
  t.same(since.conversations!.map(c => [Number(c.conversation), Number(c.unread)]), [[withCarol, 2]], 'only the conversation that changed')
  const limited = (await ask(a1, { syncConversations: { limit: 1 } })).conversations!
  t.same([limited.conversations!.length, limited.more], [1, true], 'a limited page says there is more')

  const page = async (request: wmq.ISyncHistory) => (await ask(a1, { syncHistory: { conversation: withBob, ...request } })).history!
  const first = await page({})
  t.same(first.messages!.map(m => Number(m.seq)), [1, 2, 3, 4], 'HISTORY_PAGE messages when no limit is asked, ascending')
  t.same([first.more, Number(first.lastSeq)], [true, 11])
  t.equal(first.messages![0].clientMsgId?.length, 8, "alice's own messages carry her client_msg_id")
  t.equal(first.messages![0].content?.text, 'ab1')
  const next = await page({ afterSeq: 4, limit: 100 })
  t.same(next.messages!.map(m => Number(m.seq)), [5, 6, 7, 8, 9, 10], 'a larger limit is cut to HISTORY_PAGE_MAX')
  const older = await page({ beforeSeq: 11, limit: 3 })
  t.same([older.messages!.map(m => Number(m.seq)), older.more], [[8, 9, 10], true], 'before a seq: the nearest older ones, ascending')
  const last = await page({ afterSeq: 10 })
  t.same([last.messages!.map(m => Number(m.seq)), last.more], [[11], false], 'the end of the history')

  const long = 'x'.repeat(150)
  for (let i = 0; i < 4; i++) await sendText(c1, { user: alice }, long)
  const bounded = (await ask(a1, { syncHistory: { conversation: withCarol, afterSeq: 2, limit: 4 } })).history!
  const bytes = wmq.HistoryPage.encode(bounded).finish().length
  t.ok(bounded.messages!.length < 4 && bounded.more, `a page stops at HISTORY_PAGE_BYTES: ${bounded.messages!.length} messages, ${bytes} bytes`)
  t.ok(bytes <= 400 + 8 + 3 * bounded.messages!.length, `the messages fit in the bound; the page adds only its framing (${bytes} bytes)`)
  const big = 'y'.repeat(600)
  await sendText(c1, { user: alice }, big)
  const single = (await ask(a1, { syncHistory: { conversation: withCarol, afterSeq: 6 } })).history!
  t.same(single.messages!.map(m => m.content?.text), [big], 'one message larger than the bound still comes, alone')

  t.equal((await ask(c1, { syncHistory: { conversation: withBob } })).error?.code, wmq.ErrorCode.NOT_MEMBER, "carol cannot read alice and bob's")
  t.equal((await ask(c1, { syncHistory: { conversation: 9999 } })).error?.code, wmq.ErrorCode.UNKNOWN_CONVERSATION)
})
