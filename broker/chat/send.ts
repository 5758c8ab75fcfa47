// Send (issue 3 §1-2): validate, authorize, store, reply, deliver.
// DESIGN 3: idempotent by (sender, client_msg_id). DESIGN 4: the SendAck is sent after the commit.
import { wmq } from '../../schema/generated/chat.js'
import type { Identity } from '../auth/authenticate.ts'
import { encodeContent } from './content.ts'
import type { ChatContext } from './context.ts'
import { deliverMessage } from './deliver.ts'
import { RequestError } from './errors.ts'
import { requireMayWrite } from './policy.ts'
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
  const toGroup = Boolean(request.group)
  if (request.user) {
    // Issue 7 §4-5: blocks and "contacts only", checked before the conversation is made, so a
    // refused send stores nothing.
    await requireMayWrite(ctx.db, who.user, Number(request.user))
    conversation = await ctx.directConversation(who.user, Number(request.user))
  }
  else if (request.group) conversation = Number(request.group)
  else throw new RequestError(INVALID_ARGUMENT, 'a send needs a recipient: user or group')

  // Appended now, in the order this device sent; answered once committed.
  const outcome = ctx.writer.append({ sender: who.user, clientMsgId, conversation, content, toGroup })
  return {
    later: outcome.then(async result => {
      if (!result.ok) {
        throw result.reason === 'not a member'
          ? new RequestError(NOT_MEMBER, `not a member of group ${conversation}`)
          : new RequestError(UNKNOWN_GROUP, `no group ${conversation}`)
      }
      const { message } = result
      if (!result.repeat) {
        deliverMessage(ctx, message, result.members, who.device).catch(err =>
          ctx.log.error('delivery failed', { conversation: message.conversation, seq: message.seq, error: (err as Error).message }))
      }
      return { sendAck: { clientMsgId, conversation: message.conversation, seq: message.seq, time: message.time } }
    }),
  }
}
