// A generator process of the capacity scenario (bench/scenarios/capacity.ts): it holds its slice of
// the idle sessions, so that together the workers go past one process's open-file limit (20,000
// here) and the broker's own limit is what bounds a run. Each device comes with its own address
// (broker host and port, source address), so a slice may spread over several broker nodes.
// Driven over the IPC channel:
//   parent -> worker: build (the devices) | connect (all of them, a few at a time) | count | close
//   worker -> parent: built | progress (while connecting) | connected | count | closed | failed
import { performance } from 'node:perf_hooks'
import { ChatDevice } from './devices/chat-device.ts'
import type { ConnectionOptions } from './devices/connection.ts'
import type { AppEvents, BenchDevice } from './devices/device.ts'
import { PlainDevice } from './devices/plain-device.ts'
import { eachLimited } from './generator.ts'
import type { Account } from './targets.ts'

/** One device of a worker's slice: its account and where it connects from and to. */
export interface WorkerDevice extends Account {
  host: string
  port: number
  localAddress: string
}

export interface WorkerTimings {
  keepaliveSeconds: number
  reconnectMs: number
  connectTimeoutMs: number
  ackTimeoutMs: number
  probeIdleMs: number
  gapWaitMs: number
  historyLimit: number
}

export type WorkerRequest =
  | { type: 'build'; kind: 'weakmq' | 'plain'; devices: WorkerDevice[]; timings: WorkerTimings }
  | { type: 'connect'; concurrency: number }
  | { type: 'count' }
  | { type: 'close' }

export type WorkerReply =
  | { type: 'built'; rss: number }
  | { type: 'progress'; connected: number }
  /** CONNACK latencies in ms, one per device that connected; the first few failures as text. */
  | { type: 'connected'; latencies: number[]; failed: number; failures: string[] }
  | { type: 'count'; connected: number; rss: number }
  | { type: 'closed' }
  | { type: 'failed'; error: string }

/** A device that has no CONNACK after this long counts as not connected (and stops trying). */
const CONNECT_LIMIT_MS = 60_000
const FAILURES_KEPT = 5

// Idle sessions: nothing is sent, so the application events are not needed.
const app: AppEvents = { acked() {}, delivered() {}, connected() {}, disconnected() {} }

let devices: BenchDevice[] = []

/** Resolves once the message is handed to the channel, so the worker may exit after it. */
function reply(message: WorkerReply): Promise<void> {
  return new Promise((resolve) => {
    if (!process.send) return resolve()
    process.send(message, undefined, {}, () => resolve())
  })
}

function build(kind: 'weakmq' | 'plain', slice: WorkerDevice[], timings: WorkerTimings): BenchDevice[] {
  return slice.map((device) => {
    const connection: ConnectionOptions = {
      host: device.host,
      port: device.port,
      localAddress: device.localAddress,
      keepaliveSeconds: timings.keepaliveSeconds,
      reconnectMs: timings.reconnectMs,
      connectTimeoutMs: timings.connectTimeoutMs,
      replayUnacknowledged: kind !== 'weakmq',
    }
    return kind === 'weakmq'
      ? new ChatDevice({
        index: device.index, user: device.user, clientId: device.clientId, login: device.login!, token: device.token!, connection,
        ackTimeoutMs: timings.ackTimeoutMs, probeIdleMs: timings.probeIdleMs, gapWaitMs: timings.gapWaitMs, historyLimit: timings.historyLimit, app,
      })
      : new PlainDevice({ index: device.index, user: device.user, groups: [], clientId: device.clientId, connection, ackTimeoutMs: timings.ackTimeoutMs, app })
  })
}

function within<T>(promise: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined
  const limit = new Promise<never>((_, reject) => { timer = setTimeout(() => reject(new Error(`${what} within ${ms / 1000} s`)), ms) })
  return Promise.race([promise, limit]).finally(() => clearTimeout(timer))
}

/** A device that does not close in this long is left to the process exit. */
const STOP_LIMIT_MS = 10_000
const stop = (device: BenchDevice) => within(device.stop(), STOP_LIMIT_MS, 'no close').catch(() => {})

async function connectAll(concurrency: number): Promise<WorkerReply> {
  const latencies: number[] = []
  const failures: string[] = []
  let failed = 0
  let reported = 0
  const ticker = setInterval(() => {
    if (latencies.length === reported) return
    reported = latencies.length
    reply({ type: 'progress', connected: reported })
  }, 250)
  try {
    await eachLimited(devices, concurrency, async (device) => {
      const at = performance.now()
      try {
        await within(device.start(), CONNECT_LIMIT_MS, 'no CONNACK')
        latencies.push(performance.now() - at)
      } catch (err) {
        failed++
        if (failures.length < FAILURES_KEPT) failures.push(`device ${device.index}: ${(err as Error).message}`)
        // Stops its reconnects too, so a session that did not make it does not keep knocking.
        await stop(device)
      }
    })
  } finally {
    clearInterval(ticker)
  }
  return { type: 'connected', latencies, failed, failures }
}

async function handle(request: WorkerRequest): Promise<WorkerReply> {
  switch (request.type) {
    case 'build':
      devices = build(request.kind, request.devices, request.timings)
      return { type: 'built', rss: process.memoryUsage().rss }
    case 'connect':
      return connectAll(request.concurrency)
    case 'count':
      return { type: 'count', connected: devices.filter((d) => d.connected).length, rss: process.memoryUsage().rss }
    case 'close':
      await eachLimited(devices, 200, stop)
      return { type: 'closed' }
  }
}

process.on('message', async (request: WorkerRequest) => {
  await reply(await handle(request).catch((err: Error): WorkerReply => ({ type: 'failed', error: err.stack ?? err.message })))
  if (request.type === 'close') process.exit(0)
})

// The parent gone means the run is over: never outlive it.
process.on('disconnect', () => process.exit(0))
