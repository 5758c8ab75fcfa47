// Turning phase results into what a person reads: a JSON summary of each phase, a side-by-side
// text table, and the files in bench/results/ (JSON and SVG charts).
import { mkdirSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { latencyChart, timeChart, type Chart } from './charts.ts'
import type { PhaseResult } from './generator.ts'
import { percentileCurve, percentiles, type Percentiles } from './metrics.ts'
import type { CpuShare, LoopDelay } from './system.ts'

export const RESULTS_DIR = fileURLToPath(new URL('./results/', import.meta.url))

export interface PhaseSummary {
  target: string
  phase: string
  traffic: PhaseResult['traffic']
  sendSeconds: number
  drainSeconds: number
  settled: boolean
  sent: number
  acknowledged: number
  unacknowledged: number
  expected: number
  delivered: number
  lost: number
  duplicates: number
  orderViolations: number
  echoes: number
  stray: number
  /** Distinct deliveries per second of sending. */
  deliveredPerSecond: number
  latency: Percentiles
  ackLatency: Percentiles
  catchUp: Percentiles
  offline: Percentiles
  unfinishedCatchUps: number
  reconnects: number
  wire: PhaseResult['wire']
  bytes: PhaseResult['bytes']
  bytesPerDelivered: number | null
  links: PhaseResult['links']
  schedulerLag: Percentiles | null
  deliveriesPerSecond: number[]
  latencyCurve: Array<[number, number]>
  bucketSeconds: number
  cpu?: CpuShare
  commitsPerSecond?: number | null
  /** How late the event loops ran during the phase: the broker's (null where not measured) and the generator's. */
  loop?: { broker: LoopDelay | null; generator: LoopDelay }
}

const round = (value: number, digits = 1) => Math.round(value * 10 ** digits) / 10 ** digits

export function summarizePhase(target: string, result: PhaseResult, extra: Partial<PhaseSummary> = {}): PhaseSummary {
  const m = result.metrics
  const sendSeconds = m.sendSeconds
  const bytes = result.bytes.up + result.bytes.down
  return {
    target,
    phase: result.name,
    traffic: result.traffic,
    sendSeconds: round(sendSeconds, 2),
    drainSeconds: round(result.drainSeconds, 2),
    settled: result.settled,
    sent: m.sent,
    acknowledged: m.acknowledged,
    unacknowledged: result.unacknowledged,
    expected: m.expected,
    delivered: m.delivered,
    lost: result.lost,
    duplicates: m.duplicates,
    orderViolations: m.orderViolations,
    echoes: m.echoes,
    stray: m.stray,
    deliveredPerSecond: round(m.delivered / Math.max(sendSeconds, 1e-3)),
    latency: percentiles(m.latency),
    ackLatency: percentiles(m.ackLatency),
    catchUp: percentiles(m.catchUp),
    offline: percentiles(m.offline),
    unfinishedCatchUps: result.unfinishedCatchUps,
    reconnects: result.wire.connects,
    wire: result.wire,
    bytes: result.bytes,
    bytesPerDelivered: m.delivered > 0 ? round(bytes / m.delivered) : null,
    links: result.links,
    schedulerLag: result.schedulerLag,
    deliveriesPerSecond: m.deliveries.perSecond(),
    latencyCurve: percentileCurve(m.latency),
    bucketSeconds: m.deliveries.bucketMs / 1000,
    ...extra,
  }
}

/** The steady part of a per-second series: its median, leaving out the first and last second. */
export function steadyRate(perSecond: number[]): number {
  const inner = perSecond.length > 3 ? perSecond.slice(1, -1) : perSecond
  if (inner.length === 0) return 0
  const sorted = [...inner].sort((a, b) => a - b)
  return sorted[Math.floor(sorted.length / 2)]
}

export interface Table {
  columns: string[]
  rows: string[][]
}

export function formatTable(table: Table): string {
  const widths = table.columns.map((c, i) => Math.max(c.length, ...table.rows.map((r) => (r[i] ?? '').length)))
  const line = (cells: string[]) => cells.map((cell, i) => (i === 0 ? cell.padEnd(widths[i]) : cell.padStart(widths[i]))).join('  ')
  return [line(table.columns), widths.map((w) => '-'.repeat(w)).join('  '), ...table.rows.map(line)].join('\n')
}

export const n0 = (value: number | null | undefined): string => (value === null || value === undefined ? '-' : Math.round(value).toLocaleString('en-US'))
export const ms = (value: number | null | undefined): string => (value === null || value === undefined ? '-' : value >= 100 ? `${n0(value)} ms` : `${value.toFixed(1)} ms`)

/** Rows every phase table shares: counts, integrity, latency, reconnects, bytes. */
export function phaseRows(phases: PhaseSummary[]): string[][] {
  const row = (label: string, cell: (p: PhaseSummary) => string) => [label, ...phases.map(cell)]
  return [
    row('sent', (p) => n0(p.sent)),
    row('acknowledged', (p) => n0(p.acknowledged)),
    row('delivered (distinct, at the app)', (p) => n0(p.delivered)),
    row('lost (acked, never delivered)', (p) => n0(p.lost)),
    row('never acknowledged', (p) => n0(p.unacknowledged)),
    row('duplicates at the app', (p) => n0(p.duplicates)),
    row('order violations at the app', (p) => n0(p.orderViolations)),
    row('delivered / s', (p) => n0(p.deliveredPerSecond)),
    row('latency p50', (p) => ms(p.latency.p50)),
    row('latency p90', (p) => ms(p.latency.p90)),
    row('latency p99', (p) => ms(p.latency.p99)),
    row('latency max', (p) => ms(p.latency.max)),
    row('reconnects', (p) => n0(p.reconnects)),
    row('dead links detected (request timeout)', (p) => n0(p.wire.deadLinks)),
    row('catch-up p50 / p99 (count)', (p) => (p.catchUp.count ? `${ms(p.catchUp.p50)} / ${ms(p.catchUp.p99)} (${p.catchUp.count})` : '-')),
    row('wire duplicates dropped by the client', (p) => n0(p.wire.wireDuplicates)),
    row('bytes on the wire per delivered message', (p) => (p.bytesPerDelivered === null ? '-' : n0(p.bytesPerDelivered))),
  ]
}

export interface ScenarioReport {
  scenario: string
  title: string
  startedAt: string
  finishedAt: string
  command: string
  machine: Record<string, unknown>
  parameters: Record<string, unknown>
  targets: Record<string, Record<string, string>>
  table: Table
  notes: string[]
  data: unknown
  charts: Chart[]
}

export function latencyChartOf(title: string, phases: PhaseSummary[]): Chart {
  return { name: 'latency', svg: latencyChart(title, phases.map((p) => ({ name: `${p.target} ${p.phase}`, points: p.latencyCurve }))) }
}

export function deliveriesChartOf(title: string, phases: PhaseSummary[]): Chart {
  return {
    name: 'deliveries',
    // The last bucket is a partial second: left out so it does not read as a collapse.
    svg: timeChart(title, 'deliveries per second', phases.map((p) => ({
      name: `${p.target} ${p.phase}`, perSecond: p.deliveriesPerSecond.slice(0, -1), bucketSeconds: p.bucketSeconds,
    }))),
  }
}

/** Writes the JSON and the charts; returns the paths written. */
export function writeReport(report: ScenarioReport, dir = RESULTS_DIR): string[] {
  mkdirSync(dir, { recursive: true })
  const stamp = report.startedAt.replace(/[:]/g, '-').replace(/\..*$/, '')
  const base = join(dir, `${report.scenario}-${stamp}`)
  const written = [`${base}.json`]
  const { charts, ...json } = report
  writeFileSync(`${base}.json`, JSON.stringify({ ...json, charts: charts.map((c) => `${base}-${c.name}.svg`) }, null, 2) + '\n')
  for (const chart of charts) {
    writeFileSync(`${base}-${chart.name}.svg`, chart.svg + '\n')
    written.push(`${base}-${chart.name}.svg`)
  }
  return written
}
