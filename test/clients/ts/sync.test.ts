// Gaps are filled through sync (DESIGN 1, 5): a delivery lost while the device is online is pulled
// after the gap wait; messages lost with the device's broker session (the embedded broker
// restarted) are fetched by the catch-up after the reconnect. The application sees each once, in order.
import t from 'tap'
import { memoryStore } from '../../../clients/ts/index.ts'
import { eachMode, startTestBroker, wmq } from '../../harness.ts'
import { sdkClient, seqTexts, waitFor } from './sdk.ts'

eachMode(t, 'a delivery lost while online is pulled after the gap wait', async (t, mode) => {
  const tb = await startTestBroker(t, mode)
  await tb.addUser('alice')
  const bob = await tb.addUser('bob')
  const a1 = await sdkClient(t, tb, 'alice', 'a1')
  const b1 = await sdkClient(t, tb, 'bob', 'b1', { gapWaitMs: 300 })
  await Promise.all([a1.client.whenSynced(), b1.client.whenSynced()])

  // The broker "loses" the delivery of seq 3 to b1 (as a lost queue or a failed fan-out would).
  const aedes = tb.broker.aedes
  const forward = aedes.authorizeForward.bind(aedes)
  let dropped = 0
  aedes.authorizeForward = (client, packet) => {
    if (client.id === 'b1' && packet.topic === `u/${bob.toString(36)}` && wmq.Downlink.decode(packet.payload as Buffer).message?.seq === 3) {
      dropped++
      return null
    }
    return forward(client, packet)
  }

  for (let i = 1; i <= 5; i++) await a1.client.send({ user: bob }, `m${i}`)
  await waitFor(() => b1.messages.length === 5, 'five messages on b1')
  await b1.client.ping()
  t.equal(dropped, 1, 'the delivery of seq 3 was dropped')
  t.same(seqTexts(b1.messages), [[1, 'm1'], [2, 'm2'], [3, 'm3'], [4, 'm4'], [5, 'm5']], 'the application saw 1..5 once, in order')
  t.ok(b1.client.stats().fills >= 1, 'seq 3 came through a history pull')
  t.equal(b1.client.stats().connects, 1, 'without a reconnect')
})

eachMode(t, 'messages lost with the broker session are fetched after the reconnect', async (t, mode) => {
  const tb = await startTestBroker(t, mode)
  await tb.addUser('alice')
  const bob = await tb.addUser('bob')
  const a1 = await sdkClient(t, tb, 'alice', 'a1')
  const store = memoryStore() // the device's storage: kept across the two runs of bob's app
  const before = await sdkClient(t, tb, 'bob', 'b1', { store })
  await Promise.all([a1.client.whenSynced(), before.client.whenSynced()])
  await a1.client.send({ user: bob }, 'm1')
  await waitFor(() => before.messages.length === 1, 'm1 on b1')
  await before.client.close() // bob's app ends; the broker queues for b1 in its session

  for (let i = 2; i <= 4; i++) await a1.client.send({ user: bob }, `m${i}`)
  // Embedded: sessions are in memory, so the restart loses b1's queue. Services: Redis keeps it,
  // and the catch-up meets the same messages again (dropped as duplicates).
  await tb.restart()
  const after = await sdkClient(t, tb, 'bob', 'b1', { store })
  await waitFor(() => after.messages.length === 3, 'm2..m4 on b1 after the restart')
  await a1.client.whenSynced() // a1 reconnected to the new broker by itself
  await a1.client.send({ user: bob }, 'm5')
  await waitFor(() => after.messages.length === 4, 'm5 on b1')
  await after.client.ping()

  t.same(seqTexts(before.messages), [[1, 'm1']])
  t.same(seqTexts(after.messages), [[2, 'm2'], [3, 'm3'], [4, 'm4'], [5, 'm5']], 'each message once, in order, none replayed')
  if (mode === 'embedded') t.ok(after.client.stats().fills >= 1, 'the lost queue was fetched through sync')
  t.ok(a1.states.includes('reconnecting'), 'the sender went through reconnecting')
})

