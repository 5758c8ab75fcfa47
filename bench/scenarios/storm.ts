// (d) storm: many sessions cut off at once and returning at once. `cut` devices receive and
// `senders` devices send, each sender writing 1:1 to its share of the cut devices in turn (cut
// device j is written by sender j % senders), so 10,000 cut sessions take about 11,000
// connections instead of 20,000. At `cutAt` seconds every cut device resets its own socket in the
// same instant (RST: the broker sees a reset on each, as when a cell or a NAT box dies and says
// so); they stay away for `offline` seconds while the senders keep writing to them, then all
// reconnect in the same instant. Measured: how fast they are all back, catch-up time (from each
// CONNACK until everything acknowledged for the device before it has arrived), and loss,
// duplicates and order.
//
// Open files: one socket per device in the generator and in the broker. SDK devices own their
// sockets, so they are cut by a reset on a shared loopback link instead (three sockets per cut
// device in the generator: the device's and both ends of the link).
import { performance } from 'node:perf_hooks'
import { Generator } from '../generator.ts'
import type { Progress } from '../progress.ts'
import { deliveriesChartOf, latencyChartOf, ms, n0, phaseRows, type PhaseSummary, type Table } from '../report.ts'
import type { Target } from '../targets.ts'
import { cpuNote, measuredPhase, requireTargets, timingsFor, withTarget, type Arguments, type Scenario } from './common.ts'
import { cpuRows } from './throughput.ts'

export interface StormPlan {
  /** Sessions cut off at once. */
  cut: number
  /** Devices that send, each to its share of the cut devices in turn. */
  senders: number
  cutAt: number
  offline: number
  /** Length of the send phase (the drain follows). */
  seconds: number
  /** Mean seconds between two texts to one cut device. */
  interval: number
  drainSeconds: number
}

export interface Return {
  sessions: number
  /** Seconds from the return until this share of the sessions had its CONNACK. */
  half: number | null
  ninety: number | null
  all: number | null
  back: number
}

const DEFAULT_CUT = 2000
/** Senders by default: one per cut device up to this many (11,000 connections for 10,000 cut). */
const DEFAULT_MOST_SENDERS = 1000

export function stormPlan(args: Arguments): StormPlan {
  // --devices N is the form of the runs recorded before --cut: N/2 pairs, one sender per cut device.
  const cut = args.cut ?? (args.devices !== undefined ? Math.floor(args.devices / 2) : DEFAULT_CUT)
  const senders = args.senders ?? (args.devices !== undefined ? cut : Math.min(cut, DEFAULT_MOST_SENDERS))
  if (!Number.isInteger(cut) || !Number.isInteger(senders) || senders > cut) {
    throw new Error(`storm: --senders (${senders}) must be a whole number no larger than --cut (${cut})`)
  }
  if ((cut + senders) % 2 !== 0) throw new Error(`storm: --cut plus --senders must be even (the generator pairs its devices), not ${cut} + ${senders}`)
  const cutAt = 10
  const offline = args.offline ?? 20
  return {
    cut, senders, cutAt, offline,
    seconds: Math.max(args.seconds ?? 60, cutAt + offline + 10),
    interval: args.interval ?? 5,
    drainSeconds: args.drain ?? 60,
  }
}

/**
 * Devices 0..senders-1 send; devices senders.. are cut. Cut device j belongs to sender j % senders,
 * and message n of a sender goes to its cut devices in turn.
 */
export function recipientOf(plan: StormPlan): (sender: number, n: number) => number {
  return (sender, n) => {
    const share = Math.ceil((plan.cut - sender) / plan.senders)
    return plan.senders + sender + ((n - 1) % share) * plan.senders
  }
}

