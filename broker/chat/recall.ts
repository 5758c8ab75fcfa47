// Recall and delete for me (issue 3 §9): validate, authorize, store, reply, deliver.
//  Recall: the sender takes a message back within RECALL_WINDOW; it keeps its seq (DESIGN 2: no
//  gap), loses its content, and shows as recalled in every member's history.
//  Delete for me: hides messages from the user's own history, on all of the user's devices.
import { wmq } from '../../schema/generated/chat.js'
import type { Identity } from '../auth/authenticate.ts'
import { activeMembers } from '../storage/messages.ts'
import { deleteForUser, lockMessage, markRecalled } from '../storage/recall.ts'
import type { ChatContext } from './context.ts'
import { RequestError } from './errors.ts'
import { conversationOf, publishToUsers, requireMember, seqOf, sees } from './membership.ts'
import type { DownlinkEvent } from './reply.ts'

const { UNKNOWN_MESSAGE, FORBIDDEN, RECALL_WINDOW_PASSED, INVALID_ARGUMENT } = wmq.ErrorCode

/** The most seqs one DeleteForMe may name: a bounded statement and a bounded reply (DESIGN 7). */
export const MAX_DELETE_SEQS = 100

export async function recall (ctx: ChatContext, who: Identity, request: wmq.IRecall): Promise<DownlinkEvent> {
  const conversation = conversationOf(request.conversation)
  const seq = seqOf(request.seq)

  const members = await ctx.db.transaction(async tx => {
    const place = await requireMember(tx, conversation, who.user)
    const message = sees(place, seq) ? await lockMessage(tx, who.user, conversation, seq) : null
    if (!message) throw new RequestError(UNKNOWN_MESSAGE, `no message ${request.seq ?? 0} in conversation ${conversation}`)
    if (message.system) throw new RequestError(FORBIDDEN, 'a system message cannot be recalled')
    if (message.sender !== who.user) throw new RequestError(FORBIDDEN, 'only its sender may recall a message')
    // A repeat (the device lost the reply) succeeds again and tells nobody anything new, even
    // once the window has passed.
    if (message.recalled) return []
    // The window counts from the commit time the sender got in its SendAck; a window of 0 turns recall off.
    const age = Date.now() - message.sentAt
    if (age >= ctx.limits.recallWindowMs) {
      throw new RequestError(RECALL_WINDOW_PASSED, `sent ${age} ms ago; recall is possible for ${ctx.limits.recallWindowMs} ms`)
    }
    await markRecalled(tx, conversation, seq)
    return activeMembers(tx, conversation)
  })

  const event: DownlinkEvent = { recall: { conversation, seq } }
  // Every device of every member, the sender's other devices included; DESIGN 7, no echo to the
  // device that recalled: it has the reply.
  await publishToUsers(ctx, members, event, { notTo: who.device })
  return event
}

export async function deleteForMe (ctx: ChatContext, who: Identity, request: wmq.IDeleteForMe): Promise<DownlinkEvent> {
  const conversation = conversationOf(request.conversation)
  const asked = request.seqs ?? []
  if (asked.length === 0 || asked.length > MAX_DELETE_SEQS) {
    throw new RequestError(INVALID_ARGUMENT, `name 1-${MAX_DELETE_SEQS} seqs to delete, not ${asked.length}`)
  }
  // Seqs that no message can have (0, past 2^53) are among those not deleted.
  const seqs = [...new Set(asked.map(seqOf))].filter(seq => seq > 0)

  const outcome = await ctx.db.transaction(async tx => {
    const place = await requireMember(tx, conversation, who.user)
    // Only messages the user sees: after joining and, once gone, up to leaving.
    return deleteForUser(tx, who.user, conversation, seqs, place.joinedSeq, place.leftSeq ?? place.lastSeq)
  })

  // The reply names every asked seq that is now hidden, so a repeat gets the same answer; the
  // user's other devices hear only of those this request hid.
  const fresh = outcome.filter(row => row.fresh).map(row => row.seq)
  if (fresh.length > 0) await publishToUsers(ctx, [who.user], { deleted: { conversation, seqs: fresh } }, { notTo: who.device })
  return { deleted: { conversation, seqs: outcome.map(row => row.seq) } }
}
