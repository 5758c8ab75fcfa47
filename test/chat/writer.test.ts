// Issue 3 §3: concurrent sends share transactions (group commit), in the order they were appended.
import t, { type Test } from 'tap'
import { createMessageWriter } from '../../broker/chat/writer.ts'
import { createLogger } from '../../broker/log.ts'
import { openHistory } from '../../broker/server.ts'
import { migrate } from '../../broker/storage/migrate.ts'
import { changeContact } from '../../broker/storage/contacts.ts'
import { addMembers, appendSystemMessage, insertGroup, lockGroup, removeMembers } from '../../broker/storage/groups.ts'
import { createPlanCache, directConversation, forgetPlanned, planSends } from '../../broker/storage/messages.ts'
import { setPrivacy } from '../../broker/storage/profiles.ts'
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
  t.same(writer.stats(), { batches: 1, sends: 1, planReads: 1 })
  // Without an interval the first of these would be taken at once, alone, and the rest after it.
  const outcomes = await Promise.all([1, 2, 3, 4, 5].map(send))
  t.same(outcomes.map(o => o.ok ? o.message.seq : -1), [2, 3, 4, 5, 6], 'stored in order')
  t.same(writer.stats(), { batches: 2, sends: 6, planReads: 1 },
    'the sends appended within the interval share one batch, planned from what the first batch read')
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

// A batch whose conversations and 1:1 pairs the writer has read before is written without reading
// first. What it relied on can change elsewhere (here through storage, as another node changes it):
// the write then finds out, stores nothing of that plan, and the batch is read and planned again.
eachMode(t, 'a batch planned from earlier reads, and changes made elsewhere meanwhile', async (t, mode) => {
  const db = await migratedHistory(t, mode)
  const [alice, bob, carol, dave, erin] = await Promise.all(['alice', 'bob', 'carol', 'dave', 'erin'].map(async login => (await insertUser(db, login, null))!.id))
  const group = await db.transaction(tx => insertGroup(tx, 'g', alice, [alice, bob]))
  const withDave = await db.transaction(tx => directConversation(tx, alice, dave))
  const withErin = await db.transaction(tx => directConversation(tx, alice, erin))
  const writer = createMessageWriter(db, createLogger('error'), 50)
  const content = wmq.Content.encode({ text: 'hi' }).finish()
  let id = 0
  const toGroup = (sender = alice, clientMsgId = new Uint8Array([++id])) =>
    writer.append({ sender, clientMsgId, conversation: group, content, toGroup: true })
  const direct = (conversation: number, recipient: number) =>
    writer.append({ sender: alice, clientMsgId: new Uint8Array([++id]), conversation, recipient, content, toGroup: false })
  const result = (o: Awaited<ReturnType<typeof toGroup>>) => o.ok ? { seq: o.message.seq, repeat: o.repeat, members: [...o.members].sort() } : o.reason
  const stored = async (conversation: number) =>
    (await db.query<{ n: number }>('SELECT count(*)::int AS n FROM messages WHERE conversation_id = $1', [conversation]))[0].n

  const first = new Uint8Array([200])
  t.same(result(await toGroup(alice, first)), { seq: 1, repeat: false, members: [alice, bob].sort() }, 'the first send to the group')
  t.same(result(await toGroup()), { seq: 2, repeat: false, members: [alice, bob].sort() }, 'the second')
  t.equal(writer.stats().planReads, 1, 'the second was planned from what the first read')
  t.same(result(await toGroup(alice, first)), { seq: 1, repeat: true, members: [alice, bob].sort() },
    'a repeat of the first, which a plan from the cache cannot know of: the unique key finds it, and it is answered as a repeat')
  t.equal(await stored(group), 2, 'and not stored again')

  await db.transaction(async tx => {
    const locked = (await lockGroup(tx, group))!
    await addMembers(tx, group, [carol], locked.lastSeq + 1)
    await appendSystemMessage(tx, group, alice, content, Date.now())
  })
  const reads = writer.stats().planReads
  t.same(result(await toGroup()), { seq: 4, repeat: false, members: [alice, bob, carol].sort() },
    'after carol was added elsewhere, the next message goes to her too, after the system message')
  t.equal(writer.stats().planReads, reads + 1, 'its write found the members changed, and the batch was read again')
  t.same(result(await toGroup(carol)), { seq: 5, repeat: false, members: [alice, bob, carol].sort() }, 'carol may write')

  await db.transaction(async tx => {
    const locked = (await lockGroup(tx, group))!
    await appendSystemMessage(tx, group, alice, content, Date.now())
    await removeMembers(tx, group, [bob], locked.lastSeq + 1)
  })
  t.same(result(await toGroup(bob)), 'not a member', 'bob, removed elsewhere, may no longer write')
  t.same(result(await toGroup()), { seq: 7, repeat: false, members: [alice, carol].sort() }, 'and gets no more messages')
  t.equal(await stored(group), 7, 'seqs 1..7: nothing stored for the refused send, no gap')

  t.same(result(await direct(withDave, dave)), { seq: 1, repeat: false, members: [alice, dave].sort() }, 'alice writes to dave')
  t.same(result(await direct(withErin, erin)), { seq: 1, repeat: false, members: [alice, erin].sort() }, 'and to erin')
  const before = writer.stats().planReads
  t.same(result(await direct(withDave, dave)), { seq: 2, repeat: false, members: [alice, dave].sort() }, 'again to dave')
  t.equal(writer.stats().planReads, before, 'planned from the cache')
  t.ok((await db.transaction(tx => changeContact(tx, dave, alice, 'block', '', Date.now()))).ok, 'dave blocks alice elsewhere')
  t.same(result(await direct(withDave, dave)), 'refused', 'her next send to dave is refused')
  t.equal(await stored(withDave), 2, 'and not stored')
  t.ok(await setPrivacy(db, erin, { startChat: wmq.Audience.CONTACTS }), 'erin takes new chats from contacts only, elsewhere')
  t.same(result(await direct(withErin, erin)), 'refused', "alice, who is not erin's contact and has no reply from her, is refused")
  t.equal(await stored(withErin), 1, 'nothing stored')
})

