// Issue 3 §3: concurrent sends share transactions (group commit), in the order they were appended.
import t, { type Test } from 'tap'
import { createMessageWriter } from '../../broker/chat/writer.ts'
import { createLogger } from '../../broker/log.ts'
import { openHistory } from '../../broker/server.ts'
import { migrate } from '../../broker/storage/migrate.ts'
import { changeContact } from '../../broker/storage/contacts.ts'
import { directConversation } from '../../broker/storage/messages.ts'
import { insertUser } from '../../broker/storage/users.ts'
import { wmq } from '../../schema/generated/chat.js'
import { eachMode, freshStorage, testConfig, type Mode } from '../harness.ts'

/** A fresh, migrated history database for one test. */
async function migratedHistory (t: Test, mode: Mode) {
  const storage = await freshStorage(mode)
  const db = await openHistory(testConfig(storage.overrides))
  t.teardown(async () => { await db.close(); await storage.drop() })
  await migrate(db)
  return db
}

eachMode(t, 'group commit', async (t, mode) => {
  const db = await migratedHistory(t, mode)
  const alice = (await insertUser(db, 'alice', null))!.id
  const bob = (await insertUser(db, 'bob', null))!.id
  const conversation = await db.transaction(tx => directConversation(tx, alice, bob))
  const writer = createMessageWriter(db, createLogger('error'), 50)
  const content = wmq.Content.encode({ text: 'hi' }).finish()

  const outcomes = await Promise.all(Array.from({ length: 200 }, (_, i) =>
    writer.append({ sender: i % 2 ? alice : bob, clientMsgId: new Uint8Array([i >> 8, i & 255]), conversation, content, toGroup: false })))
  const seqs = outcomes.map(o => o.ok ? o.message.seq : -1)
  t.same(seqs, Array.from({ length: 200 }, (_, i) => i + 1), 'seqs 1..200 in the order the sends were appended')
  const { batches, sends } = writer.stats()
  t.equal(sends, 200)
  t.ok(batches < 20 && batches >= 4, `200 sends in ${batches} transactions: batched, and no batch over SEND_BATCH_MAX = 50`)

  const lone = await writer.append({ sender: alice, clientMsgId: new Uint8Array([9, 9, 9]), conversation, content, toGroup: false })
  t.ok(lone.ok && lone.message.seq === 201, 'an idle writer commits a lone send at once')
  t.equal(writer.stats().batches, batches + 1)
})

// Under load a batch is taken no sooner than the interval after the one before it; an idle writer
// does not wait. No timing is asserted: the sends appended while the interval runs share one batch.
eachMode(t, 'batches at most one per interval under load', async (t, mode) => {
  const db = await migratedHistory(t, mode)
  const alice = (await insertUser(db, 'alice', null))!.id
  const bob = (await insertUser(db, 'bob', null))!.id
  const conversation = await db.transaction(tx => directConversation(tx, alice, bob))
  // 3 s: far longer than a commit here, so the test cannot depend on how fast the machine is.
  const writer = createMessageWriter(db, createLogger('error'), 50, 3000)
  const content = wmq.Content.encode({ text: 'hi' }).finish()
  const send = (i: number) => writer.append({ sender: alice, clientMsgId: new Uint8Array([i]), conversation, content, toGroup: false })

  t.ok((await send(0)).ok, 'an idle writer takes a lone send at once')
  await writer.flush() // idle again
  t.same(writer.stats(), { batches: 1, sends: 1 })
  // Without an interval the first of these would be taken at once, alone, and the rest after it.
  const outcomes = await Promise.all([1, 2, 3, 4, 5].map(send))
  t.same(outcomes.map(o => o.ok ? o.message.seq : -1), [2, 3, 4, 5, 6], 'stored in order')
  t.same(writer.stats(), { batches: 2, sends: 6 }, 'the sends appended within the interval share one batch')
})

