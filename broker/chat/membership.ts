// Who may act on a conversation, and how an event reaches its members: shared by the handlers
// that act on an existing conversation (receipts, recall, delete for me, typing).
import { wmq } from '../../schema/generated/chat.js'
import type { Queryable } from '../storage/db.ts'
import { conversationExists, membership, type Membership } from '../storage/messages.ts'
import { inboxTopic } from '../topics.ts'
import type { ChatContext } from './context.ts'
import { RequestError } from './errors.ts'
import { encodeDownlink, publishBytes, type DownlinkEvent, type PublishOptions } from './reply.ts'

const { UNKNOWN_CONVERSATION, NOT_MEMBER } = wmq.ErrorCode

/**
 * The conversation a request names. A uint64 past 2^53 decodes to an inexact number that Postgres
 * would refuse as a bigint; no conversation has such an id, so it is unknown, not an internal error.
 */
export function conversationOf (value: number | null | undefined): number {
  const id = Number(value ?? 0)
  if (!Number.isSafeInteger(id) || id <= 0) throw new RequestError(UNKNOWN_CONVERSATION, `no conversation ${value ?? 0}`)
  return id
}

/** A seq as a safe integer, or 0 (which no message has) when it cannot be one. */
export const seqOf = (value: number | null | undefined): number => {
  const seq = Number(value ?? 0)
  return Number.isSafeInteger(seq) && seq > 0 ? seq : 0
}

/** Why `user` has no place in `conversation`: it does not exist, or it is not theirs. */
export async function outsiderError (db: Queryable, conversation: number): Promise<RequestError> {
  return await conversationExists(db, conversation)
    ? new RequestError(NOT_MEMBER, `not a member of conversation ${conversation}`)
    : new RequestError(UNKNOWN_CONVERSATION, `no conversation ${conversation}`)
}

/** The user's place in the conversation; `now`: only a member now (not one who left) will do. */
export async function requireMember (db: Queryable, conversation: number, user: number, now = false): Promise<Membership> {
  const place = await membership(db, conversation, user)
  if (!place) throw await outsiderError(db, conversation)
  if (now && place.leftSeq !== null) throw new RequestError(NOT_MEMBER, `no longer a member of conversation ${conversation}`)
  return place
}

/** Messages a member sees: after joining and, once gone, up to leaving (as history sync does). */
export const sees = (place: Membership, seq: number): boolean =>
  seq > place.joinedSeq && seq <= (place.leftSeq ?? place.lastSeq)

/**
 * Publishes one event to the inbox of each user. Called after the commit: a failure here is logged
 * and does not fail the request, which has taken effect (the devices catch up through sync).
 */
export async function publishToUsers (ctx: ChatContext, users: Iterable<number>, event: DownlinkEvent,
  options: PublishOptions = {}): Promise<void> {
  const bytes = encodeDownlink(event)
  const kind = Object.keys(event).find(key => key !== 'ref') ?? 'event'
  await Promise.all([...new Set(users)].map(user => publishBytes(ctx.broker, inboxTopic(user), bytes, options)
    .catch(err => ctx.log.error('event delivery failed', { kind, user, error: (err as Error).message }))))
}
