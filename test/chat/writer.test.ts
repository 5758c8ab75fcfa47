// Issue 3 §3: concurrent sends share transactions (group commit), in the order they were appended.
import t from 'tap'
import { createMessageWriter } from '../../broker/chat/writer.ts'
import { createLogger } from '../../broker/log.ts'
import { openHistory } from '../../broker/server.ts'
import { migrate } from '../../broker/storage/migrate.ts'
import { directConversation } from '../../broker/storage/messages.ts'
import { insertUser } from '../../broker/storage/users.ts'
import { wmq } from '../../schema/generated/chat.js'
import { eachMode, freshStorage, testConfig } from '../harness.ts'

eachMode(t, 'group commit', async (t, mode) => {
  const storage = await freshStorage(mode)
  const db = await openHistory(testConfig(storage.overrides))
  t.teardown(async () => { await db.close(); await storage.drop() })
  await migrate(db)
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
