// (e) capacity: idle persistent sessions (clean=false, long keepalive), connected a batch at a
// time from several loopback source addresses (127.0.0.2, .3, ...: each address has its own
// ephemeral ports). Measured: connect rate and CONNACK latency, and the broker's resident memory
// before and after, per connection. weakmq runs in its own process so its RSS is its own.
//
// Open files bound a run: every process here may hold 20,000, and a session is one socket in the
// generator and one in the broker. The sessions are split over generator worker processes
// (bench/capacity-worker.ts), so the broker's own limit is what bounds a run; a count above what
// the broker processes can hold (their limit in /proc/<pid>/limits, less what they have open) is
// not tried, and the table says so.
import { fork, type ChildProcess } from 'node:child_process'
import { readFileSync } from 'node:fs'
import { performance } from 'node:perf_hooks'
import { setTimeout as sleep } from 'node:timers/promises'
import { fileURLToPath } from 'node:url'
import type { WorkerDevice, WorkerReply, WorkerRequest, WorkerTimings } from '../capacity-worker.ts'
import { newHistogram, percentiles, recordMs, type Percentiles } from '../metrics.ts'
import type { Progress } from '../progress.ts'
import { ms, n0, type Table } from '../report.ts'
import { openFileLimit, openFiles, startCpuMeter, type CpuShare } from '../system.ts'
import type { Target } from '../targets.ts'
import { MACHINE_ROW, machineCell, requireTargets, timingsFor, withTarget, type Arguments, type Scenario } from './common.ts'

export interface CapacityPlan {
  /** Sessions asked for; fewer are tried when the broker cannot hold them. */
  requested: number
  addresses: number
  holdSeconds: number
  /** Generator worker processes; default: enough that each holds at most SESSIONS_PER_WORKER. */
  workers?: number
  /** Connects in flight at once, over all workers together. */
  concurrency: number
}

/** What the broker's processes can hold: open-file limit, files open before the run, room left. */
export interface BrokerRoom {
  processes: number
  /** The lowest soft limit among them. */
  limit: number
  /** The most files open in one of them before the run (null: not readable). */
  open: number | null
  /** Sessions they can take together, spread evenly. */
  sessions: number
}

export interface CapacityResult {
  target: string
  requested: number
  sessions: number
  room: BrokerRoom | null
  workers: number
  connected: number
  failed: number
  failures: string[]
  connectSeconds: number
  connectsPerSecond: number
  connackLatency: Percentiles
  rssBefore: number | null
  rssAfter: number | null
  rssPerSession: number | null
  heapBefore: number | null
  heapAfter: number | null
  heapPerSession: number | null
  generatorRssPerSession: number
  stillConnected: number
  holdSeconds: number
  cpu: CpuShare
}

const MB = 1024 * 1024
const SESSIONS_PER_WORKER = 10_000
/** Files a broker needs besides its sessions (database and Redis connections, logs, a stats client). */
const BROKER_SPARE_FILES = 100
/** Files a worker needs besides its sockets (Node itself, the IPC channel). */
const WORKER_SPARE_FILES = 100
const WORKER_FILE = fileURLToPath(new URL('../capacity-worker.ts', import.meta.url))

/** How many sessions the broker processes can take, or null when their limits are unknown. */
export function brokerRoom(pids: number[]): BrokerRoom | null {
  const limits = pids.map(openFileLimit)
  if (pids.length === 0 || limits.some((limit) => limit === null)) return null
  const opened = pids.map(openFiles)
  const open = opened.some((n) => n === null) ? null : Math.max(...(opened as number[]))
  const limit = Math.min(...(limits as number[]))
  // Sessions are dealt to the processes evenly (device i on node i % N): the fullest one decides.
  const sessions = pids.length * Math.max(0, limit - (open ?? 0) - BROKER_SPARE_FILES)
  return { processes: pids.length, limit, open, sessions }
}

export function capacityPlan(args: Arguments): CapacityPlan {
  if (args.workers !== undefined && !Number.isInteger(args.workers)) throw new Error(`capacity: --workers must be a whole number, not ${args.workers}`)
  return {
    requested: args.devices ?? 10_000,
    addresses: args.addresses ?? 8,
    holdSeconds: args.seconds ?? 10,
    workers: args.workers,
    concurrency: args.concurrency ?? 100,
  }
}

