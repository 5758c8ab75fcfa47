// Exactly once, in seq order, to the application (DESIGN 5). On the wire delivery is at least once
// and a gap is possible (a lost session, a queue bounded by count or age); here, per conversation:
//   - a message at or below the last applied seq, or already held, is a duplicate: dropped;
//   - the next seq is applied at once, with whatever held messages follow it;
//   - an early arrival is held back; if the gap is still there after `gapWaitMs` (the missing
//     message is usually just behind it), it is pulled with SyncHistory(after_seq = last applied),
//     page after page while `more`, and applied in order (PROTOCOL.md §Ordering).
// A complete pull (more = false) also tells which seqs this user will never get (deleted for them,
// before they joined): every seq up to the page's last_seq that did not come is skipped.
import { ChatError } from './errors.ts'
import type { ChatMessage } from './wire.ts'

export interface Fetched { messages: ChatMessage[], more: boolean, lastSeq: number }

export interface OrderingOptions {
  gapWaitMs: number
  /** One history page of the conversation after `afterSeq`, ascending. */
  fetchAfter (conversation: number, afterSeq: number): Promise<Fetched>
  /** Called once per message, in seq order within its conversation. */
  deliver (message: ChatMessage): void
  /** The last applied seq of a conversation moved (the client persists it). */
  advanced (conversation: number, seq: number): void
  /** A pull failed (it is retried while messages are held). */
  failed (conversation: number, error: unknown): void
}

interface Track {
  /** The last seq applied to the application; null: a conversation this device has no start for yet. */
  applied: number | null
  held: Map<number, ChatMessage>
  timer?: ReturnType<typeof setTimeout>
  filling: Promise<void> | null
}

export class Ordering {
  private readonly tracks = new Map<number, Track>()
  private closed = false
  duplicates = 0
  fills = 0

  /**
   * `applied`: the last applied seq of each conversation, as stored. `ready`: whether a
   * conversation this device has never seen may start at seq 0; until then (a new device's first
   * catch-up) its messages are held, and the catch-up sets where it starts (setBaseline).
   */
  constructor (private readonly options: OrderingOptions, applied: Record<string, number>, private ready: boolean) {
    for (const [conversation, seq] of Object.entries(applied)) {
      this.tracks.set(Number(conversation), { applied: seq, held: new Map(), filling: null })
    }
  }

  appliedOf (conversation: number): number | null {
    return this.tracks.get(conversation)?.applied ?? null
  }

  /** Conversations with messages held back behind a gap. */
  get holding (): number[] {
    return [...this.tracks].filter(([, track]) => track.held.size > 0).map(([conversation]) => conversation)
  }

  receive (message: ChatMessage): void {
    const track = this.track(message.conversation)
    let newcomer = false
    if (track.applied === null) {
      if (!this.ready) {
        this.hold(track, message)
        return
      }
      track.applied = 0 // new to this device: from its start (the broker bounds it to what the user sees)
      newcomer = true
    }
    if (message.seq <= track.applied) {
      this.duplicates++
      return
    }
    if (!this.hold(track, message)) this.duplicates++
    this.drain(message.conversation, track)
    if (track.held.size > 0) this.gapSeen(message.conversation, track, newcomer)
  }

  /** A new device's start in a conversation (its last seq at the first catch-up); never moves back. */
  setBaseline (conversation: number, seq: number): void {
    const track = this.track(conversation)
    if (track.applied !== null) return
    track.applied = seq
    this.options.advanced(conversation, seq)
    this.release(conversation, track, seq)
  }

  /** From now on an unknown conversation starts at seq 0 (the device's first catch-up is over). */
  markReady (): void {
    this.ready = true
    for (const [conversation, track] of this.tracks) {
      if (track.applied !== null || track.held.size === 0) continue
      track.applied = 0
      this.drain(conversation, track)
      if (track.held.size > 0) this.gapSeen(conversation, track, true)
    }
  }

