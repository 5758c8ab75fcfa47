// `npm run bench -- throughput --nodes 2`: weakmq as two broker processes on one Postgres database
// and one Redis prefix, the two devices of every pair on different nodes. A tiny closed-loop run
// must still balance: every message sent is acknowledged and delivered once, after crossing from
// one node to the other. No timing assertions: the figures belong in BENCHMARKS.md.
import type { Socket } from 'node:net'
import t from 'tap'
import { Generator } from '../../bench/generator.ts'
import { startWeakmq } from '../../bench/targets.ts'
import { requireServices } from '../harness.ts'

const timings = {
  keepaliveSeconds: 60, reconnectMs: 200, ackTimeoutMs: 5000, probeIdleMs: 0, connectTimeoutMs: 10_000,
  gapWaitMs: 300, historyLimit: 0, connectConcurrency: 4,
}

t.test('several nodes need Redis sessions and the Postgres server', async (t) => {
  await t.rejects(startWeakmq({ history: 'postgres', sessions: 'memory', process: 'child', nodes: 2 }), /need Redis sessions/)
  await t.rejects(startWeakmq({ history: 'pglite', sessions: 'redis', process: 'inprocess', nodes: 2 }), /need Redis sessions/)
})

t.test('two nodes in Redis mode: pairs split over the nodes, every message delivered once across them', async (t) => {
  if (!await requireServices(t)) return
  const target = await startWeakmq({ history: 'postgres', sessions: 'redis', process: 'child', nodes: 2 })
  let generator: Generator | null = null
  t.teardown(async () => {
    await generator?.close()
    await target.close()
  })
  t.equal(target.describe().nodes, '2')
  const brokers = (await target.processes()).broker
  t.equal(new Set(brokers).size, 2, 'a broker process per node, both measured as broker')

  generator = await Generator.create({ target, devices: 6, topology: { kind: 'pairs' }, seed: 11, ...timings })
  await generator.connectAll()
  // Where each device's socket really goes, not where the target says it should.
  const ports = generator.devices.map((device) => (device.mqttClient!().stream as Socket).remotePort)
  t.equal(new Set(ports).size, 2, 'the devices are spread over both nodes')
  for (let i = 0; i < ports.length; i += 2) t.not(ports[i], ports[i + 1], `pair ${i}-${i + 1} is on different nodes`)

  const phase = await generator.runPhase({ name: 'tiny', traffic: { kind: 'window', window: 2 }, maxMessages: 30, seconds: 60, drainSeconds: 30 })
  const m = phase.metrics
  t.equal(m.sent, 30)
  t.equal(m.acknowledged, 30)
  t.equal(m.expected, 30)
  t.equal(m.delivered, 30, 'every message reached the partner on the other node')
  t.equal(phase.lost, 0)
  t.equal(phase.unacknowledged, 0)
  t.equal(m.duplicates, 0)
  t.equal(m.orderViolations, 0)
  t.equal(m.stray, 0)
  t.ok(phase.settled)
  t.ok(await target.rss(), 'memory is summed over the nodes')
  const loop = await target.loopDelay()
  t.ok(loop && loop.max > 0 && loop.max >= loop.p99, `the worst node's event-loop delay since the last ask: ${JSON.stringify(loop)}`)
})
