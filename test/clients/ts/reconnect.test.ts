// Issue 4 "Shown by": through a flaky link, resets in the middle of sending and of receiving, with
// messages in flight both ways: the application sees every message exactly once and in order, and
// the broker stores each message once (DESIGN 3, 5).
import t from 'tap'
import { eachMode, startTestBroker } from '../../harness.ts'
import { linkTo, sdkClient, seqTexts, urlOf, waitFor } from './sdk.ts'

const N = 45

eachMode(t, 'resets mid-send and mid-delivery: every message once, in order', async (t, mode) => {
  const tb = await startTestBroker(t, mode)
  await tb.addUser('alice')
  const bob = await tb.addUser('bob')
  const senderLink = await linkTo(t, tb)
  const receiverLink = await linkTo(t, tb)
  const a1 = await sdkClient(t, tb, 'alice', 'a1', { url: urlOf(senderLink), deliveryReceipts: true, deliveryReceiptDelayMs: 5 })
  const b1 = await sdkClient(t, tb, 'bob', 'b1', { url: urlOf(receiverLink), deliveryReceipts: true, deliveryReceiptDelayMs: 5 })
  await Promise.all([a1.client.whenSynced(), b1.client.whenSynced()])

  const texts = Array.from({ length: N }, (_, i) => `m${i + 1}`)
  const expected = texts.map((text, i) => [i + 1, text] as const)
  const acked: number[] = []
  a1.client.on('sent', result => {
    acked.push(result.seq)
    // The sender's link resets with the rest of its wave in flight.
    if (acked.length === 3 || acked.length === 35) senderLink.resetAll()
  })
  b1.client.on('message', m => {
    // The receiver's link resets while deliveries (QoS 1, PUBACK pending) are in flight.
    if (m.seq === 5 || m.seq === 22 || m.seq === 40) receiverLink.resetAll()
  })

  // Wave 1: sent in a burst; the third acknowledgement resets the sender's link.
  const sends = texts.slice(0, 15).map(text => a1.client.send({ user: bob }, text))
  await waitFor(() => acked.length >= 3, 'three acknowledgements')
  // Wave 2: made while the sender may be reconnecting: they wait in the outbox.
  sends.push(...texts.slice(15, 30).map(text => a1.client.send({ user: bob }, text)))
  await waitFor(() => acked.length >= 30, 'waves 1 and 2 acknowledged')
  // Wave 3: the sender's link stalls (bytes pile up in it) and resets before they get through.
  senderLink.stallAll(10_000)
  sends.push(...texts.slice(30).map(text => a1.client.send({ user: bob }, text)))
  await waitFor(() => a1.client.pendingSends().every(s => s.attempts > 0), 'wave 3 published into the stalled link')
  senderLink.resetAll()

  const results = await Promise.all(sends)
  t.same(results.map(r => r.seq), expected.map(([seq]) => seq), 'every send resolves with its own seq, in the order they were made')
  await waitFor(() => b1.messages.length >= N, `${N} messages on the receiver`)
  await b1.client.ping() // anything still queued for the receiver arrives before the pong
  await a1.client.ping()

  t.same(seqTexts(b1.messages), expected, 'the receiver application saw each message exactly once, in seq order')
  t.same(seqTexts(a1.messages), expected, "the sender's own timeline too (placed by the acknowledgements)")
  const rows = await tb.broker.db.query<{ n: number, distinct: number }>(
    'SELECT count(*)::int AS n, count(DISTINCT content)::int AS distinct FROM messages')
  t.same(rows[0], { n: N, distinct: N }, 'the broker stored each message once')
  t.ok(senderLink.counters.resets >= 3 && receiverLink.counters.resets >= 3, 'the links were reset')
  t.ok(a1.client.stats().connects >= 4, `the sender reconnected after each reset (${a1.client.stats().connects} connects)`)
  t.ok(b1.client.stats().connects >= 4, `the receiver too (${b1.client.stats().connects} connects)`)
  t.ok(a1.client.stats().republished >= N - 30, `sends in flight at a reset were published again (${a1.client.stats().republished})`)
  t.ok(a1.states.includes('reconnecting') && a1.client.state === 'online', 'the state went through reconnecting and back to online')
  t.same([...a1.errors, ...b1.errors], [], 'no errors reported')
  t.comment(`sender ${JSON.stringify(a1.client.stats())}; receiver ${JSON.stringify(b1.client.stats())}`)
})
