// (e) capacity: idle persistent sessions (clean=false, long keepalive), connected a batch at a
// time from several loopback source addresses (127.0.0.2, .3, ...: each address has its own
// ephemeral ports). Measured: connect rate and CONNACK latency, and the broker's resident memory
// before and after, per connection. weakmq runs in its own process so its RSS is its own.
import { setTimeout as sleep } from 'node:timers/promises'
import { Generator } from '../generator.ts'
import { ms, n0, type Table } from '../report.ts'
import { startCpuMeter, type CpuShare } from '../system.ts'
import { requireTargets, timingsFor, withTarget, type Scenario } from './common.ts'
import type { Percentiles } from '../metrics.ts'

interface CapacityResult {
  target: string
  sessions: number
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

export const capacity: Scenario = {
  name: 'capacity',
  summary: 'idle persistent sessions from several loopback addresses: connect rate and broker RSS per connection',
  async run({ args, progress }) {
    const sessions = args.devices ?? 10_000
    const addresses = args.addresses ?? 8
    const holdSeconds = args.seconds ?? 10
    const localAddresses = Array.from({ length: addresses }, (_, k) => `127.0.0.${k + 2}`)
    const results: CapacityResult[] = []
    const targets: Record<string, Record<string, string>> = {}
    for (const name of requireTargets(args)) {
      await withTarget(name, args, async (target) => {
        targets[name] = target.describe()
        const generator = await Generator.create({
          target, devices: sessions, topology: { kind: 'pairs' }, seed: args.seed, ...timingsFor(target, undefined, args, 600),
          connectConcurrency: args.concurrency ?? 100, localAddresses,
        })
        try {
          await sleep(1000)
          progress.update(0, `${name}: broker memory before`)
          const heapBefore = await target.heap()
          const rssBefore = await target.rss()
          const generatorBefore = process.memoryUsage().rss
          const meter = startCpuMeter(async () => ({ ...(await target.processes()), generator: [process.pid] }))
          const connected = await generator.connectAll((n) => progress.update(n / sessions, `${name}: ${n}/${sessions} sessions`))
          const cpu = await meter.stop()
          for (let waited = 0; waited < holdSeconds; waited++) {
            progress.update(waited / holdSeconds, `${name}: holding ${sessions} idle sessions ${waited}/${holdSeconds} s`)
            await sleep(1000)
          }
          progress.clear()
          progress.update(1, `${name}: broker memory after`)
          const rssAfter = await target.rss()
          const heapAfter = await target.heap()
          progress.clear()
          results.push({
            target: name,
            sessions,
            connectSeconds: connected.seconds,
            connectsPerSecond: connected.perSecond,
            connackLatency: connected.latency,
            rssBefore,
            rssAfter,
            rssPerSession: rssBefore !== null && rssAfter !== null ? (rssAfter - rssBefore) / sessions : null,
            heapBefore,
            heapAfter,
            heapPerSession: heapBefore !== null && heapAfter !== null ? (heapAfter - heapBefore) / sessions : null,
            generatorRssPerSession: (process.memoryUsage().rss - generatorBefore) / sessions,
            stillConnected: generator.connectedCount(),
            holdSeconds,
            cpu,
          })
        } finally {
          progress.update(1, `${name}: closing ${sessions} sessions`)
          await generator.close()
          progress.clear()
        }
      })
    }
    const kb = (bytes: number | null) => (bytes === null ? '-' : `${(bytes / 1024).toFixed(1)} KB`)
    const table: Table = {
      columns: ['', ...results.map((r) => r.target)],
      rows: [
        ['idle persistent sessions', ...results.map((r) => n0(r.sessions))],
        ['source addresses', ...results.map(() => String(addresses))],
        ['connect time (all)', ...results.map((r) => `${r.connectSeconds.toFixed(1)} s`)],
        ['connects / s', ...results.map((r) => n0(r.connectsPerSecond))],
        ['CONNACK latency p50 / p99', ...results.map((r) => `${ms(r.connackLatency.p50)} / ${ms(r.connackLatency.p99)}`)],
        ['broker RSS before / after', ...results.map((r) => `${r.rssBefore === null ? '-' : (r.rssBefore / MB).toFixed(0)} / ${r.rssAfter === null ? '-' : (r.rssAfter / MB).toFixed(0)} MB`)],
        ['broker RSS per session', ...results.map((r) => kb(r.rssPerSession))],
        ['broker heap before / after', ...results.map((r) => `${r.heapBefore === null ? '-' : (r.heapBefore / MB).toFixed(1)} / ${r.heapAfter === null ? '-' : (r.heapAfter / MB).toFixed(1)} MB`)],
        ['broker heap per session', ...results.map((r) => kb(r.heapPerSession))],
        [`still connected after ${holdSeconds} s idle`, ...results.map((r) => n0(r.stillConnected))],
        ...['broker', 'postgres', 'generator'].map((role) => [`CPU ${role} while connecting`, ...results.map((r) => (r.cpu.byRole[role] === undefined ? '-' : `${r.cpu.byRole[role]}%`))]),
        ['machine busy / outside the run', ...results.map((r) => `${r.cpu.machineBusy}% / ${r.cpu.others}%`)],
      ],
    }
    return {
      scenario: 'capacity',
      title: `Capacity: ${n0(sessions)} idle persistent sessions from ${addresses} loopback addresses`,
      parameters: { sessions, addresses, holdSeconds, concurrency: args.concurrency ?? 100, seed: args.seed, sessions_store: args.sessions, broker: args.broker },
      targets,
      table,
      notes: [
        'RSS per session is (RSS after - RSS before) / sessions, sampled after the hold; it includes whatever the garbage collector had not yet returned. ' +
          'RSS rarely shrinks, so a broker that served as many sessions before (Mosquitto runs on between benchmark runs) shows little growth: ' +
          'heap per session is the figure that compares (weakmq: V8 heapUsed, not counting socket buffers and native memory; Mosquitto: its own $SYS/broker/heap/current).',
        ...results.map((r) => `${r.target}: generator side ${kb(r.generatorRssPerSession)} per session (mqtt.js client and socket)`),
      ],
      data: { results },
      charts: [],
    }
  },
}
