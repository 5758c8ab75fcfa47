// What every scenario shares: the command-line arguments, opening a target by name, the device
// timings that follow from a network profile, and a phase run with its CPU and commit counts.
import { monitorEventLoopDelay } from 'node:perf_hooks'
import { retransmissionMs, roundTripMs, type Profile } from '../lab/profiles.ts'
import type { Generator, GeneratorOptions, PhaseOptions } from '../generator.ts'
import type { Progress } from '../progress.ts'
import { summarizePhase, type PhaseSummary, type ScenarioReport } from '../report.ts'
import { loopDelayOf, startCpuMeter, type CpuShare } from '../system.ts'
import { mosquitto, startWeakmq, type Target } from '../targets.ts'

export interface Arguments {
  devices?: number
  seconds?: number
  drain?: number
  targets: string[]
  profile?: string
  window?: number
  rate?: number
  /** Throughput: the phases to run (max, half, rate; default all three). Half needs max. */
  phases?: string[]
  /** Throughput: how many times the phase at --rate runs (default 1): its p99 moves from run to run. */
  repeat?: number
  /** Mean seconds between two sends of one device (weak-network scenarios). */
  interval?: number
  seed: number
  sessions: 'memory' | 'redis'
  broker: 'child' | 'inprocess'
  /** weakmq broker nodes on one database and Redis prefix (default 1; more need Redis sessions). */
  nodes?: number
  /** weakmq history: a fresh database on the Postgres server (default) or PGlite in memory (tests). */
  history?: 'postgres' | 'pglite'
  /** weakmq devices: the generator's protocol client (default) or the SDK (clients/ts). */
  client?: 'protocol' | 'sdk'
  groupSize?: number
  senders?: number
  offline?: number
  /** Storm: sessions cut off at once. */
  cut?: number
  /** Texts to measure one at a time (bytes). */
  messages?: number
  addresses?: number
  /** Capacity: generator worker processes the sessions are split over. */
  workers?: number
  ackTimeout?: number
  /** weakmq devices: seconds of silence before they probe the link; 0: never. */
  probe?: number
  keepalive?: number
  concurrency?: number
  /** Give the plain MQTT devices the same dead-link rule (a publish without PUBACK for ackTimeout). */
  plainDeadLink: boolean
  /** Flaky profiles: mean seconds between stalls, resets and drops (overrides the lab's defaults). */
  stallEvery?: number
  resetEvery?: number
  dropEvery?: number
}

export interface ScenarioContext {
  args: Arguments
  progress: Progress
}

export type ScenarioOutcome = Omit<ScenarioReport, 'startedAt' | 'finishedAt' | 'command' | 'machine'>

export interface Scenario {
  name: string
  summary: string
  run(context: ScenarioContext): Promise<ScenarioOutcome>
}

export const TARGET_NAMES = ['weakmq', 'mosquitto'] as const

export async function openTarget(name: string, args: Arguments): Promise<Target> {
  if (name === 'weakmq') return startWeakmq({ history: args.history ?? 'postgres', sessions: args.sessions, process: args.broker, nodes: args.nodes })
  if (name === 'mosquitto') return mosquitto()
  throw new Error(`unknown target "${name}"; known: ${TARGET_NAMES.join(', ')}`)
}

/**
 * How long a device waits for a reply before it calls the link dead: two round trips, one TCP
 * retransmission and a second of slack (about 5 s on EDGE, 7.5 s on 2G rural). 0 on an unshaped
 * link, where only keepalive is used.
 */
export function ackTimeoutFor(profile: Profile | undefined): number {
  if (!profile || profile.name === 'loopback') return 0
  return Math.max(3000, Math.round(2 * roundTripMs(profile) + retransmissionMs(profile) + 1000))
}

/** How long a gap may last before it is filled by history: about one round trip. */
export function gapWaitFor(profile: Profile | undefined): number {
  return profile ? Math.max(500, Math.round(roundTripMs(profile))) : 500
}

export type DeviceTimings = Pick<GeneratorOptions, 'keepaliveSeconds' | 'reconnectMs' | 'ackTimeoutMs' | 'probeIdleMs' |
  'connectTimeoutMs' | 'gapWaitMs' | 'historyLimit' | 'client' | 'sdkOverrides'>

/** mqtt.js' default wait for a CONNACK, which a plain client keeps. */
const PLAIN_CONNECT_TIMEOUT_MS = 30_000

/**
 * The device timings for a target on a profile. weakmq devices treat a request (CONNECT, a send,
 * a sync, a probe) unanswered for the ack timeout as a dead link, and probe a link silent for
 * `--probe` seconds (default 10 on shaped links). Plain MQTT devices keep mqtt.js' behaviour
 * (keepalive, 30 s CONNACK wait) unless --plain-dead-link gives them the PUBACK timeout too.
 */
