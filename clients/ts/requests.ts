// Requests and their replies: each request is an Uplink with a `ref` the broker echoes in its
// Downlink on `d/{device}` (PROTOCOL.md §Requests). A pending request lives here until its reply,
// a refusal (Error{code}), its deadline, or the client's close.
//
// Dead links are found here, sooner than keepalive could (issue 4 §1): a request published on a
// connection must be answered within a bound derived from the link, else the connection is dead.
// The bound is a base (an RTT plus one TCP retransmission on 2G, see options.ts) plus the bytes in
// flight both ways at the rate Mars assumes for GPRS (4 KB/s), counting everything already queued
// ahead of this request on the connection, so a burst of sends on a slow link is not mistaken for
// a dead one.
//
// Across connections: a request that is safe to repeat ('resend': reads, receipts, recall, sends)
// is published again on the next connection with the same ref; one that is not ('once': group
// changes) fails with LinkLostError when its connection drops after it was published.
import { ChatError, LinkLostError, TimeoutError } from './errors.ts'
import { encodeUplink, wmq } from './wire.ts'

/** The Downlink field that answers a request. */
export type ReplyKind = Exclude<NonNullable<wmq.Downlink['event']>, 'error' | 'message'>

export interface RequestOptions {
  expect: ReplyKind
  retry: 'resend' | 'once'
  /** How many bytes the reply may have (for its timeout); small by default. */
  replyBytes?: number
  /** Fail with TimeoutError after this long in all, across reconnects; none: wait for the link. */
  deadlineMs?: number
}

export interface Uplink {
  /** Publishes bytes on `s` now; false when there is no connection to publish on. */
  publish (bytes: Uint8Array): boolean
  /** A request went unanswered past its bound on the current connection: the link is dead. */
  dead (reason: string): void
}

export interface Timing {
  /** Base of every bound, ms. */
  baseMs: number
  /** Link rate assumed for bytes in flight. */
  bytesPerSecond: number
}

interface Pending {
  ref: number
  bytes: Uint8Array
  options: RequestOptions
  resolve (downlink: wmq.Downlink): void
  reject (error: Error): void
  /** Bytes this request adds to the link while published: the request and its reply. */
  cost: number
  published: boolean
  /** Connections it was published on. */
  attempts: number
  attemptTimer?: ReturnType<typeof setTimeout>
  deadlineTimer?: ReturnType<typeof setTimeout>
}

const DEFAULT_REPLY_BYTES = 64
const MAX_REF = 0xffffffff

export class Requests {
  private readonly pending = new Map<number, Pending>()
  private online = false
  private closedWith: Error | null = null
  private bytesInFlight = 0
  // A random start: replies to a previous run's requests may still wait in the session queue.
  private nextRef = 1 + Math.floor(Math.random() * (MAX_REF - 1))
  /** Requests found unanswered past their bound. */
  timeouts = 0
  /** Requests published again on a later connection (their first went down with its link). */
  republished = 0

  constructor (private readonly uplink: Uplink, private readonly timing: Timing) {}

  /** Sends a request (now, or when the link is up) and resolves with its reply. */
  request (build: (ref: number) => wmq.IUplink, options: RequestOptions): Promise<wmq.Downlink> {
    if (this.closedWith) return Promise.reject(this.closedWith)
    const ref = this.allocateRef()
    const bytes = encodeUplink(build(ref))
    return new Promise((resolve, reject) => {
      const entry: Pending = { ref, bytes, options, resolve, reject, cost: bytes.length + (options.replyBytes ?? DEFAULT_REPLY_BYTES), published: false, attempts: 0 }
      if (options.deadlineMs !== undefined) {
        entry.deadlineTimer = setTimeout(() => this.settle(entry, new TimeoutError(`no answer in ${options.deadlineMs} ms`)), options.deadlineMs)
      }
      this.pending.set(ref, entry)
      this.publish(entry)
    })
  }

  /** Takes a Downlink that may answer a pending request; false when none was waiting for it. */
  answer (downlink: wmq.Downlink): boolean {
    const entry = downlink.ref ? this.pending.get(downlink.ref) : undefined
    if (!entry) return false
    if (downlink.error) {
      this.settle(entry, new ChatError(downlink.error.code ?? wmq.ErrorCode.OK, downlink.error.detail ?? ''))
      return true
    }
    // A reply of another kind under this ref is a stale one, meant for a request of an earlier run.
    if (downlink.event !== entry.options.expect) return false
    this.settle(entry, downlink)
    return true
  }

  /** A connection is up: publish every pending request, oldest first. */
  linkUp (): void {
    this.online = true
    for (const entry of [...this.pending.values()]) this.publish(entry)
  }

  /** The connection is gone: no timer runs for it; requests not safe to repeat fail. */
  linkDown (): void {
    this.online = false
    this.bytesInFlight = 0
    for (const entry of [...this.pending.values()]) {
      clearTimeout(entry.attemptTimer)
      entry.attemptTimer = undefined
      if (entry.published && entry.options.retry === 'once') {
        this.settle(entry, new LinkLostError('the connection went down before the reply: the change may or may not have been made'))
      }
      entry.published = false
    }
  }

  /** Fails every pending request with `error`. */
  close (error: Error): void {
    this.online = false
    this.closedWith = error
    for (const entry of [...this.pending.values()]) this.settle(entry, error)
  }

  /** Requests published on this connection and not yet answered. */
  get inFlight (): number {
    let count = 0
    for (const entry of this.pending.values()) if (entry.published) count++
    return count
  }

  private publish (entry: Pending): void {
    if (!this.online || entry.published || !this.uplink.publish(entry.bytes)) return
    entry.published = true
    if (entry.attempts++ > 0) this.republished++
    this.bytesInFlight += entry.cost
    const boundMs = Math.round(this.timing.baseMs + this.bytesInFlight * 1000 / this.timing.bytesPerSecond)
    entry.attemptTimer = setTimeout(() => {
      entry.attemptTimer = undefined
      this.timeouts++
      this.uplink.dead(`request ${entry.ref} (${entry.options.expect}) unanswered after ${boundMs} ms`)
    }, boundMs)
  }

  private settle (entry: Pending, outcome: wmq.Downlink | Error): void {
    clearTimeout(entry.attemptTimer)
    clearTimeout(entry.deadlineTimer)
    if (entry.published) this.bytesInFlight = Math.max(0, this.bytesInFlight - entry.cost)
    this.pending.delete(entry.ref)
    if (outcome instanceof Error) entry.reject(outcome)
    else entry.resolve(outcome)
  }

  private allocateRef (): number {
    do {
      this.nextRef = this.nextRef >= MAX_REF ? 1 : this.nextRef + 1
    } while (this.pending.has(this.nextRef))
    return this.nextRef
  }
}