/** The widest ephemeral port range a source address offers (net.ipv4.ip_local_port_range). */
function ephemeralPorts(): number {
  try {
    const [low, high] = readFileSync('/proc/sys/net/ipv4/ip_local_port_range', 'utf8').trim().split(/\s+/).map(Number)
    return high - low + 1
  } catch {
    return 28_232 // Linux's default range, 32768-60999
  }
}

interface Worker {
  child: ChildProcess
  /** Sends a request and resolves with the reply of the expected type; rejects on failure or exit. */
  ask<T extends WorkerReply['type']>(request: WorkerRequest, expect: T): Promise<Extract<WorkerReply, { type: T }>>
  connected: number
}

function startWorker(onProgress: () => void): Worker {
  const child = fork(WORKER_FILE, [], { execArgv: ['--import', 'tsx'], stdio: ['ignore', 'inherit', 'inherit', 'ipc'] })
  const worker: Worker = {
    child,
    connected: 0,
    ask(request, expect) {
      return new Promise((resolve, reject) => {
        const done = () => {
          child.off('message', onMessage)
          child.off('exit', onExit)
        }
        const onExit = (code: number | null) => {
          done()
          reject(new Error(`a capacity worker exited (${code}) while asked to ${request.type}`))
        }
        const onMessage = (reply: WorkerReply) => {
          if (reply.type === 'failed') {
            done()
            reject(new Error(`a capacity worker failed to ${request.type}: ${reply.error}`))
          } else if (reply.type === expect) {
            done()
            resolve(reply as Extract<WorkerReply, { type: typeof expect }>)
          }
        }
        child.on('message', onMessage)
        child.once('exit', onExit)
        child.send(request)
      })
    },
  }
  child.on('message', (reply: WorkerReply) => {
    if (reply.type === 'progress' || reply.type === 'connected') {
      worker.connected = reply.type === 'progress' ? reply.connected : reply.latencies.length
      onProgress()
    }
  })
  return worker
}

/** Asks a worker to close its sessions and exit; kills it if it has not exited within 30 s. */
async function closeWorker(worker: Worker): Promise<void> {
  const { child } = worker
  if (child.exitCode !== null || child.signalCode !== null) return
  const exited = new Promise((resolve) => child.once('exit', resolve))
  const killer = setTimeout(() => child.kill('SIGKILL'), 30_000)
  worker.ask({ type: 'close' }, 'closed').catch(() => child.kill('SIGKILL'))
  await exited
  clearTimeout(killer)
}

