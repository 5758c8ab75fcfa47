// (b) edge and (c) 2g: devices in 1:1 pairs, each behind its own FlakyLink, sending at random
// (on average one text every `interval` seconds per device) for a while, then draining. weakmq and
// Mosquitto run at the same time on identically seeded links, so both columns meet the same
// stalls, resets and silent drops. weakmq devices follow the chat protocol (chat-device.ts: dead
// link after an unanswered request, gap fill by history); Mosquitto devices are plain MQTT clients
// (keepalive 30 s, QoS 1, clean=false, subscribe on every connect).
import { Generator } from '../generator.ts'
import { flaky, profileByName, type Profile } from '../lab/profiles.ts'
import { Progress } from '../progress.ts'
import { deliveriesChartOf, latencyChartOf, ms, n0, phaseRows, type Table } from '../report.ts'
import { cpuNote, measuredPhase, requireTargets, timingsFor, withTarget, type Arguments, type Scenario } from './common.ts'

interface Defaults {
  profile: string
  devices: number
  seconds: number
  interval: number
  drain: number
}

/** The profile named on the command line, with the flaky rates it may override. */
export function profileFrom(args: Arguments, fallback: string): Profile {
  const profile = profileByName(args.profile ?? fallback)
  if (!profile.flaky || (args.stallEvery === undefined && args.resetEvery === undefined && args.dropEvery === undefined)) return profile
  const base = profileByName(profile.name.slice('flaky-'.length))
  return flaky(base, {
    ...(args.stallEvery !== undefined ? { stallEveryMs: args.stallEvery * 1000 } : {}),
    ...(args.resetEvery !== undefined ? { resetEveryMs: args.resetEvery * 1000 } : {}),
    ...(args.dropEvery !== undefined ? { dropEveryMs: args.dropEvery * 1000 } : {}),
  })
}

export function weakNetwork(name: string, summary: string, defaults: Defaults): Scenario {
  return {
    name,
    summary,
    async run({ args, progress }) {
      const profile = profileFrom(args, defaults.profile)
      const devices = args.devices ?? defaults.devices
      const seconds = args.seconds ?? defaults.seconds
      const interval = args.interval ?? defaults.interval
      const drainSeconds = args.drain ?? defaults.drain
      const targets: Record<string, Record<string, string>> = {}
      const timings: Record<string, unknown> = {}
      const names = requireTargets(args)
      const phases = await Promise.all(names.map((targetName, k) => withTarget(targetName, args, async (target) => {
        targets[targetName] = target.describe()
        const deviceTimings = timingsFor(target, profile, args, 30)
        timings[targetName] = deviceTimings
        const generator = await Generator.create({
          target, devices, topology: { kind: 'pairs' }, profile, seed: args.seed, ...deviceTimings, connectConcurrency: args.concurrency ?? 50,
        })
        // One bar: the first target draws it; the others run quietly beside it.
        const bar = k === 0 ? progress : new Progress(process.stderr, true)
        try {
          await generator.connectAll((n) => bar.update(n / devices, `${targetName}: connecting ${n}/${devices} over ${profile.name}`))
          return await measuredPhase(generator, target, {
            name: profile.name, traffic: { kind: 'rate', perSecond: devices / interval }, seconds, drainSeconds,
          }, bar)
        } finally {
          await generator.close()
        }
      })))
      const table: Table = {
        columns: ['', ...phases.map((p) => p.target)],
        rows: [
          ...phaseRows(phases),
          ['latency p99.9', ...phases.map((p) => ms(p.latency.p999))],
          ['ack latency p50 / p99', ...phases.map((p) => `${ms(p.ackLatency.p50)} / ${ms(p.ackLatency.p99)}`)],
          ['time offline p50 / p99 (count)', ...phases.map((p) => (p.offline.count ? `${ms(p.offline.p50)} / ${ms(p.offline.p99)} (${p.offline.count})` : '-'))],
          ['history syncs (gap fills / reconnect syncs)', ...phases.map((p) => `${n0(p.wire.gapFills)} / ${n0(p.wire.syncs)}`)],
          ['sends repeated after reconnect', ...phases.map((p) => n0(p.wire.resends))],
          ['link events: stalls / resets / silent drops', ...phases.map((p) => `${n0(p.links.stalls)} / ${n0(p.links.resets)} / ${n0(p.links.drops)}`)],
          ['drained by the end', ...phases.map((p) => (p.settled ? 'yes' : `no (${p.drainSeconds} s)`))],
        ],
      }
      const notes: string[] = []
      const weakmq = phases.find((p) => p.target.startsWith('weakmq'))
      if (weakmq) {
        const clean = weakmq.lost === 0 && weakmq.duplicates === 0 && weakmq.orderViolations === 0
        notes.push(`weakmq: ${clean ? '0 lost, 0 duplicates and 0 order violations at the application' : `NOT clean: ${weakmq.lost} lost, ${weakmq.duplicates} duplicates, ${weakmq.orderViolations} order violations`}; ` +
          `p99 ${ms(weakmq.latency.p99)} (target <= 15 s${profile.name.includes('edge') ? '' : ' on EDGE; this is ' + profile.name})`)
      }
      if (names.length > 1) {
        notes.push('Both targets ran at the same time in one generator process (so the generator CPU below is shared). Link i has the same seed on both sides, ' +
          'and the events of its n-th connection derive from (seed, i, n): the two sides meet the same events until their reconnects differ.')
      }
      if (profile.flaky) {
        notes.push('The lab stalls one TCP connection at a time: a device that reconnects during a stall gets a fresh connection that is not stalled, ' +
          'which a real dead cell would not allow. This favours clients that give up a silent connection early (the weakmq devices).')
      }
      notes.push(...phases.map(cpuNote))
      return {
        scenario: name,
        title: `${devices} devices on ${profile.name} for ${seconds} s (1:1 pairs, one text per device every ${interval} s on average)`,
        parameters: { profile: profile.name, flaky: profile.flaky ?? null, devices, seconds, interval, drainSeconds, seed: args.seed, sessions: args.sessions, broker: args.broker, timings },
        targets,
        table,
        notes,
        data: { phases },
        charts: [latencyChartOf(`${profile.name}: delivery latency`, phases), deliveriesChartOf(`${profile.name}: deliveries per second`, phases)],
      }
    },
  }
}

export const edge = weakNetwork('edge', 'devices on EDGE lossy with flaky stalls, resets and drops; weakmq and Mosquitto side by side', {
  profile: 'flaky-edge-lossy', devices: 200, seconds: 150, interval: 5, drain: 90,
})

export const twoG = weakNetwork('2g', 'devices on 2G rural (20 kbit/s, 650 ms, 2% loss); weakmq and Mosquitto side by side', {
  profile: '2g-rural', devices: 200, seconds: 120, interval: 10, drain: 90,
})
