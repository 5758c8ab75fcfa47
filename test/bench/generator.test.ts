// The load generator's books must balance: on a clean link every message sent is acknowledged and
// delivered once, and the bytes scenario's packet sizes add up to what the links counted. A tiny
// run on loopback against the embedded broker (PGlite in memory, in this process). No timing
// assertions: the figures themselves belong in BENCHMARKS.md, not in tests.
import t from 'tap'
import { Generator, type GeneratorOptions } from '../../bench/generator.ts'
import { Ledger, messageKey, messageText, parseMessageText, TEXT_LENGTH } from '../../bench/ledger.ts'
import { profiles } from '../../bench/lab/profiles.ts'
import { Metrics } from '../../bench/metrics.ts'
import { measureBytes } from '../../bench/scenarios/bytes.ts'
import type { Arguments } from '../../bench/scenarios/common.ts'
import { startWeakmq } from '../../bench/targets.ts'

const args: Arguments = {
  targets: ['weakmq'], seed: 7, sessions: 'memory', broker: 'inprocess', history: 'pglite', plainDeadLink: false,
}

const timings = {
  keepaliveSeconds: 60, reconnectMs: 200, ackTimeoutMs: 5000, probeIdleMs: 0, connectTimeoutMs: 10_000,
  gapWaitMs: 300, historyLimit: 0, connectConcurrency: 4,
}

type Teardown = { teardown(fn: () => Promise<void>): void }

/** The embedded broker and a generator on it, closed in that order's reverse when the test ends. */
async function generatorOn(t: Teardown, options: Omit<GeneratorOptions, 'target' | 'seed' | keyof typeof timings>): Promise<Generator> {
  const target = await startWeakmq({ history: 'pglite', sessions: 'memory', process: 'inprocess' })
  let generator: Generator | null = null
  t.teardown(async () => {
    await generator?.close()
    await target.close()
  })
  generator = await Generator.create({ target, seed: 7, ...timings, ...options })
  return generator
}

t.test('a message text is 20 characters that name its sender and number', async (t) => {
  const text = messageText(35, 1296, 1_700_000_000_000)
  t.equal(text.length, TEXT_LENGTH)
  t.same(parseMessageText(text), { sender: 35, n: 1296 })
  t.equal(parseMessageText('hello'), null)
})

t.test('the ledger counts a repeat as a duplicate, an older number as an order violation, a missing delivery as lost', async (t) => {
  const ledger = new Ledger(3)
  const metrics = new Metrics('unit')
  ledger.metrics = metrics
  for (const n of [1, 2, 3]) ledger.sent(messageKey(0, n), 0, [1, 2])
  for (const n of [1, 2, 3]) ledger.acked(messageKey(0, n))
  ledger.delivered(1, messageText(0, 1))
  ledger.delivered(1, messageText(0, 1))
  ledger.delivered(1, messageText(0, 3))
  ledger.delivered(1, messageText(0, 2))
  ledger.delivered(2, messageText(0, 1))
  ledger.delivered(0, messageText(0, 2)) // the sender's own message back: an echo
  t.equal(metrics.sent, 3)
  t.equal(metrics.acknowledged, 3)
  t.equal(metrics.expected, 6)
  t.equal(metrics.delivered, 4)
  t.equal(metrics.duplicates, 1)
  t.equal(metrics.orderViolations, 1)
  t.equal(metrics.echoes, 1)
  t.same(ledger.shortfall(metrics), { lost: 2, unacknowledged: 0, deliveredUnacknowledged: 0 })
})

t.test('pairs on loopback: sent = acknowledged = delivered, nothing lost or repeated', async (t) => {
  const generator = await generatorOn(t, { devices: 4, topology: { kind: 'pairs' } })
  const connected = await generator.connectAll()
  t.equal(connected.devices, 4)
  const phase = await generator.runPhase({ name: 'tiny', traffic: { kind: 'window', window: 2 }, maxMessages: 12, seconds: 60, drainSeconds: 30 })
  const m = phase.metrics
  t.equal(m.sent, 12)
  t.equal(m.acknowledged, 12)
  t.equal(m.expected, 12)
  t.equal(m.delivered, 12)
  t.equal(phase.lost, 0)
  t.equal(phase.unacknowledged, 0)
  t.equal(m.duplicates, 0)
  t.equal(m.orderViolations, 0)
  t.equal(m.stray, 0)
  t.equal(m.latency.totalCount, 12, 'one latency sample per delivery')
  t.ok(phase.settled)
  t.ok(phase.bytes.up > 0 && phase.bytes.down > 0, 'the devices counted their bytes')
})

t.test('a group: every other member gets each message once', async (t) => {
  const generator = await generatorOn(t, { devices: 4, topology: { kind: 'groups', size: 4, senders: 2 } })
  await generator.connectAll()
  const phase = await generator.runPhase({ name: 'group', traffic: { kind: 'window', window: 1 }, maxMessages: 6, seconds: 60, drainSeconds: 30 })
  t.equal(phase.metrics.acknowledged, 6)
  t.equal(phase.metrics.delivered, 18, 'three recipients per message')
  t.equal(phase.lost, 0)
  t.equal(phase.metrics.duplicates, 0)
})

t.test('every link reset mid-run: the devices reconnect, re-send, and the application still sees each message once', async (t) => {
  const generator = await generatorOn(t, { devices: 4, topology: { kind: 'pairs' }, profile: profiles.loopback })
  await generator.connectAll()
  let phaseSent = 0
  const phase = await generator.runPhase({
    name: 'resets', traffic: { kind: 'window', window: 3 }, maxMessages: 40, seconds: 60, drainSeconds: 30,
    onTick: (status) => {
      // Once, as soon as some messages are on their way.
      if (phaseSent === 0 && status.metrics.sent > 10) {
        phaseSent = status.metrics.sent
        for (const link of generator.links) link.resetAll()
      }
    },
  })
  t.ok(phase.links.resets > 0, 'the links were reset')
  t.ok(phase.wire.connects >= 4, 'every device reconnected')
  t.equal(phase.metrics.acknowledged, phase.metrics.sent)
  t.equal(phase.metrics.delivered, phase.metrics.sent)
  t.equal(phase.lost, 0)
  t.equal(phase.metrics.duplicates, 0)
  t.equal(phase.metrics.orderViolations, 0)
})

t.test('bytes: every packet of a text is counted, on both links, and the packet sizes add up to the link counts', async (t) => {
  const result = await measureBytes('weakmq', args, 2)
  t.ok(result.settled, 'both texts delivered once')
  t.ok(result.packetsMatchLinks, 'packet sizes add up to the bytes the links carried')
  const kinds = result.firstMessagePackets.map((p) => `${p.link} ${p.direction} ${p.cmd}`).sort()
  t.same(kinds, [
    'recipient down publish', 'recipient up puback',
    'sender down publish', 'sender up puback', 'sender up publish',
  ], 'PUBLISH s (QoS 0, as the SDK sends it) + SendAck PUBLISH + its PUBACK on the sender link; PUBLISH + PUBACK on the recipient link')
  t.equal(result.sender.total, result.sender.up + result.sender.down)
  t.ok(result.sender.total > 0 && result.recipient.total > 0)
})
