// The outbox: every send is written to the store before it is published, and stays there until the
// broker's SendAck (the acknowledgement a sender trusts, DESIGN 4). Until then it is published again
// on every new connection, after a restart too, always with the same client_msg_id: the broker
// makes repeats idempotent (DESIGN 3), so the worst a repeat costs is a few bytes.
// Entries go out in the order the application made them; the broker stores one device's sends in
// the order it receives them (issue 3 §2).
import { ChatError } from './errors.ts'
import type { SavedSend } from './store.ts'
import {
  asContent, contentOf, fromBase64, fromHex, newClientMsgId, toBase64, toHex, wmq, type Content, type Recipient, type SendResult,
} from './wire.ts'

/** A send waiting for its acknowledgement. */
export interface PendingSend {
  clientMsgId: string
  to: Recipient
  content: Content
  createdAt: number
  /** Times it was handed to the link (this run). */
  attempts: number
}

export interface OutboxOptions {
  /** Publishes the send (and again on every new connection) and resolves with the broker's reply. */
  send (clientMsgId: Uint8Array, to: Recipient, content: wmq.IContent): Promise<wmq.ISendAck>
  /** Makes the outbox as it is now durable. */
  persist (): Promise<void>
  acknowledged (send: PendingSend, result: SendResult): void
  failed (send: PendingSend, error: Error): void
  /** How long to wait before trying again after a transient refusal (RATE_LIMITED, UNAVAILABLE). */
  retryDelayMs (attempt: number): number
}

interface Entry {
  send: PendingSend
  bytes: Uint8Array
  waiters: Array<{ resolve (result: SendResult): void, reject (error: Error): void }>
  inFlight: boolean
  retryTimer?: ReturnType<typeof setTimeout>
}

/** Refusals worth another try later; every other code means this send will never be stored. */
const TRANSIENT = new Set<number>([wmq.ErrorCode.RATE_LIMITED, wmq.ErrorCode.UNAVAILABLE])

export class Outbox {
  private readonly entries = new Map<string, Entry>()
  private started = false
  private closed = false

  constructor (private readonly options: OutboxOptions, saved: SavedSend[]) {
    for (const item of saved) {
      const bytes = fromBase64(item.content)
      const content = contentOf(wmq.Content.decode(bytes))
      if (!content) continue
      this.entries.set(item.id, { send: { clientMsgId: item.id, to: item.to, content, createdAt: item.createdAt, attempts: 0 }, bytes, waiters: [], inFlight: false })
    }
  }

  /** Stores a send, then publishes it (once the outbox is started); resolves on its SendAck. */
  async add (to: Recipient, input: string | Content): Promise<SendResult> {
    const content = asContent(input)
    const bytes = wmq.Content.encode(content).finish()
    const id = toHex(newClientMsgId())
    const entry: Entry = { send: { clientMsgId: id, to, content, createdAt: Date.now(), attempts: 0 }, bytes, waiters: [], inFlight: false }
    const result = new Promise<SendResult>((resolve, reject) => entry.waiters.push({ resolve, reject }))
    this.entries.set(id, entry)
    try {
      await this.options.persist() // durable before it is published
    } catch (err) {
      this.entries.delete(id)
      throw err
    }
    this.dispatch(entry)
    return result
  }

  /** Publishing may begin (for a new device: after its first catch-up, see sync.ts). */
  start (): void {
    this.started = true
    for (const entry of this.entries.values()) this.dispatch(entry)
  }

  /** The acknowledgement of a send, whichever way it came (its reply, a reply to an earlier run, history). */
  acknowledge (clientMsgId: string, ack: { conversation: number, seq: number, time: number }): void {
    const entry = this.entries.get(clientMsgId)
    if (!entry) return
    clearTimeout(entry.retryTimer)
    this.entries.delete(clientMsgId)
    this.options.persist().catch(() => {}) // a lost write only means one more idempotent repeat
    const result: SendResult = { clientMsgId, conversation: ack.conversation, seq: ack.seq, time: ack.time }
    for (const waiter of entry.waiters) waiter.resolve(result)
    this.options.acknowledged(entry.send, result)
  }

  has (clientMsgId: string): boolean {
    return this.entries.has(clientMsgId)
  }

  pending (): PendingSend[] {
    return [...this.entries.values()].map(entry => ({ ...entry.send }))
  }

  snapshot (): SavedSend[] {
    return [...this.entries.values()].map(({ send, bytes }) =>
      ({ id: send.clientMsgId, to: send.to, content: toBase64(bytes), createdAt: send.createdAt }))
  }

  /** Fails the waiting promises; the entries stay in the store for the next run. */
  close (error: Error): void {
    this.closed = true
    for (const entry of this.entries.values()) {
      clearTimeout(entry.retryTimer)
      for (const waiter of entry.waiters.splice(0)) waiter.reject(error)
    }
  }

  private dispatch (entry: Entry): void {
    if (!this.started || this.closed || entry.inFlight || entry.retryTimer || !this.entries.has(entry.send.clientMsgId)) return
    entry.inFlight = true
    entry.send.attempts++
    const content = wmq.Content.decode(entry.bytes)
    this.options.send(fromHex(entry.send.clientMsgId), entry.send.to, content).then(ack => {
      entry.inFlight = false
      this.acknowledge(entry.send.clientMsgId, { conversation: Number(ack.conversation ?? 0), seq: Number(ack.seq ?? 0), time: Number(ack.time ?? 0) })
    }, (err: Error) => {
      entry.inFlight = false
      if (this.closed || !this.entries.has(entry.send.clientMsgId)) return
      if (err instanceof ChatError && !TRANSIENT.has(err.code)) {
        this.entries.delete(entry.send.clientMsgId)
        this.options.persist().catch(() => {})
        for (const waiter of entry.waiters) waiter.reject(err)
        this.options.failed(entry.send, err)
        return
      }
      // Transient (or a deadline): try again later, still with the same client_msg_id.
      entry.retryTimer = setTimeout(() => {
        entry.retryTimer = undefined
        this.dispatch(entry)
      }, this.options.retryDelayMs(entry.send.attempts))
    })
  }
}
