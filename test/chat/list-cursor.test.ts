// Issue 3 §6: the conversation-list cursor skips no change, whatever order transactions commit in
// (list-cursor.ts); a list longer than a page is a round that misses nothing changed during it; a
// cursor the broker did not give is refused.
import pg from 'pg'
import t from 'tap'
import { listCursorBytes, readListCursor, type ListCursor } from '../../broker/chat/list-cursor.ts'
import { RequestError } from '../../broker/chat/errors.ts'
import { advanceReadState } from '../../broker/storage/receipts.ts'
import { ask, closeAtEnd, connectAs, eachMode, requireServices, sendText, startTestBroker, wmq, type Device } from '../harness.ts'

const { INVALID_ARGUMENT } = wmq.ErrorCode

/** One page: the conversations with their last and read seqs, the cursor and `more`. */
async function page (device: Device, cursor: Uint8Array, limit = 0) {
  const reply = (await ask(device, { syncConversations: { cursor, limit } })).conversations!
  return {
    listed: (reply.conversations ?? []).map(c => ({ conversation: Number(c.conversation), last: Number(c.lastSeq), read: Number(c.readSeq) })),
    cursor: reply.cursor!,
    more: reply.more,
  }
}

t.test('a cursor encodes and reads back, and anything else is refused', async t => {
  const cursors: ListCursor[] = [
    { seen: null, round: null },
    { seen: { xmin: 754, xmax: 754, running: [] }, round: null },
    { seen: { xmin: 2 ** 40 + 3, xmax: 2 ** 40 + 9, running: [2 ** 40 + 3, 2 ** 40 + 6] }, round: { snapshot: { xmin: 2 ** 40 + 5, xmax: 2 ** 40 + 12, running: [2 ** 40 + 5] }, after: 77 } },
  ]
  for (const cursor of cursors) t.same(readListCursor(listCursorBytes(cursor)), cursor, `round trip of ${JSON.stringify(cursor)}`)
  t.same(readListCursor(new Uint8Array()), { seen: null, round: null }, 'empty bytes: the whole list')
  t.ok(listCursorBytes(cursors[1]).length <= 8, 'a snapshot with nothing running is a few bytes')
  const good = listCursorBytes(cursors[2])
  const bad: Array<[string, Uint8Array]> = [
    ['another version', Uint8Array.of(2, 0)],
    ['unknown flags', Uint8Array.of(1, 4)],
    ['cut short', good.subarray(0, good.length - 1)],
    ['bytes after the end', Uint8Array.from([...good, 0])],
    ['a running transaction past xmax', listCursorBytes({ seen: { xmin: 10, xmax: 12, running: [10] }, round: null }).map((b, i) => i === 5 ? 5 : b)],
    ['xmin 0', listCursorBytes({ seen: { xmin: 0, xmax: 3, running: [] }, round: null })],
    ['an xid 0 in its low 32 bits', listCursorBytes({ seen: { xmin: 2 ** 32, xmax: 2 ** 32 + 3, running: [] }, round: null })],
    ['a number past 2^53', Uint8Array.of(1, 1, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x7f, 0, 0)],
  ]
  const codeOf = (bytes: Uint8Array) => {
    try {
      readListCursor(bytes)
      return 'read'
    } catch (err) {
      return err instanceof RequestError ? err.code : (err as Error).message
    }
  }
  for (const [what, bytes] of bad) t.equal(codeOf(bytes), INVALID_ARGUMENT, `${what}: INVALID_ARGUMENT`)
})