/** One target: sessions dealt to the workers, connected, held idle, counted, closed. */
export async function capacityOn(target: Target, plan: CapacityPlan, args: Arguments, progress: Progress): Promise<CapacityResult> {
  const name = target.name
  const room = brokerRoom((await target.processes()).broker ?? [])
  const sessions = room ? Math.min(plan.requested, room.sessions) : plan.requested
  if (sessions < 1) throw new Error(`capacity: ${name}'s broker has no room for a session (open-file limit ${room?.limit}, ${room?.open} open)`)
  if (sessions < plan.requested) {
    progress.log(`capacity: ${name}: ${n0(plan.requested)} sessions asked for, but the broker's open-file limit (${n0(room!.limit)} per process, ` +
      `${room!.open === null ? 'open files unknown' : `${n0(room!.open)} open`}) leaves room for ${n0(room!.sessions)}: trying ${n0(sessions)}`)
  }
  const workerCount = plan.workers ?? Math.max(1, Math.ceil(sessions / SESSIONS_PER_WORKER))
  const perWorker = Math.ceil(sessions / workerCount)
  const ownLimit = openFileLimit('self') ?? Infinity
  if (perWorker > ownLimit - WORKER_SPARE_FILES) {
    throw new Error(`capacity: ${n0(perWorker)} sessions per worker is more than a process's open-file limit allows (${n0(ownLimit)}); use more --workers`)
  }
  const localAddresses = Array.from({ length: plan.addresses }, (_, k) => `127.0.0.${k + 2}`)
  if (Math.ceil(sessions / plan.addresses) > ephemeralPorts()) {
    throw new Error(`capacity: ${n0(Math.ceil(sessions / plan.addresses))} sessions per source address is more than its ${n0(ephemeralPorts())} ephemeral ports; use more --addresses`)
  }
  const timings = timingsFor(target, undefined, args, 600)
  if (timings.client === 'sdk' && target.kind === 'weakmq') throw new Error('capacity: --client sdk is not supported (the SDK takes no source address)')
  const accounts = await target.accounts(sessions)
  const devices: WorkerDevice[] = accounts.map((account, i) => ({ ...account, index: i, ...target.addressOf(i), localAddress: localAddresses[i % localAddresses.length] }))
  const workerTimings: WorkerTimings = {
    keepaliveSeconds: timings.keepaliveSeconds, reconnectMs: timings.reconnectMs, connectTimeoutMs: timings.connectTimeoutMs,
    ackTimeoutMs: timings.ackTimeoutMs, probeIdleMs: timings.probeIdleMs, gapWaitMs: timings.gapWaitMs, historyLimit: timings.historyLimit,
  }
  const workers: Worker[] = []
  const connectedSoFar = () => workers.reduce((sum, w) => sum + w.connected, 0)
  const onProgress = () => progress.update(connectedSoFar() / sessions, `${name}: ${connectedSoFar()}/${sessions} sessions (${workerCount} generator processes)`)
  try {
    progress.update(0, `${name}: starting ${workerCount} generator processes`)
    for (let k = 0; k < workerCount; k++) workers.push(startWorker(onProgress))
    const built = await Promise.all(workers.map((worker, k) => worker.ask({
      type: 'build', kind: target.kind, devices: devices.slice(k * perWorker, (k + 1) * perWorker), timings: workerTimings,
    }, 'built')))
    await sleep(1000)
    progress.update(0, `${name}: broker memory before`)
    const heapBefore = await target.heap()
    const rssBefore = await target.rss()
    const meter = startCpuMeter(async () => ({ ...(await target.processes()), generator: [process.pid, ...workers.map((w) => w.child.pid!)] }))
    const started = performance.now()
    const concurrency = Math.max(1, Math.ceil(plan.concurrency / workerCount))
    const replies = await Promise.all(workers.map((worker) => worker.ask({ type: 'connect', concurrency }, 'connected')))
    const connectSeconds = (performance.now() - started) / 1000
    const cpu = await meter.stop()
    const histogram = newHistogram()
    for (const reply of replies) for (const latency of reply.latencies) recordMs(histogram, latency)
    const connected = histogram.totalCount
    const failed = replies.reduce((sum, r) => sum + r.failed, 0)
    for (let waited = 0; waited < plan.holdSeconds; waited++) {
      progress.update(waited / plan.holdSeconds, `${name}: holding ${connected} idle sessions ${waited}/${plan.holdSeconds} s`)
      await sleep(1000)
    }
    progress.clear()
    progress.update(1, `${name}: broker memory after`)
    const counts = await Promise.all(workers.map((worker) => worker.ask({ type: 'count' }, 'count')))
    const rssAfter = await target.rss()
    const heapAfter = await target.heap()
    progress.clear()
    const perSession = (before: number | null, after: number | null) => (before !== null && after !== null && connected > 0 ? (after - before) / connected : null)
    const generatorGrowth = counts.reduce((sum, c, k) => sum + c.rss - built[k].rss, 0)
    return {
      target: name,
      requested: plan.requested,
      sessions,
      room,
      workers: workerCount,
      connected,
      failed,
      failures: replies.flatMap((r) => r.failures).slice(0, 5),
      connectSeconds,
      connectsPerSecond: connected / Math.max(connectSeconds, 1e-3),
      connackLatency: percentiles(histogram),
      rssBefore,
      rssAfter,
      rssPerSession: perSession(rssBefore, rssAfter),
      heapBefore,
      heapAfter,
      heapPerSession: perSession(heapBefore, heapAfter),
      generatorRssPerSession: connected > 0 ? generatorGrowth / connected : 0,
      stillConnected: counts.reduce((sum, c) => sum + c.connected, 0),
      holdSeconds: plan.holdSeconds,
      cpu,
    }
  } finally {
    progress.update(1, `${name}: closing ${sessions} sessions`)
    await Promise.all(workers.map(closeWorker))
    progress.clear()
  }
}

