// (a) throughput: 1:1 text on loopback, end to end (send, commit, SendAck, delivery). First a
// closed loop (each device keeps `window` messages not yet acknowledged and delivered) finds the
// sustained rate; then an open loop at half that rate measures latency (issue 3: >= 10,000 msg/s,
// p99 < 50 ms at half rate). Mosquitto runs the same two phases, and a third at weakmq's half
// rate so the latencies compare at one load. With --nodes N, weakmq is N nodes on one database and
// Redis prefix, and the two devices of every pair are on different nodes (issue 6: 1 and 2 nodes).
import { Generator } from '../generator.ts'
import { deliveriesChartOf, latencyChartOf, n0, ms, phaseRows, steadyRate, type PhaseSummary, type Table } from '../report.ts'
import { cpuNote, measuredPhase, requireTargets, timingsFor, withTarget, type Scenario } from './common.ts'

export function cpuRows(phases: PhaseSummary[]): string[][] {
  const roles = [...new Set(phases.flatMap((p) => Object.keys(p.cpu?.byRole ?? {})))]
  return [
    ...roles.map((role) => [`CPU ${role} (% of one core)`, ...phases.map((p) => (p.cpu?.byRole[role] === undefined ? '-' : `${p.cpu.byRole[role]}%`))]),
    ['machine busy / outside the run', ...phases.map((p) => (p.cpu ? `${p.cpu.machineBusy}% / ${p.cpu.others}%` : '-'))],
    ['Postgres transactions / s (xact_commit)', ...phases.map((p) => n0(p.commitsPerSecond))],
  ]
}

export const throughput: Scenario = {
  name: 'throughput',
  summary: '1:1 text on loopback: sustained msg/s (closed loop), then latency at half that rate; weakmq and Mosquitto',
  async run({ args, progress }) {
    const devices = args.devices ?? 100
    const window = args.window ?? 10
    const seconds = args.seconds ?? 20
    const drainSeconds = args.drain ?? 15
    const nodes = args.nodes ?? 1
    const phases: PhaseSummary[] = []
    const sustained: Record<string, number> = {}
    const connects: Record<string, unknown> = {}
    const targets: Record<string, Record<string, string>> = {}
    for (const name of requireTargets(args)) {
      await withTarget(name, args, async (target) => {
        targets[name] = target.describe()
        const generator = await Generator.create({
          target, devices, topology: { kind: 'pairs' }, seed: args.seed, ...timingsFor(target, undefined, args, 60),
          connectConcurrency: args.concurrency ?? 50,
        })
        try {
          connects[name] = await generator.connectAll((n) => progress.update(n / devices, `${name}: connecting ${n}/${devices}`))
          const max = await measuredPhase(generator, target, { name: 'max', traffic: { kind: 'window', window }, seconds, drainSeconds }, progress)
          phases.push(max)
          sustained[name] = steadyRate(max.deliveriesPerSecond)
          progress.log(`${name}: sustained ${n0(sustained[name])} msg/s (median of per-second deliveries)`)
          const half = sustained[name] / 2
          phases.push(await measuredPhase(generator, target, { name: `half (${n0(half)}/s)`, traffic: { kind: 'rate', perSecond: half }, seconds, drainSeconds }, progress))
          const weakmqHalf = sustained.weakmq / 2
          if (name !== 'weakmq' && weakmqHalf > 0) {
            phases.push(await measuredPhase(generator, target, { name: `weakmq's half (${n0(weakmqHalf)}/s)`, traffic: { kind: 'rate', perSecond: weakmqHalf }, seconds, drainSeconds }, progress))
          }
        } finally {
          await generator.close()
        }
      })
    }
    const table: Table = {
      columns: ['', ...phases.map((p) => `${p.target} ${p.phase}`)],
      rows: [
        ['sustained msg/s (median of seconds)', ...phases.map((p) => (p.phase === 'max' ? n0(steadyRate(p.deliveriesPerSecond)) : '-'))],
        ...phaseRows(phases),
        ['ack latency p99', ...phases.map((p) => ms(p.ackLatency.p99))],
        ['send schedule lag p99 (open loop)', ...phases.map((p) => (p.schedulerLag ? ms(p.schedulerLag.p99) : '-'))],
        ...cpuRows(phases),
      ],
    }
    const notes: string[] = []
    if (sustained.weakmq !== undefined) {
      notes.push(`issue 3 target >= 10,000 msg/s sustained: weakmq measured ${n0(sustained.weakmq)} msg/s` +
        (sustained.weakmq < 10_000 ? ` (short by ${Math.round(100 - sustained.weakmq / 100)}%)` : ' (met)'))
      const half = phases.find((p) => p.target.startsWith('weakmq') && p.phase.startsWith('half'))
      if (half) notes.push(`issue 3 target p99 < 50 ms at half rate: weakmq measured p99 ${ms(half.latency.p99)} at ${n0(sustained.weakmq / 2)} msg/s` + (half.latency.p99 < 50 ? ' (met)' : ' (not met)'))
    }
    if (sustained.weakmq !== undefined && sustained.mosquitto) {
      notes.push(`ratio weakmq / Mosquitto, sustained msg/s: ${(sustained.weakmq / sustained.mosquitto).toFixed(3)} (${n0(sustained.weakmq)} / ${n0(sustained.mosquitto)})`)
      const ours = phases.find((p) => p.target.startsWith('weakmq') && p.phase.startsWith('half'))
      const theirs = phases.find((p) => p.target === 'mosquitto' && p.phase.startsWith("weakmq's half"))
      if (ours && theirs) notes.push(`at the same load (${n0(sustained.weakmq / 2)} msg/s) p99: weakmq ${ms(ours.latency.p99)}, Mosquitto ${ms(theirs.latency.p99)} (ratio ${(ours.latency.p99 / Math.max(0.001, theirs.latency.p99)).toFixed(1)})`)
    }
    notes.push(...phases.map(cpuNote))
    return {
      scenario: 'throughput',
      title: `Throughput, 1:1 text on loopback (${devices} devices in ${devices / 2} pairs, every device sends; ` +
        `weakmq: ${nodes === 1 ? '1 node' : `${nodes} nodes, the two devices of a pair on different ones`}, ${args.sessions} sessions)`,
      parameters: { devices, window, seconds, drainSeconds, seed: args.seed, sessions: args.sessions, nodes, broker: args.broker },
      targets,
      table,
      notes,
      data: { sustained, connects, phases },
      charts: [latencyChartOf('Throughput: delivery latency', phases), deliveriesChartOf('Throughput: deliveries per second', phases)],
    }
  },
}