/** One target through the storm: connect, one message to each cut device, cut, return, drain. */
export async function stormOn(target: Target, plan: StormPlan, args: Arguments, progress: Progress): Promise<{ phase: PhaseSummary; back: Return }> {
  const devices = plan.senders + plan.cut
  const senders = Array.from({ length: plan.senders }, (_, s) => s)
  const away = Array.from({ length: plan.cut }, (_, j) => plan.senders + j)
  const sdk = target.kind === 'weakmq' && args.client === 'sdk'
  // Loopback, but a storm is where replies are slow: weakmq devices give a request 10 s.
  const timings = timingsFor(target, undefined, { ...args, ackTimeout: args.ackTimeout ?? 10_000 }, 60)
  const generator = await Generator.create({
    target, devices, topology: { kind: 'pairs' }, recipientOf: recipientOf(plan), seed: args.seed, ...timings,
    sharedLink: sdk ? (i) => i >= plan.senders : undefined,
    connectConcurrency: args.concurrency ?? 100,
  })
  const back: Return = { sessions: plan.cut, half: null, ninety: null, all: null, back: 0 }
  let watcher: NodeJS.Timeout | null = null
  try {
    await generator.connectAll((n) => progress.update(n / devices, `${target.name}: connecting ${n}/${devices}`))
    // Warm-up, not reported: one message to each cut device makes the conversations (weakmq
    // creates a 1:1 conversation at its first message), so the storm is measured in steady
    // traffic. The first window goes out sender after sender, round after round, so sender s's
    // first `share` messages reach each of its cut devices once.
    await generator.runPhase({
      name: 'warm-up', traffic: { kind: 'window', window: Math.ceil(plan.cut / plan.senders) }, senders, maxMessages: plan.cut,
      seconds: 60, drainSeconds: 60,
      onTick: (status) => progress.phase(`${target.name} (not reported)`, status),
    })
    progress.clear()
    const rejoin = () => {
      const started = performance.now()
      generator.rejoin(away)
      watcher = setInterval(() => {
        const count = away.filter((i) => generator.devices[i].connected).length
        const at = (performance.now() - started) / 1000
        back.back = count
        if (back.half === null && count >= away.length / 2) back.half = at
        if (back.ninety === null && count >= away.length * 0.9) back.ninety = at
        if (count === away.length) {
          back.all = at
          clearInterval(watcher!)
        }
      }, 10)
    }
    const phase = await measuredPhase(generator, target, {
      name: `${plan.cut} sessions cut`, traffic: { kind: 'rate', perSecond: plan.cut / plan.interval }, senders,
      seconds: plan.seconds, drainSeconds: plan.drainSeconds,
      events: [{ atSeconds: plan.cutAt, run: () => generator.cutOff(away) }, { atSeconds: plan.cutAt + plan.offline, run: rejoin }],
    }, progress)
    return { phase, back }
  } finally {
    if (watcher) clearInterval(watcher)
    await generator.close()
  }
}

export const storm: Scenario = {
  name: 'storm',
  summary: 'sessions reset at once (--cut, written to by fewer --senders), kept away while messages queue for them, then all back at once',
  async run({ args, progress }) {
    const plan = stormPlan(args)
    const phases: PhaseSummary[] = []
    const returns: Return[] = [] // one per phase, in the same order
    const targets: Record<string, Record<string, string>> = {}
    for (const name of requireTargets(args)) {
      await withTarget(name, args, async (target) => {
        targets[name] = target.describe()
        const { phase, back } = await stormOn(target, plan, args, progress)
        phases.push(phase)
        returns.push(back)
      })
    }
    const backIn = (r: Return, at: number | null) => (at === null ? `not all (${r.back}/${r.sessions})` : `${at.toFixed(2)} s`)
    const table: Table = {
      columns: ['', ...phases.map((p) => p.target)],
      rows: [
        ['sessions cut off at once', ...returns.map((r) => n0(r.sessions))],
        ['senders (cut devices each)', ...returns.map(() => `${n0(plan.senders)} (${n0(Math.ceil(plan.cut / plan.senders))})`)],
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
    const { cut, senders, cutAt, offline, interval } = plan
    return {
      scenario: 'storm',
      title: `Reconnect storm: ${n0(cut)} sessions reset at once at ${cutAt} s, all back at ${cutAt + offline} s (${n0(senders)} senders, ${n0(cut + senders)} connections)`,
      parameters: { ...plan, devices: cut + senders, seed: args.seed, sessions: args.sessions, broker: args.broker, client: args.client ?? 'protocol' },
      targets,
      table,
      notes: [
        `Each of the ${n0(senders)} senders writes 1:1 to its ${n0(Math.ceil(cut / senders))} cut devices in turn; ${n0(cut / interval)} texts/s in all, ` +
          `a text every ${interval} s to each cut device on average (about ${n0(offline / interval)} queued for each while away).`,
        args.client === 'sdk'
          ? 'SDK devices: cut by a reset of their shared loopback link (RST to both ends).'
          : 'The cut devices reset their own sockets (RST) in the same instant: the broker sees a reset on each; no proxy in between.',
        'Latency counts from the send, so messages sent to a device while it was away include the time it was away.',
        ...phases.map(cpuNote),
      ],
      data: { returns: Object.fromEntries(phases.map((p, i) => [p.target, returns[i]])), phases },
      charts: [latencyChartOf('Storm: delivery latency', phases), deliveriesChartOf('Storm: deliveries per second', phases)],
    }
  },
}
