// The generator's book of messages: what each device sent, which sends were acknowledged, and what
// reached which application. From it come loss, duplicates, order violations, latency and
// catch-up time, the same way for every target, so the columns compare.
//
// A message is known by its key (sender index, sender's running number). The text carries both and
// the send time, so a plain MQTT payload and a weakmq text are the same 20 characters.
import { performance } from 'node:perf_hooks'
import { recordMs, type Metrics } from './metrics.ts'

const KEY_SPAN = 2 ** 24
export const TEXT_LENGTH = 20

export const messageKey = (sender: number, n: number): number => sender * KEY_SPAN + n

/** `{sender}.{n}.{ms since the epoch}`, base 36, padded with '-' to 20 characters. */
export function messageText(sender: number, n: number, epochMs = Date.now()): string {
  return `${sender.toString(36)}.${n.toString(36)}.${epochMs.toString(36)}`.padEnd(TEXT_LENGTH, '-')
}

export function parseMessageText(text: string): { sender: number; n: number } | null {
  const [sender, n] = text.split('.', 2).map((part) => parseInt(part, 36))
  return Number.isInteger(sender) && Number.isInteger(n) && n > 0 ? { sender, n } : null
}

interface Entry {
  sender: number
  sentAt: number
  ackedAt: number
  recipients: number[]
  delivered: number
  metrics: Metrics
}

/** A message acknowledged and delivered to every recipient, in the phase of `metrics`. */
interface Settled {
  settled: true
  metrics: Metrics
}

interface CatchUp {
  startedAt: number
  waiting: Set<number>
}

export class Ledger {
  /**
   * Per sender: its messages by running number (1, 2, ...). One Map of every message of a run grew
   * past 500,000 entries, and each doubling rehashed it in one go: the generator stood still for
   * 40-85 ms and timed every message in flight that much later. A message acknowledged and
   * delivered everywhere is replaced by its phase's one `Settled`: what a later copy needs (its
   * phase, to count it a duplicate). Kept whole, settled entries were most of the generator's old
   * generation, and its major GC pauses grew with them.
   */
  private readonly entries: Array<Array<Entry | Settled>>
  private readonly settledIn = new Map<Metrics, Settled>()
  /** Per device: keys its application has seen. */
  private readonly seen: Array<Set<number>>
  /** Per device: acknowledged keys owed to it and not yet delivered. */
  private readonly owed: Array<Set<number>>
  /** Per device: the highest number seen from each sender. */
  private readonly lastFrom: Array<Map<number, number>>
  private readonly catchUps: Array<CatchUp | null>
  private readonly offlineSince: number[]
  private readonly open: number[]
  metrics: Metrics | null = null
  /** Called when a sender's message is acknowledged and delivered everywhere (closed-loop traffic). */
  onComplete: (sender: number) => void = () => {}

  constructor(devices: number) {
    this.entries = Array.from({ length: devices }, () => [])
    this.seen = Array.from({ length: devices }, () => new Set())
    this.owed = Array.from({ length: devices }, () => new Set())
    this.lastFrom = Array.from({ length: devices }, () => new Map())
    this.catchUps = new Array(devices).fill(null)
    this.offlineSince = new Array(devices).fill(0)
    this.open = new Array(devices).fill(0)
  }

  /** Messages of this sender not yet acknowledged and delivered everywhere. */
  openSends(sender: number): number {
    return this.open[sender]
  }

  sent(key: number, sender: number, recipients: number[], at = performance.now()): void {
    const metrics = this.metrics
    if (!metrics) throw new Error('no phase is running')
    this.entries[sender][key % KEY_SPAN] = { sender, sentAt: at, ackedAt: -1, recipients, delivered: 0, metrics }
    metrics.sent++
    metrics.incomplete++
    metrics.sends.add(at)
    this.open[sender]++
  }

  private entry(key: number): Entry | Settled | undefined {
    return this.entries[Math.floor(key / KEY_SPAN)]?.[key % KEY_SPAN]
  }

