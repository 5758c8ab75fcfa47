// Typing (issue 3 §10): validate, rate-limit, authorize, deliver. Nothing is stored and the event
// goes at QoS 0: a typing hint is worthless once late, so no session queues it (reply.ts).
import { wmq } from '../../schema/generated/chat.js'
import type { Identity } from '../auth/authenticate.ts'
import { activeMembers } from '../storage/messages.ts'
import type { ChatContext } from './context.ts'
import { RequestError } from './errors.ts'
import { conversationOf, publishToUsers, requireMember } from './membership.ts'
import type { DownlinkEvent } from './reply.ts'

const { RATE_LIMITED } = wmq.ErrorCode

/** Devices x conversations remembered at most; past it the oldest are forgotten (one more event may pass). */
const MAX_TRACKED = 100_000

export interface TypingLimiter {
  /** Whether an event may pass now. */
  allows (device: number, conversation: number, active: boolean, now: number): boolean
  /** Remembers an event that passed. */
  record (device: number, conversation: number, active: boolean, now: number): void
  readonly size: number
}

/**
 * At most one typing event per device and conversation every `intervalMs`, except that a stop
 * right after a start always passes (else the peer would see "typing..." until it times out).
 * Entries are kept in the order they were recorded, so expired ones are evicted from the front
 * and the map holds only the last interval's typists, at most `maxTracked`.
 */
export function createTypingLimiter (intervalMs: number, maxTracked = MAX_TRACKED): TypingLimiter {
  const last = new Map<string, { at: number, active: boolean }>()
  const evictBefore = (now: number) => {
    for (const [key, entry] of last) {
      if (now - entry.at < intervalMs) break
      last.delete(key)
    }
  }
  return {
    allows (device, conversation, active, now) {
      evictBefore(now)
      const previous = last.get(`${device}:${conversation}`)
      return !previous || (previous.active && !active)
    },
    record (device, conversation, active, now) {
      const key = `${device}:${conversation}`
      last.delete(key) // re-inserted at the back: newest last
      last.set(key, { at: now, active })
      if (last.size > maxTracked) last.delete(last.keys().next().value!)
    },
    get size () { return last.size },
  }
}

/** One limiter per chat service (per broker), made on first use. */
const limiters = new WeakMap<ChatContext, TypingLimiter>()

/**
 * `ref` is the request's Uplink.ref: 0 means no reply is wanted (chat.proto), so a dropped event
 * and a delivered one get none; a device that sets a ref gets the TypingEvent as delivered or
 * RATE_LIMITED. Refusals (unknown conversation, not a member) are replied to either way. The limit
 * is per device, and a device is on one node at a time: it needs no state shared between nodes.
 */
export async function typing (ctx: ChatContext, who: Identity, request: wmq.ITyping, ref = 0): Promise<DownlinkEvent | null> {
  const conversation = conversationOf(request.conversation)
  const active = Boolean(request.active)
  let limiter = limiters.get(ctx)
  if (!limiter) limiters.set(ctx, limiter = createTypingLimiter(ctx.limits.typingIntervalMs))

  // Checked before the database, so an excess event costs no query; remembered only once it is
  // authorized. A device's requests are taken one at a time (requests.ts): nothing comes between.
  const now = Date.now()
  if (!limiter.allows(who.device, conversation, active, now)) {
    if (ref === 0) return null
    throw new RequestError(RATE_LIMITED, `at most one typing event per conversation every ${ctx.limits.typingIntervalMs} ms`)
  }
  await requireMember(ctx.db, conversation, who.user, true)
  limiter.record(who.device, conversation, active, now)
  const others = (await activeMembers(ctx.db, conversation)).filter(user => user !== who.user)
  const event: DownlinkEvent = { typing: { conversation, user: who.user, active } }
  await publishToUsers(ctx, others, event, { qos: 0 })
  return ref === 0 ? null : event
}