// Issue 3 §6: recalls and deletions are part of "everything". Made while bob's app is closed and
// then lost with his session (embedded: the restart), they reach the application from the catch-up;
// with a kept session (services) they may come twice, as the event and from the list.
eachMode(t, 'recalls and deletions made while the session was lost reach the application after the reconnect', async (t, mode) => {
  const tb = await startTestBroker(t, mode)
  await tb.addUser('alice')
  const bob = await tb.addUser('bob')
  const a1 = await sdkClient(t, tb, 'alice', 'a1')
  const b2 = await sdkClient(t, tb, 'bob', 'b2') // bob's other device, which deletes
  const store = memoryStore()
  const before = await sdkClient(t, tb, 'bob', 'b1', { store })
  await Promise.all([a1.client.whenSynced(), b2.client.whenSynced(), before.client.whenSynced()])
  const first = await a1.client.send({ user: bob }, 'm1')
  await a1.client.send({ user: bob }, 'm2')
  await a1.client.send({ user: bob }, 'm3')
  await waitFor(() => before.messages.length === 3, 'm1..m3 on b1')
  await before.client.close()

  await a1.client.recall(first.conversation, 2)
  await waitFor(() => b2.messages.length === 3, 'm1..m3 on b2')
  t.same((await b2.client.deleteForMe(first.conversation, [3])).seqs, [3], 'b2 deletes m3 for bob')
  await tb.restart()

  const after = await sdkClient(t, tb, 'bob', 'b1', { store })
  const recalls: number[] = []
  const deleted: number[][] = []
  after.client.on('recall', r => { if (r.conversation === first.conversation) recalls.push(r.seq) })
  after.client.on('deleted', d => { if (d.conversation === first.conversation) deleted.push(d.seqs) })
  await after.client.whenSynced()
  await waitFor(() => recalls.length > 0 && deleted.length > 0, 'the recall and the deletion on b1')
  t.same([...new Set(recalls)], [2], "b1's application hears of the recall of m2")
  t.same([...new Set(deleted.map(seqs => seqs.join()))], ['3'], 'and of the deletion of m3')
  if (mode === 'embedded') t.same([recalls.length, deleted.length], [1, 1], 'once each: the lost session brought nothing')
  t.same(after.messages, [], 'and no message again')
})

// PROTOCOL.md, SyncConversations: a stored cursor the broker cannot read (one of an older broker,
// say) is dropped for the whole list: the catch-up still finds what the device missed.
eachMode(t, 'a stored list cursor the broker cannot read is replaced by the whole list', async (t, mode) => {
  const tb = await startTestBroker(t, mode)
  await tb.addUser('alice')
  const bob = await tb.addUser('bob')
  const a1 = await sdkClient(t, tb, 'alice', 'a1')
  const store = memoryStore()
  const before = await sdkClient(t, tb, 'bob', 'b1', { store })
  await Promise.all([a1.client.whenSynced(), before.client.whenSynced()])
  await a1.client.send({ user: bob }, 'm1')
  await waitFor(() => before.messages.length === 1, 'm1 on b1')
  await before.client.close()
  t.not(store.saved!.cursor, '', 'a cursor was stored')
  await store.save({ ...store.saved!, cursor: Buffer.from([1, 7]).toString('base64') }) // unreadable: version 1, flags 7

  await a1.client.send({ user: bob }, 'm2')
  await tb.restart() // embedded: b1's queue is lost, so only the catch-up can bring m2
  const after = await sdkClient(t, tb, 'bob', 'b1', { store })
  await waitFor(() => after.messages.length === 1, 'm2 on b1 after the restart')
  await after.client.whenSynced()
  t.same(seqTexts(after.messages), [[2, 'm2']], 'm2 arrives, once')
  t.match(tb.logs.join('\n'), /request refused .*code=INVALID_ARGUMENT/, 'the broker refused the unreadable cursor')
  t.not(store.saved!.cursor, 'AQc=', 'and a cursor the broker gave replaced it')
  t.same((await after.client.syncConversations({ since: store.saved!.cursor })).conversations, [], 'one it reads: nothing new since it')
})