export function timingsFor(target: Target, profile: Profile | undefined, args: Arguments, keepaliveSeconds = 30): DeviceTimings {
  const ackTimeout = args.ackTimeout ?? ackTimeoutFor(profile)
  const deadLinkRule = target.kind === 'weakmq' || args.plainDeadLink
  const probeSeconds = args.probe ?? (ackTimeout > 0 ? 10 : 0)
  return {
    keepaliveSeconds: args.keepalive ?? keepaliveSeconds,
    reconnectMs: 1000,
    ackTimeoutMs: deadLinkRule ? ackTimeout : 0,
    probeIdleMs: target.kind === 'weakmq' ? probeSeconds * 1000 : 0,
    connectTimeoutMs: deadLinkRule && ackTimeout > 0 ? ackTimeout : PLAIN_CONNECT_TIMEOUT_MS,
    gapWaitMs: gapWaitFor(profile),
    historyLimit: 0,
    client: args.client ?? 'protocol',
    // SDK devices keep the SDK's defaults, save what the command line sets.
    sdkOverrides: {
      ...(args.keepalive !== undefined ? { keepalive: args.keepalive } : {}),
      ...(args.ackTimeout !== undefined ? { requestTimeoutMs: args.ackTimeout } : {}),
      ...(args.probe !== undefined ? { probeIdleMs: args.probe * 1000 } : {}),
    },
  }
}

/** Runs a phase with the CPU of every process involved measured, and weakmq's commits counted. */
export async function measuredPhase(generator: Generator, target: Target, phase: PhaseOptions, progress: Progress): Promise<PhaseSummary> {
  const commitsBefore = await target.commits()
  const meter = startCpuMeter(async () => ({ ...(await target.processes()), generator: [process.pid] }))
  // Latency is measured on the generator's loop: while it runs late, so does every figure.
  const generatorLoop = monitorEventLoopDelay({ resolution: 1 })
  await target.loopDelay() // from here on
  generatorLoop.enable()
  const result = await generator.runPhase({ ...phase, onTick: (status) => progress.phase(target.name, status) })
  generatorLoop.disable()
  const loop = { broker: await target.loopDelay(), generator: loopDelayOf(generatorLoop) }
  const cpu = await meter.stop()
  const commitsAfter = await target.commits()
  const commitsPerSecond = commitsBefore !== null && commitsAfter !== null
    ? Math.round((commitsAfter - commitsBefore) / Math.max(1e-3, (result.metrics.endedAt - result.metrics.startedAt) / 1000))
    : null
  progress.clear()
  const sdk = target.kind === 'weakmq' && generator.options.client === 'sdk'
  const details = [...(sdk ? ['SDK'] : []), ...(target.nodes > 1 ? [`${target.nodes} nodes`] : [])]
  const label = details.length ? `${target.name} (${details.join(', ')})` : target.name
  return summarizePhase(label, result, { cpu, commitsPerSecond, loop })
}

export const MACHINE_ROW = 'machine busy / outside the run / taken by the host'

/** A phase's cell in the MACHINE_ROW of a table. */
export function machineCell(phase: { cpu?: CpuShare | null }): string {
  return phase.cpu ? `${phase.cpu.machineBusy}% / ${phase.cpu.others}% / ${phase.cpu.stolen}%` : '-'
}

/** A CPU line for the notes: who used what, and how busy the machine was. */
export function cpuNote(phase: PhaseSummary): string {
  if (!phase.cpu) return ''
  const roles = Object.entries(phase.cpu.byRole).map(([role, pct]) => `${role} ${pct}%`).join(', ')
  return `${phase.target} ${phase.phase}: CPU (percent of one core) ${roles}; machine ${phase.cpu.machineBusy}% busy ` +
    `of ${phase.cpu.cores} cores, ${phase.cpu.others}% by processes outside the run, ${phase.cpu.stolen}% taken by the host (steal); ` +
    `load average ${phase.cpu.loadAverage.map((v) => v.toFixed(1)).join(' ')}` +
    (phase.commitsPerSecond ? `; ${phase.commitsPerSecond} Postgres transactions/s` : '')
}

/** Opens each target in turn, runs `work` on it and always closes it. */
export async function withTarget<T>(name: string, args: Arguments, work: (target: Target) => Promise<T>): Promise<T> {
  const target = await openTarget(name, args)
  try {
    return await work(target)
  } finally {
    await target.close()
  }
}

export function requireTargets(args: Arguments): string[] {
  for (const name of args.targets) if (!(TARGET_NAMES as readonly string[]).includes(name)) throw new Error(`unknown target "${name}"; known: ${TARGET_NAMES.join(', ')}`)
  return args.targets
}
