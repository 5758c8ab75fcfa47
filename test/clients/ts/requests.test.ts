// A dead link is noticed sooner than keepalive (issue 4 §1): a silently dropped connection (a NAT
// that forgot it: no FIN, no RST) is found by the bound on a request's answer, or, when the device
// only listens, by the idle probe. The keepalive here is an hour, far past the test's wait limit,
// so nothing but those two can explain the reconnect.
import t from 'tap'
import { eachMode, startTestBroker } from '../../harness.ts'
import { linkTo, sdkClient, seqTexts, urlOf, waitFor } from './sdk.ts'

const HOUR = 3600

eachMode(t, 'a silent drop is found by an unanswered request', async (t, mode) => {
  const tb = await startTestBroker(t, mode)
  await tb.addUser('alice')
  const bob = await tb.addUser('bob')
  const link = await linkTo(t, tb)
  const a1 = await sdkClient(t, tb, 'alice', 'a1', { url: urlOf(link), keepalive: HOUR, probeIdleMs: 0, requestTimeoutMs: 1000 })
  const b1 = await sdkClient(t, tb, 'bob', 'b1')
  await Promise.all([a1.client.whenSynced(), b1.client.whenSynced()])
  const reasons: string[] = []
  a1.client.on('state', (state, reason) => { if (state === 'reconnecting') reasons.push(reason ?? '') })

  link.dropAll()
  const result = await a1.client.send({ user: bob }, 'sent into a dead link')
  t.equal(result.seq, 1, 'the send is acknowledged after all')
  t.match(a1.client.stats(), { requestTimeouts: 1, deadLinks: 1, connects: 2, probes: 0 }, 'one request timed out, the link was replaced once')
  t.match(reasons, [/^request \d+ \(sendAck\) unanswered after \d+ ms$/], 'the reconnect says why')
  t.equal(link.counters.drops, 1)
  await waitFor(() => b1.messages.length === 1, 'the message on b1')
  t.same(seqTexts(b1.messages), [[1, 'sent into a dead link']])
  const rows = await tb.broker.db.query<{ n: number }>('SELECT count(*)::int AS n FROM messages')
  t.equal(rows[0].n, 1, 'stored once')
})

eachMode(t, 'a silent drop of a listening device is found by the idle probe', async (t, mode) => {
  const tb = await startTestBroker(t, mode)
  const alice = await tb.addUser('alice')
  await tb.addUser('bob')
  const link = await linkTo(t, tb)
  const a1 = await sdkClient(t, tb, 'alice', 'a1', { url: urlOf(link), keepalive: HOUR, probeIdleMs: 300, requestTimeoutMs: 1000 })
  const b1 = await sdkClient(t, tb, 'bob', 'b1')
  await Promise.all([a1.client.whenSynced(), b1.client.whenSynced()])
  await waitFor(() => a1.client.stats().probes > 0, 'a probe of the idle link')
  t.equal(a1.client.stats().probeTimeouts, 0, 'a live link answers its probes')

  link.dropAll()
  await waitFor(() => a1.client.stats().connects === 2, 'a reconnect without any request')
  t.match(a1.client.stats(), { probeTimeouts: 1, requestTimeouts: 0, deadLinks: 1 }, 'found by the probe')
  await b1.client.send({ user: alice }, 'are you there?')
  await waitFor(() => a1.messages.length === 1, 'the message reaches the listener')
  t.same(seqTexts(a1.messages), [[1, 'are you there?']])
})
