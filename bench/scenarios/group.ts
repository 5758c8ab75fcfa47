// (a2) group: one group of 200 on loopback; a few members send in a closed loop, every other
// member's application must get each message. The figure is deliveries per second (issue 3).
// Mosquitto: the same members subscribed to one group topic (each sender also gets its own
// message back, MQTT 3.1.1 has no "no local": counted as echoes, not deliveries).
import { Generator } from '../generator.ts'
import { deliveriesChartOf, latencyChartOf, n0, phaseRows, steadyRate, type PhaseSummary } from '../report.ts'
import { cpuNote, measuredPhase, requireTargets, timingsFor, withTarget, type Scenario } from './common.ts'
import { cpuRows } from './throughput.ts'

export const group: Scenario = {
  name: 'group',
  summary: 'one group of 200 on loopback, a few senders in a closed loop: deliveries per second',
  async run({ args, progress }) {
    const size = args.groupSize ?? args.devices ?? 200
    const senders = args.senders ?? 10
    const window = args.window ?? 2
    const seconds = args.seconds ?? 20
    const drainSeconds = args.drain ?? 20
    const phases: PhaseSummary[] = []
    const targets: Record<string, Record<string, string>> = {}
    for (const name of requireTargets(args)) {
      await withTarget(name, args, async (target) => {
        targets[name] = target.describe()
        const generator = await Generator.create({
          target, devices: size, topology: { kind: 'groups', size, senders }, seed: args.seed, ...timingsFor(target, undefined, args, 60),
          connectConcurrency: args.concurrency ?? 50,
        })
        try {
          await generator.connectAll((n) => progress.update(n / size, `${name}: connecting ${n}/${size}`))
          phases.push(await measuredPhase(generator, target, { name: `${senders} senders x ${window}`, traffic: { kind: 'window', window }, seconds, drainSeconds }, progress))
        } finally {
          await generator.close()
        }
      })
    }
    const notes = phases.map((p) => `${p.target}: ${n0(p.deliveredPerSecond)} deliveries/s over the send phase (${n0(steadyRate(p.deliveriesPerSecond))}/s median second), ` +
      `${n0(p.acknowledged / Math.max(p.sendSeconds, 0.001))} messages/s acknowledged`)
    notes.push(...phases.map(cpuNote))
    return {
      scenario: 'group',
      title: `Group of ${size} on loopback (${senders} senders, ${window} messages each in flight)`,
      parameters: { groupSize: size, senders, window, seconds, drainSeconds, seed: args.seed, sessions: args.sessions, broker: args.broker },
      targets,
      table: {
        columns: ['', ...phases.map((p) => p.target)],
        rows: [
          ['deliveries / s (median second)', ...phases.map((p) => n0(steadyRate(p.deliveriesPerSecond)))],
          ...phaseRows(phases),
          ['echoes (own message back)', ...phases.map((p) => n0(p.echoes))],
          ...cpuRows(phases),
        ],
      },
      notes,
      data: { phases },
      charts: [latencyChartOf(`Group of ${size}: delivery latency`, phases), deliveriesChartOf(`Group of ${size}: deliveries per second`, phases)],
    }
  },
}