export const capacity: Scenario = {
  name: 'capacity',
  summary: 'idle persistent sessions from several loopback addresses and generator processes: connect rate and broker RSS per connection',
  async run({ args, progress }) {
    const plan = capacityPlan(args)
    const results: CapacityResult[] = []
    const targets: Record<string, Record<string, string>> = {}
    for (const name of requireTargets(args)) {
      await withTarget(name, args, async (target) => {
        targets[name] = target.describe()
        results.push(await capacityOn(target, plan, args, progress))
      })
    }
    const kb = (bytes: number | null) => (bytes === null ? '-' : `${(bytes / 1024).toFixed(1)} KB`)
    const mb = (bytes: number | null, digits: number) => (bytes === null ? '-' : (bytes / MB).toFixed(digits))
    const roomOf = (r: CapacityResult) => (r.room === null
      ? 'unknown'
      : `${n0(r.room.limit)} / ${r.room.open === null ? '?' : n0(r.room.open)} / ${n0(r.room.sessions)}${r.room.processes > 1 ? ` (${r.room.processes} processes)` : ''}`)
    const table: Table = {
      columns: ['', ...results.map((r) => r.target)],
      rows: [
        ['idle persistent sessions', ...results.map((r) => (r.sessions < r.requested
          ? `${n0(r.connected)} (${n0(r.requested)} asked, room for ${n0(r.sessions)})`
          : n0(r.connected)))],
        ['broker open files: limit / open before / room', ...results.map(roomOf)],
        ['sessions that did not connect (60 s each)', ...results.map((r) => n0(r.failed))],
        ['generator processes / source addresses', ...results.map((r) => `${r.workers} / ${plan.addresses}`)],
        ['connect time (all)', ...results.map((r) => `${r.connectSeconds.toFixed(1)} s`)],
        ['connects / s', ...results.map((r) => n0(r.connectsPerSecond))],
        ['CONNACK latency p50 / p99', ...results.map((r) => `${ms(r.connackLatency.p50)} / ${ms(r.connackLatency.p99)}`)],
        ['broker RSS before / after', ...results.map((r) => `${mb(r.rssBefore, 0)} / ${mb(r.rssAfter, 0)} MB`)],
        ['broker RSS per session', ...results.map((r) => kb(r.rssPerSession))],
        ['broker heap before / after', ...results.map((r) => `${mb(r.heapBefore, 1)} / ${mb(r.heapAfter, 1)} MB`)],
        ['broker heap per session', ...results.map((r) => kb(r.heapPerSession))],
        [`still connected after ${plan.holdSeconds} s idle`, ...results.map((r) => n0(r.stillConnected))],
        ...['broker', 'postgres', 'generator'].map((role) => [`CPU ${role} while connecting`, ...results.map((r) => (r.cpu.byRole[role] === undefined ? '-' : `${r.cpu.byRole[role]}%`))]),
        [MACHINE_ROW, ...results.map(machineCell)],
      ],
    }
    return {
      scenario: 'capacity',
      title: `Capacity: ${n0(plan.requested)} idle persistent sessions from ${plan.addresses} loopback addresses` +
        (results.some((r) => r.sessions < r.requested) ? ' (fewer where the broker had no room for them: see the table)' : ''),
      parameters: { ...plan, seed: args.seed, sessions_store: args.sessions, broker: args.broker, nodes: args.nodes ?? 1 },
      targets,
      table,
      notes: [
        'RSS per session is (RSS after - RSS before) / sessions connected, sampled after the hold; it includes whatever the garbage collector had not yet returned. ' +
          'RSS rarely shrinks, so a broker that served as many sessions before (Mosquitto runs on between benchmark runs) shows little growth: ' +
          'heap per session is the figure that compares (weakmq: V8 heapUsed, not counting socket buffers and native memory; Mosquitto: its own $SYS/broker/heap/current).',
        'The sessions are dealt to the generator processes in contiguous slices, device i from source address 127.0.0.(2 + i % addresses); ' +
          'connects in flight are split evenly among the processes; CPU "generator" adds them up with the parent process.',
        ...results.filter((r) => r.sessions < r.requested).map((r) => `${r.target}: ${n0(r.requested)} sessions asked for; the broker's open-file limit ` +
          `(${n0(r.room!.limit)}, /proc/<pid>/limits, with ${r.room!.open === null ? 'an unknown number' : n0(r.room!.open)} open before and ${BROKER_SPARE_FILES} kept spare) leaves room for ${n0(r.room!.sessions)}, so only those were tried.`),
        ...results.filter((r) => r.failed > 0).map((r) => `${r.target}: ${n0(r.failed)} sessions got no CONNACK within 60 s, e.g. ${r.failures.join('; ')}`),
        ...results.map((r) => `${r.target}: generator side ${kb(r.generatorRssPerSession)} per session (mqtt.js client and socket)`),
      ],
      data: { results },
      charts: [],
    }
  },
}
