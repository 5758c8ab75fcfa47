// Fan-out of a stored message (issue 3 §1): QoS 1 to the inbox of every member, so all their
// devices get it, the sender's other devices included, but not the device that sent it: that one
// gets the SendAck (DESIGN 4, 7). Deliveries leave in commit order, so in seq order: everything is
// published here, at once, in the order the messages were committed.
import { inboxTopic } from '../topics.ts'
import type { StoredMessage } from '../storage/messages.ts'
import type { ChatContext } from './context.ts'
import { publishBytes } from './reply.ts'
import { deliveryBytes, messageBytes } from './wire.ts'

/**
 * `copyForSender` false: no other device of the sender can take a copy (see
 * ChatContext.reachesOtherDevices), so none is published.
 */
export async function deliverMessage (ctx: ChatContext, message: StoredMessage, members: number[], fromDevice: number | null,
  copyForSender = true): Promise<void> {
  const forMembers = deliveryBytes(messageBytes(message))
  const sends: Array<Promise<void>> = []
  for (const user of members) {
    if (user !== message.sender) sends.push(publishBytes(ctx.broker, inboxTopic(user), forMembers))
  }
  if (copyForSender) {
    // The sender's own devices also learn the peer of a 1:1 conversation and the client_msg_id, so
    // they can show the message as their user's and match it to an outbox entry.
    const peer = message.isGroup ? undefined : members.find(user => user !== message.sender) ?? message.sender
    const forSender = deliveryBytes(messageBytes(message, { peer, withClientMsgId: true }))
    sends.push(publishBytes(ctx.broker, inboxTopic(message.sender), forSender, fromDevice === null ? {} : { notTo: fromDevice }))
  }
  await Promise.all(sends)
}