eachMode(t, 'a list longer than a page: a round misses nothing changed while it was paged', async (t, mode) => {
  const tb = await startTestBroker(t, mode)
  const alice = await tb.addUser('alice')
  for (const login of ['bob', 'carol', 'dave']) await tb.addUser(login)
  const [a1, b1, c1, d1] = [await connectAs(tb, 'alice', 'a1'), await connectAs(tb, 'bob', 'b1'),
    await connectAs(tb, 'carol', 'c1'), await connectAs(tb, 'dave', 'd1')]
  closeAtEnd(t, a1, b1, c1, d1)
  const conversationOf = async (device: Device) => Number((await sendText(device, { user: alice }, 'hi')).sendAck!.conversation)
  const [withBob, withCarol, withDave] = [await conversationOf(b1), await conversationOf(c1), await conversationOf(d1)]

  const first = await page(a1, new Uint8Array(), 1)
  t.same([first.listed.map(c => c.conversation), first.more], [[withBob], true], 'page 1 of 3')
  await sendText(b1, { user: alice }, 'bob again')     // a conversation the round has passed
  await sendText(d1, { user: alice }, 'dave again')    // one it has not reached
  const second = await page(a1, first.cursor, 1)
  t.same([second.listed.map(c => c.conversation), second.more], [[withCarol], true], 'page 2')
  const third = await page(a1, second.cursor, 1)
  t.same([third.listed, third.more], [[{ conversation: withDave, last: 2, read: 0 }], false], 'page 3 shows dave as he is now')
  const next = await page(a1, third.cursor)
  t.same(next.listed, [{ conversation: withBob, last: 2, read: 0 }, { conversation: withDave, last: 2, read: 0 }],
    'the next list brings bob\'s new message, which the round had passed, and dave again (he changed after the round began)')
  t.same((await page(a1, next.cursor)).listed, [], 'and then nothing')
})

eachMode(t, 'a cursor the broker did not give', async (t, mode) => {
  const tb = await startTestBroker(t, mode)
  const alice = await tb.addUser('alice')
  await tb.addUser('bob')
  const [a1, b1] = [await connectAs(tb, 'alice', 'a1'), await connectAs(tb, 'bob', 'b1')]
  closeAtEnd(t, a1, b1)
  const conversation = Number((await sendText(b1, { user: alice }, 'hi')).sendAck!.conversation)
  const refused = await ask(a1, { syncConversations: { cursor: Uint8Array.of(1, 7) } })
  t.equal(refused.error?.code, INVALID_ARGUMENT, 'unreadable bytes: INVALID_ARGUMENT')
  t.notOk(refused.conversations, '  and no list')
  t.same((await page(a1, new Uint8Array())).listed.map(c => c.conversation), [conversation], 'the device goes on: the whole list')
  const future = listCursorBytes({ seen: { xmin: 2 ** 50 + 5, xmax: 2 ** 50 + 5, running: [] }, round: null })
  t.same((await page(a1, future)).listed.map(c => c.conversation), [conversation],
    'a snapshot from the future (a restored database, say) counts as nothing seen: the whole list, nothing skipped')
})

// The race the numeric cursor lost: a change made in a transaction that commits after a later one
// (another node's batch, or a receipt beside a batch). Postgres server only: PGlite has one
// connection, so its transactions never overlap.
t.test('a change that commits after a later one is still listed', async t => {
  if (!await requireServices(t)) return
  const tb = await startTestBroker(t, 'services')
  const alice = await tb.addUser('alice')
  await tb.addUser('bob')
  await tb.addUser('carol')
  const [a1, b1, c1] = [await connectAs(tb, 'alice', 'a1'), await connectAs(tb, 'bob', 'b1'), await connectAs(tb, 'carol', 'c1')]
  closeAtEnd(t, a1, b1, c1)
  const withBob = Number((await sendText(b1, { user: alice }, 'one')).sendAck!.conversation)
  await sendText(b1, { user: alice }, 'two')
  const start = await page(a1, new Uint8Array())

  const other = new pg.Client({ connectionString: tb.config.databaseUrl! })
  await other.connect()
  t.teardown(() => other.end())
  const tx = { query: async (sql: string, params?: unknown[]) => (await other.query(sql, params)).rows, exec: async () => {} }
  await other.query('BEGIN')
  await advanceReadState(tx, withBob, alice, 2, 2) // alice read both on another device: a receipt, not yet committed
  const withCarol = Number((await sendText(c1, { user: alice }, 'from carol')).sendAck!.conversation) // committed now
  const middle = await page(a1, start.cursor)
  t.same(middle.listed.map(c => c.conversation), [withCarol], "the list sees carol's message, not the receipt still running")
  await other.query('COMMIT')
  const after = await page(a1, middle.cursor)
  t.same(after.listed, [{ conversation: withBob, last: 2, read: 2 }],
    'the receipt that committed after it comes in the next list, though its transaction began first')
  t.same((await page(a1, after.cursor)).listed, [], 'and then nothing')
})