// Issue 7 §4 on the send path: the writer checks blocks for the whole batch inside its transaction,
// so a send refused by its recipient takes no seq and the others of the batch are stored in order.
eachMode(t, 'a refused 1:1 send in a batch stores nothing and leaves no gap', async (t, mode) => {
  const db = await migratedHistory(t, mode)
  const [alice, bob, carol] = await Promise.all(['alice', 'bob', 'carol'].map(async login => (await insertUser(db, login, null))!.id))
  const withBob = await db.transaction(tx => directConversation(tx, alice, bob))
  const withCarol = await db.transaction(tx => directConversation(tx, alice, carol))
  const blocked = await db.transaction(tx => changeContact(tx, carol, alice, 'block', '', Date.now()))
  t.ok(blocked.ok, 'carol blocks alice')
  const writer = createMessageWriter(db, createLogger('error'), 50)
  const content = wmq.Content.encode({ text: 'hi' }).finish()

  const outcomes = await Promise.all(Array.from({ length: 30 }, (_, i) => writer.append({
    sender: alice, clientMsgId: new Uint8Array([i]), content, toGroup: false,
    ...(i % 3 === 1 ? { conversation: withCarol, recipient: carol } : { conversation: withBob, recipient: bob }),
  })))
  t.same(outcomes.filter((_, i) => i % 3 === 1).map(o => o.ok ? 'stored' : o.reason), Array(10).fill('refused'),
    'every send to carol, who blocks alice: refused')
  t.same(outcomes.filter((_, i) => i % 3 !== 1).map(o => o.ok ? o.message.seq : -1), Array.from({ length: 20 }, (_, i) => i + 1),
    'the sends to bob: seqs 1..20, no gap')
  t.ok(writer.stats().batches < 30, `in ${writer.stats().batches} transactions`)
  const rows = await db.query<{ n: number }>('SELECT count(*)::int AS n FROM messages WHERE conversation_id = $1', [withCarol])
  t.equal(rows[0].n, 0, 'no message stored in the conversation with carol')

  const fromCarol = await writer.append({ sender: carol, clientMsgId: new Uint8Array([1]), conversation: withCarol, recipient: alice, content, toGroup: false })
  t.same(fromCarol.ok ? 'stored' : fromCarol.reason, 'sender blocks', 'carol, who blocks alice, may not write to her and is told why')
  const mine = await db.transaction(tx => changeContact(tx, alice, carol, 'block', '', Date.now()))
  t.ok(mine.ok, 'alice blocks carol too')
  const own = await writer.append({ sender: alice, clientMsgId: new Uint8Array([99]), conversation: withCarol, recipient: carol, content, toGroup: false })
  t.same(own.ok ? 'stored' : own.reason, 'refused', "alice is told carol's refusal first, which says nothing of a block")
})

// The writer reads a batch while the one before it is being written: a repeat of a send of the
// batch just before is planned as new, meets the unique key, and is planned again as a repeat.
eachMode(t, 'a repeat in the batch right after its first send', async (t, mode) => {
  const db = await migratedHistory(t, mode)
  const alice = (await insertUser(db, 'alice', null))!.id
  const bob = (await insertUser(db, 'bob', null))!.id
  const conversation = await db.transaction(tx => directConversation(tx, alice, bob))
  const writer = createMessageWriter(db, createLogger('error'), 1) // one send per batch
  const content = wmq.Content.encode({ text: 'hi' }).finish()
  const ids = [1, 1, 2, 2, 3, 3, 4, 4]
  const outcomes = await Promise.all(ids.map(id =>
    writer.append({ sender: alice, clientMsgId: new Uint8Array([id]), conversation, recipient: bob, content, toGroup: false })))
  t.same(outcomes.map(o => o.ok ? [o.message.seq, o.repeat] : o.reason),
    [[1, false], [1, true], [2, false], [2, true], [3, false], [3, true], [4, false], [4, true]],
    'each repeat gets its first send\'s seq, as a repeat')
  const rows = await db.query<{ n: number }>('SELECT count(*)::int AS n FROM messages')
  t.equal(rows[0].n, 4, 'four rows')
})
