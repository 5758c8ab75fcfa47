// Receipts (issue 3 §8): validate, authorize, store, reply, deliver.
// Per user and conversation the broker keeps delivered-up-to and read-up-to seqs; unread = last seq
// - read seq (sync.ts). The state only moves forward, so receipts may arrive late, twice or out of
// order (DESIGN 5: at least once on the wire) and the result is the same.
import { wmq } from '../../schema/generated/chat.js'
import type { Identity } from '../auth/authenticate.ts'
import { activeMembers } from '../storage/messages.ts'
import { advanceReadState, lockReadState } from '../storage/receipts.ts'
import type { ChatContext } from './context.ts'
import { conversationOf, outsiderError, publishToUsers } from './membership.ts'
import type { DownlinkEvent } from './reply.ts'

/** A seq as asked: anything past 2^53 is past every seq, so the cap below takes it. */
const asked = (value: number | null | undefined) => Math.max(0, Number(value ?? 0))

export async function markReceipt (ctx: ChatContext, who: Identity, request: wmq.IMarkReceipt): Promise<DownlinkEvent> {
  const conversation = conversationOf(request.conversation)

  const state = await ctx.db.transaction(async tx => {
    const stored = await lockReadState(tx, conversation, who.user)
    if (!stored) throw await outsiderError(tx, conversation)
    // Seqs past what the user can see are capped to it, not refused: nothing exists past it, and a
    // device may mark "everything" read without knowing the last seq. A member who left sees up to
    // leaving.
    const upTo = stored.leftSeq ?? stored.lastSeq
    const readSeq = Math.max(stored.readSeq, Math.min(asked(request.readSeq), upTo))
    // What was read was delivered.
    const deliveredSeq = Math.max(stored.deliveredSeq, readSeq, Math.min(asked(request.deliveredSeq), upTo))
    const moved = readSeq > stored.readSeq || deliveredSeq > stored.deliveredSeq
    if (!moved) return { deliveredSeq, readSeq, recipients: [] }
    await advanceReadState(tx, conversation, who.user, deliveredSeq, readSeq)
    // The reader's other devices, so read state is the same on each; the 1:1 partner; group members
    // when GROUP_RECEIPTS is on. Someone who left a group tells only their own devices.
    const recipients = [who.user]
    if (stored.leftSeq === null && (!stored.isGroup || ctx.limits.groupReceipts)) {
      recipients.push(...(await activeMembers(tx, conversation)).filter(user => user !== who.user))
    }
    return { deliveredSeq, readSeq, recipients }
  })

  // The reply carries the stored state, so a device that asked with stale seqs learns the real ones.
  const event: DownlinkEvent = { receipt: { conversation, user: who.user, deliveredSeq: state.deliveredSeq, readSeq: state.readSeq } }
  // Only what moved is news. DESIGN 7, no echo: the device that sent the receipt has the reply.
  await publishToUsers(ctx, state.recipients, event, { notTo: who.device })
  return event
}
