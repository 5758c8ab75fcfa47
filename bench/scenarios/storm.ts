// (d) storm: many sessions cut off at once and returning at once. Devices in 1:1 pairs; one side of
// every pair (the odd devices) goes through one shared link, and at `cut` seconds that link resets
// every connection (both ends get RST, as when a cell or a NAT box dies). Those devices stay away
// for `offline` seconds while their partners keep sending to them, then all reconnect in the same
// instant. Measured: how fast they are all back, catch-up time (from each CONNACK until everything
// acknowledged for the device before it has arrived), and loss, duplicates and order.
import { performance } from 'node:perf_hooks'
import { Generator } from '../generator.ts'
import { deliveriesChartOf, latencyChartOf, ms, n0, phaseRows, type PhaseSummary, type Table } from '../report.ts'
import { cpuNote, measuredPhase, requireTargets, timingsFor, withTarget, type Scenario } from './common.ts'
import { cpuRows } from './throughput.ts'

interface Return {
  sessions: number
  /** Seconds from the return until this share of the sessions had its CONNACK. */
  half: number | null
  ninety: number | null
  all: number | null
  back: number
}

export const storm: Scenario = {
  name: 'storm',
  summary: 'half the sessions reset at once, kept away while messages queue for them, then all back at once',
  async run({ args, progress }) {
    const devices = args.devices ?? 4000
    const cutAt = 10
    const offline = args.offline ?? 20
    const seconds = Math.max(args.seconds ?? 60, cutAt + offline + 10)
    const interval = args.interval ?? 5
    const drainSeconds = args.drain ?? 60
    const phases: PhaseSummary[] = []
    const returns: Return[] = [] // one per phase, in the same order
    const targets: Record<string, Record<string, string>> = {}
    const senders = Array.from({ length: devices / 2 }, (_, k) => 2 * k)
    const away = senders.map((a) => a + 1)
    for (const name of requireTargets(args)) {
      await withTarget(name, args, async (target) => {
        targets[name] = target.describe()
        // Loopback, but a storm is where replies are slow: weakmq devices give a request 10 s.
        const timings = timingsFor(target, undefined, { ...args, ackTimeout: args.ackTimeout ?? 10_000 }, 60)
        const generator = await Generator.create({
          target, devices, topology: { kind: 'pairs' }, sharedLink: (i) => i % 2 === 1, seed: args.seed, ...timings,
          connectConcurrency: args.concurrency ?? 100,
        })
        const result: Return = { sessions: away.length, half: null, ninety: null, all: null, back: 0 }
        let watcher: NodeJS.Timeout | null = null
        try {
          await generator.connectAll((n) => progress.update(n / devices, `${name}: connecting ${n}/${devices}`))
          // Warm-up, not reported: one message per pair makes the conversations (weakmq creates a
          // 1:1 conversation at its first message), so the storm is measured in steady traffic.
          await generator.runPhase({
            name: 'warm-up', traffic: { kind: 'window', window: 1 }, senders, maxMessages: senders.length, seconds: 60, drainSeconds: 60,
            onTick: (status) => progress.phase(`${name} (not reported)`, status),
          })
          progress.clear()
          const rejoin = () => {
            const started = performance.now()
            generator.rejoin(away)
            watcher = setInterval(() => {
              const back = away.filter((i) => generator.devices[i].connected).length
              const at = (performance.now() - started) / 1000
              result.back = back
              if (result.half === null && back >= away.length / 2) result.half = at
              if (result.ninety === null && back >= away.length * 0.9) result.ninety = at
              if (back === away.length) {
                result.all = at
                clearInterval(watcher!)
              }
            }, 10)
          }
          phases.push(await measuredPhase(generator, target, {
            name: `${away.length} sessions cut`, traffic: { kind: 'rate', perSecond: senders.length / interval }, senders, seconds, drainSeconds,
            events: [{ atSeconds: cutAt, run: () => generator.cutOff(away) }, { atSeconds: cutAt + offline, run: rejoin }],
          }, progress))
          returns.push(result)
        } finally {
          if (watcher) clearInterval(watcher)
          await generator.close()
        }
      })
    }
    const backIn = (r: Return, at: number | null) => (at === null ? `not all (${r.back}/${r.sessions})` : `${at.toFixed(2)} s`)
    const table: Table = {
      columns: ['', ...phases.map((p) => p.target)],
      rows: [
        ['sessions cut off at once', ...returns.map((r) => n0(r.sessions))],
        ['back after: 50% / 90%', ...returns.map((r) => `${backIn(r, r.half)} / ${backIn(r, r.ninety)}`)],
        ['back after: all', ...returns.map((r) => backIn(r, r.all))],
        ['reconnects / s (all back)', ...returns.map((r) => (r.all ? n0(r.sessions / r.all) : '-'))],
        ['catch-up p50 / p90', ...phases.map((p) => `${ms(p.catchUp.p50)} / ${ms(p.catchUp.p90)}`)],
        ['catch-up p99 / max (count)', ...phases.map((p) => `${ms(p.catchUp.p99)} / ${ms(p.catchUp.max)} (${p.catchUp.count})`)],
        ['catch-ups unfinished at the end', ...phases.map((p) => n0(p.unfinishedCatchUps))],
        ...phaseRows(phases).filter((row) => !row[0].startsWith('catch-up')),
        ['history syncs (gap fills / reconnect syncs)', ...phases.map((p) => `${n0(p.wire.gapFills)} / ${n0(p.wire.syncs)}`)],
        ...cpuRows(phases),
      ],
    }
    return {
      scenario: 'storm',
      title: `Reconnect storm: ${away.length} of ${devices} sessions reset at once at ${cutAt} s, all back at ${cutAt + offline} s`,
      parameters: { devices, cutAt, offline, seconds, interval, drainSeconds, seed: args.seed, sessions: args.sessions, broker: args.broker },
      targets,
      table,
      notes: [
        'Latency counts from the send, so messages sent to a device while it was away include the time it was away.',
        ...phases.map(cpuNote),
      ],
      data: { returns: Object.fromEntries(phases.map((p, i) => [p.target, returns[i]])), phases },
      charts: [latencyChartOf('Storm: delivery latency', phases), deliveriesChartOf('Storm: deliveries per second', phases)],
    }
  },
}
