// Send (issue 3 §1-2): validate, authorize, store, reply, deliver.
// DESIGN 3: idempotent by (sender, client_msg_id). DESIGN 4: the SendAck is sent after the commit.
import { wmq } from '../../schema/generated/chat.js'
import type { Identity } from '../auth/authenticate.ts'
import { encodeContent } from './content.ts'
import type { ChatContext } from './context.ts'
import { deliverMessage } from './deliver.ts'
import { RequestError } from './errors.ts'
import { directRefusal, requireMayWrite, userOf } from './policy.ts'
import type { Later } from './requests.ts'

const { INVALID_ARGUMENT, UNKNOWN_GROUP, NOT_MEMBER } = wmq.ErrorCode
const MAX_CLIENT_MSG_ID = 16

export async function send (ctx: ChatContext, who: Identity, request: wmq.ISend): Promise<Later> {
  const clientMsgId = request.clientMsgId ?? new Uint8Array(0)
  if (clientMsgId.length === 0 || clientMsgId.length > MAX_CLIENT_MSG_ID) {
    throw new RequestError(INVALID_ARGUMENT, `client_msg_id must be 1-${MAX_CLIENT_MSG_ID} bytes, not ${clientMsgId.length}`)
  }
  const content = encodeContent(request.content, ctx.limits.maxBody)
  let conversation: number
  let recipient: number | undefined
  const toGroup = Boolean(request.group)
  if (request.user) {
    recipient = userOf(request.user)
    // Issue 7 §4-5: blocks and "contacts only". The writer checks them for every 1:1 send in its
    // batch; a first send is also checked before its conversation is made, so a refused first
    // send stores nothing, not even an empty conversation.
    const known = ctx.cachedDirectConversation(who.user, recipient)
    if (known === undefined) await requireMayWrite(ctx.db, who.user, recipient)
    conversation = known ?? await ctx.directConversation(who.user, recipient)
  }
  else if (request.group) conversation = Number(request.group)
  else throw new RequestError(INVALID_ARGUMENT, 'a send needs a recipient: user or group')

  // Most senders have no other device, and then no copy of the message is published for the
  // sender's devices. Asked now, the answer is in by the commit; if not, the copy goes out (the
  // deliveries must leave at once, in commit order, so nothing waits for it). A device of the
  // sender's that connects within those milliseconds finds the message by its next sync.
  let copyForSender = true
  ctx.reachesOtherDevices(who.user, who.device).then(reaches => { copyForSender = reaches }, () => {})

  // Appended now, in the order this device sent; answered once committed.
  const outcome = ctx.writer.append({ sender: who.user, clientMsgId, conversation, content, toGroup, recipient })
  return {
    later: outcome.then(async result => {
      if (!result.ok) {
        switch (result.reason) {
          case 'not a member': throw new RequestError(NOT_MEMBER, `not a member of group ${conversation}`)
          case 'unknown conversation': throw new RequestError(UNKNOWN_GROUP, `no group ${conversation}`)
          default: throw directRefusal(result.reason, recipient!)
        }
      }
      const { message } = result
      if (!result.repeat) {
        deliverMessage(ctx, message, result.members, who.device, copyForSender).catch(err =>
          ctx.log.error('delivery failed', { conversation: message.conversation, seq: message.seq, error: (err as Error).message }))
      }
      return { sendAck: { clientMsgId, conversation: message.conversation, seq: message.seq, time: message.time } }
    }),
  }
}
