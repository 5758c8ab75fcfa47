// What one phase of a benchmark run measured: counters, latency histograms (hdr-histogram-js,
// recorded in microseconds) and per-second time series for the charts.
import hdr from 'hdr-histogram-js'
import type { Histogram } from 'hdr-histogram-js'
import { performance } from 'node:perf_hooks'

/** A latency histogram in microseconds, from 1 µs up to an hour, 3 significant digits. */
export function newHistogram(): Histogram {
  return hdr.build({ lowestDiscernibleValue: 1, highestTrackableValue: 3_600_000_000, numberOfSignificantValueDigits: 3 })
}

export function recordMs(histogram: Histogram, ms: number): void {
  histogram.recordValue(Math.max(1, Math.round(ms * 1000)))
}

/** A histogram's summary in milliseconds. */
export interface Percentiles {
  count: number
  mean: number
  p50: number
  p90: number
  p99: number
  p999: number
  max: number
}

const ms = (us: number) => Math.round(us) / 1000

export function percentiles(histogram: Histogram): Percentiles {
  if (histogram.totalCount === 0) return { count: 0, mean: 0, p50: 0, p90: 0, p99: 0, p999: 0, max: 0 }
  return {
    count: histogram.totalCount,
    mean: ms(histogram.mean),
    p50: ms(histogram.getValueAtPercentile(50)),
    p90: ms(histogram.getValueAtPercentile(90)),
    p99: ms(histogram.getValueAtPercentile(99)),
    p999: ms(histogram.getValueAtPercentile(99.9)),
    max: ms(histogram.maxValue),
  }
}

/** Points of the percentile curve (percentile, ms) that the latency chart draws. */
export function percentileCurve(histogram: Histogram): Array<[number, number]> {
  if (histogram.totalCount === 0) return []
  const points: Array<[number, number]> = []
  for (const p of [0, 10, 25, 50, 75, 90, 95, 97.5, 99, 99.5, 99.75, 99.9, 99.95, 99.99, 99.999]) {
    points.push([p, ms(histogram.getValueAtPercentile(p))])
  }
  points.push([100, ms(histogram.maxValue)])
  return points
}

/** Counts per bucket of time since the phase started. */
export class Series {
  readonly counts: number[] = []
  constructor(readonly startedAt: number, readonly bucketMs = 1000) {}

  add(at: number, n = 1): void {
    const bucket = Math.max(0, Math.floor((at - this.startedAt) / this.bucketMs))
    while (this.counts.length <= bucket) this.counts.push(0)
    this.counts[bucket] += n
  }

  /** Counts per second. */
  perSecond(): number[] {
    return this.counts.map((n) => (n * 1000) / this.bucketMs)
  }
}

/**
 * The application-level view of one phase (DESIGN 5: what a user would see): every message is
 * counted once by the phase it was sent in, even when it is delivered after the phase ended.
 */
export class Metrics {
  readonly startedAt = performance.now()
  /** When sending stopped; the drain follows. */
  sendEndedAt = 0
  endedAt = 0
  /** Messages the applications asked to send. */
  sent = 0
  /** Sends the target acknowledged: SendAck (weakmq, after commit) or PUBACK (plain MQTT). */
  acknowledged = 0
  /** Deliveries owed for acknowledged messages: one per recipient. */
  expected = 0
  /** Distinct messages that reached a recipient's application. */
  delivered = 0
  /** Deliveries of a message that recipient's application had already seen. */
  duplicates = 0
  /** Deliveries older (by the sender's numbering) than one the application had already seen from that sender. */
  orderViolations = 0
  /** A group member receiving its own message (plain MQTT has no "no local" in 3.1.1). */
  echoes = 0
  /** Texts that are no message of this run. */
  stray = 0
  /** Messages not yet acknowledged and delivered to every recipient. */
  incomplete = 0
  readonly latency = newHistogram()
  readonly ackLatency = newHistogram()
  /** From a reconnect to the delivery of everything acknowledged for the device before it. */
  readonly catchUp = newHistogram()
  /** From losing a connection to the next CONNACK. */
  readonly offline = newHistogram()
  readonly deliveries: Series
  readonly sends: Series

  constructor(readonly name: string, bucketMs = 1000) {
    this.deliveries = new Series(this.startedAt, bucketMs)
    this.sends = new Series(this.startedAt, bucketMs)
  }

  get sendSeconds(): number {
    return ((this.sendEndedAt || performance.now()) - this.startedAt) / 1000
  }
}