  /** A recall for a message still held back: it is applied as recalled. */
  markRecalled (conversation: number, seq: number): void {
    const held = this.tracks.get(conversation)?.held.get(seq)
    if (held) Object.assign(held, { recalled: true, content: null })
  }

  /** Pulls everything after the last applied seq and applies it in order; one pull at a time. */
  fill (conversation: number): Promise<void> {
    const track = this.track(conversation)
    if (track.filling) return track.filling
    if (track.applied === null) {
      if (!this.ready) return Promise.resolve()
      track.applied = 0
    }
    clearTimeout(track.timer)
    track.timer = undefined
    track.filling = this.pull(conversation, track).finally(() => {
      track.filling = null
      if (track.held.size > 0) this.gapSeen(conversation, track, false)
    })
    return track.filling
  }

  close (): void {
    this.closed = true
    for (const track of this.tracks.values()) clearTimeout(track.timer)
  }

  private async pull (conversation: number, track: Track): Promise<void> {
    this.fills++
    let after = track.applied ?? 0
    try {
      for (;;) {
        const page = await this.options.fetchAfter(conversation, after)
        for (const message of page.messages) {
          if (message.seq > (track.applied ?? 0)) this.hold(track, message)
          else this.duplicates++
        }
        this.drain(conversation, track)
        const last = page.messages.at(-1)?.seq ?? 0
        if (page.more && last > after) {
          after = Math.max(last, track.applied ?? 0)
          continue
        }
        // Complete: whatever up to last_seq did not come is not for this user.
        this.release(conversation, track, page.lastSeq)
        return
      }
    } catch (err) {
      this.options.failed(conversation, err)
      // The broker will not serve this conversation to us (no longer a member, unknown): apply
      // what is held rather than hold it forever. Other failures (closed) keep it for a retry.
      if (err instanceof ChatError) this.release(conversation, track, Math.max(0, ...track.held.keys()))
    }
  }

  /** Applies every held message up to `upTo` in order, skipping missing seqs, then what follows. */
  private release (conversation: number, track: Track, upTo: number): void {
    const before = track.applied ?? 0
    for (const seq of [...track.held.keys()].sort((a, b) => a - b)) {
      if (seq > upTo) break
      const message = track.held.get(seq)!
      track.held.delete(seq)
      if (seq > (track.applied ?? 0)) {
        track.applied = seq
        this.options.deliver(message)
      }
    }
    if ((track.applied ?? 0) < upTo) track.applied = upTo
    if (track.applied !== before) this.options.advanced(conversation, track.applied!)
    this.drain(conversation, track)
  }

  /** Applies the held messages that follow the last applied seq without a gap. */
  private drain (conversation: number, track: Track): void {
    if (track.applied === null) return
    const before = track.applied
    for (let next = track.held.get(track.applied + 1); next; next = track.held.get(track.applied + 1)) {
      track.held.delete(next.seq)
      track.applied = next.seq
      this.options.deliver(next)
    }
    for (const seq of track.held.keys()) if (seq <= track.applied) track.held.delete(seq)
    if (track.applied !== before) this.options.advanced(conversation, track.applied)
    if (track.held.size === 0) {
      clearTimeout(track.timer)
      track.timer = undefined
    }
  }

  /** Holds a message back; false if it was held already (a recalled copy replaces the held one). */
  private hold (track: Track, message: ChatMessage): boolean {
    const held = track.held.get(message.seq)
    if (held && !(message.recalled && !held.recalled)) return false
    track.held.set(message.seq, message)
    return !held
  }

  private gapSeen (conversation: number, track: Track, now: boolean): void {
    if (this.closed || track.filling || track.timer) return
    if (now) {
      void this.fill(conversation)
      return
    }
    track.timer = setTimeout(() => {
      track.timer = undefined
      void this.fill(conversation)
    }, this.options.gapWaitMs)
  }

  private track (conversation: number): Track {
    let track = this.tracks.get(conversation)
    if (!track) this.tracks.set(conversation, track = { applied: null, held: new Map(), filling: null })
    return track
  }
}
