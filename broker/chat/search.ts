// User search (issue 7 §3): by prefix of the login or of the display name, at most SEARCH_LIMIT
// results, at most SEARCH_RATE searches per device per minute (a bucket that refills steadily, so
// a burst of up to SEARCH_RATE passes and then one every 60/SEARCH_RATE s). Users hidden from
// search and users who block the searcher are left out (storage/profiles.ts).
import { wmq } from '../../schema/generated/chat.js'
import type { Identity } from '../auth/authenticate.ts'
import { searchUsers as findUsers } from '../storage/profiles.ts'
import type { ChatContext } from './context.ts'
import { RequestError } from './errors.ts'
import type { DownlinkEvent } from './reply.ts'

const { INVALID_ARGUMENT, RATE_LIMITED } = wmq.ErrorCode
const MAX_PREFIX = 32
/** Devices remembered at most; past it the longest unseen is forgotten (its bucket starts full). */
const MAX_TRACKED = 100_000

export interface SearchLimiter {
  /** Takes one search from the device's bucket; false when it is empty. */
  take (device: number, now: number): boolean
  readonly size: number
}

export function createSearchLimiter (perMinute: number, maxTracked = MAX_TRACKED): SearchLimiter {
  const buckets = new Map<number, { tokens: number, at: number }>()
  const capacity = Math.max(1, perMinute)
  return {
    take (device, now) {
      const bucket = buckets.get(device) ?? { tokens: capacity, at: now }
      bucket.tokens = Math.min(capacity, bucket.tokens + (now - bucket.at) * capacity / 60_000)
      bucket.at = now
      buckets.delete(device) // re-inserted at the back: the least recently seen are first
      buckets.set(device, bucket)
      if (buckets.size > maxTracked) buckets.delete(buckets.keys().next().value!)
      if (bucket.tokens < 1) return false
      bucket.tokens -= 1
      return true
    },
    get size () { return buckets.size },
  }
}

/** One limiter per chat service (per broker), made on first use. */
const limiters = new WeakMap<ChatContext, SearchLimiter>()

export async function searchUsers (ctx: ChatContext, who: Identity, request: wmq.IUserSearch): Promise<DownlinkEvent> {
  const prefix = (request.prefix ?? '').trim()
  if (prefix.length === 0 || [...prefix].length > MAX_PREFIX) {
    throw new RequestError(INVALID_ARGUMENT, `a search prefix has 1-${MAX_PREFIX} characters`)
  }
  const { searchLimit, searchRate } = ctx.limits
  let limiter = limiters.get(ctx)
  if (!limiter) limiters.set(ctx, limiter = createSearchLimiter(searchRate))
  if (!limiter.take(who.device, Date.now())) {
    throw new RequestError(RATE_LIMITED, `at most ${searchRate} searches a minute per device`)
  }
  const limit = Math.min(request.limit || searchLimit, searchLimit)
  const users = await findUsers(ctx.db, who.user, prefix, limit)
  return { search: { users } }
}