// The writer's cache is bounded by its entries (a conversation and each of its members one each, a
// 1:1 pair one): the count must follow what is kept and forgotten, or the bound means nothing.
eachMode(t, "the plan cache counts what it keeps", async (t, mode) => {
  const db = await migratedHistory(t, mode)
  const [alice, bob, carol] = await Promise.all(['alice', 'bob', 'carol'].map(async login => (await insertUser(db, login, null))!.id))
  const group = await db.transaction(tx => insertGroup(tx, 'g', alice, [alice, bob, carol]))
  const direct = await db.transaction(tx => directConversation(tx, alice, bob))
  const content = wmq.Content.encode({ text: 'hi' }).finish()
  const sends = [
    { sender: alice, clientMsgId: new Uint8Array([1]), conversation: group, content, toGroup: true },
    { sender: alice, clientMsgId: new Uint8Array([2]), conversation: direct, recipient: bob, content, toGroup: false },
  ]
  const cache = createPlanCache()
  await planSends(db, sends, cache)
  t.equal(cache.entries, (1 + 3) + (1 + 2) + 1, 'the group and its 3 members, the 1:1 conversation and its 2, the pair')
  await planSends(db, sends, cache)
  t.equal(cache.entries, 8, 'read again: the same entries, replaced, not counted twice')
  forgetPlanned(cache, sends.slice(0, 1))
  t.equal(cache.entries, 4, 'the group forgotten')
  forgetPlanned(cache, sends)
  t.equal(cache.entries, 0, 'and the rest')
  t.equal(cache.conversations.size + cache.allowed.size, 0, 'nothing kept')
})