  acked(key: number, at = performance.now()): void {
    const entry = this.entry(key)
    if (!entry || 'settled' in entry || entry.ackedAt >= 0) return
    entry.ackedAt = at
    entry.metrics.acknowledged++
    entry.metrics.expected += entry.recipients.length
    recordMs(entry.metrics.ackLatency, at - entry.sentAt)
    for (const recipient of entry.recipients) {
      if (!this.seen[recipient].has(key)) this.owed[recipient].add(key)
    }
    this.settle(key, entry)
  }

  /** A text reached the application of `device`. */
  delivered(device: number, text: string, at = performance.now()): void {
    const parsed = parseMessageText(text)
    const key = parsed ? messageKey(parsed.sender, parsed.n) : -1
    const entry = this.entry(key)
    if (!parsed || !entry) {
      if (this.metrics) this.metrics.stray++
      return
    }
    const { metrics } = entry
    if (parsed.sender === device) {
      metrics.echoes++
      return
    }
    const seen = this.seen[device]
    if (seen.has(key)) {
      metrics.duplicates++
      return
    }
    if ('settled' in entry) { // every recipient had it: this device is none of them
      metrics.stray++
      return
    }
    seen.add(key)
    const last = this.lastFrom[device].get(parsed.sender) ?? 0
    if (parsed.n < last) metrics.orderViolations++
    else this.lastFrom[device].set(parsed.sender, parsed.n)
    metrics.delivered++
    metrics.deliveries.add(at)
    recordMs(metrics.latency, at - entry.sentAt)
    entry.delivered++
    this.owed[device].delete(key)
    const catchUp = this.catchUps[device]
    if (catchUp && catchUp.waiting.delete(key) && catchUp.waiting.size === 0) {
      if (this.metrics) recordMs(this.metrics.catchUp, at - catchUp.startedAt)
      this.catchUps[device] = null
    }
    this.settle(key, entry)
  }

  disconnected(device: number, at = performance.now()): void {
    if (!this.offlineSince[device]) this.offlineSince[device] = at
  }

  /** A (re)connect: catch-up is timed from here until everything owed before it has arrived. */
  connected(device: number, reconnect: boolean, at = performance.now()): void {
    if (this.offlineSince[device] && this.metrics) recordMs(this.metrics.offline, at - this.offlineSince[device])
    this.offlineSince[device] = 0
    if (!reconnect || this.catchUps[device]) return
    const owed = this.owed[device]
    if (owed.size > 0) this.catchUps[device] = { startedAt: at, waiting: new Set(owed) }
  }

  /** Acknowledged deliveries that never arrived, and sends never acknowledged, of one phase. */
  shortfall(metrics: Metrics): { lost: number; unacknowledged: number; deliveredUnacknowledged: number } {
    let lost = 0
    let unacknowledged = 0
    let deliveredUnacknowledged = 0
    for (const entry of this.entries.flat()) {
      if ('settled' in entry || entry.metrics !== metrics) continue
      if (entry.ackedAt >= 0) lost += entry.recipients.length - entry.delivered
      else {
        unacknowledged++
        if (entry.delivered > 0) deliveredUnacknowledged++
      }
    }
    return { lost, unacknowledged, deliveredUnacknowledged }
  }

  /** Devices still waiting for a catch-up to finish (reported, never recorded as a time). */
  unfinishedCatchUps(): number {
    return this.catchUps.filter(Boolean).length
  }

  private settle(key: number, entry: Entry): void {
    if (entry.ackedAt < 0 || entry.delivered < entry.recipients.length) return
    const { metrics, sender } = entry
    metrics.incomplete--
    this.open[sender]--
    let settled = this.settledIn.get(metrics)
    if (!settled) this.settledIn.set(metrics, settled = { settled: true, metrics })
    this.entries[sender][key % KEY_SPAN] = settled
    this.onComplete(sender)
  }
}
