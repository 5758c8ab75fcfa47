// Fan-out of a stored message (issue 3 §1): QoS 1 to the inbox of every member, so all their
// devices get it, the sender's other devices included, but not the device that sent it: that one
// gets the SendAck (DESIGN 4, 7). Deliveries leave in commit order, so in seq order.
import { inboxTopic } from '../topics.ts'
import type { StoredMessage } from '../storage/messages.ts'
import type { ChatContext } from './context.ts'
import { publishBytes } from './reply.ts'
import { deliveryBytes, messageBytes } from './wire.ts'

/** The last delivery of each broker, once published: the next one publishes after it, so in call (commit) order. */
const lastDelivery = new WeakMap<ChatContext, Promise<unknown>>()

export function deliverMessage (ctx: ChatContext, message: StoredMessage, members: number[], fromDevice: number | null): Promise<void> {
  // Most senders have no other device: then the copy for the sender's devices, which a store would
  // queue and clear again for the sending device alone, is not published at all. Asked now, used in
  // this delivery's turn.
  const toSenderDevices = fromDevice === null ? Promise.resolve(true)
    : ctx.reachesOtherDevices(message.sender, fromDevice).catch(() => true) // in doubt, publish it
  let published: Promise<unknown> = Promise.resolve()
  const turn = (lastDelivery.get(ctx) ?? Promise.resolve()).then(() => toSenderDevices).then(copyForSender => {
    const forMembers = deliveryBytes(messageBytes(message))
    const sends: Array<Promise<void>> = []
    for (const user of members) {
      if (user !== message.sender) sends.push(publishBytes(ctx.broker, inboxTopic(user), forMembers))
    }
    if (copyForSender) {
      // The sender's own devices also learn the peer of a 1:1 conversation and the client_msg_id,
      // so they can show the message as their user's and match it to an outbox entry.
      const peer = message.isGroup ? undefined : members.find(user => user !== message.sender) ?? message.sender
      const forSender = deliveryBytes(messageBytes(message, { peer, withClientMsgId: true }))
      sends.push(publishBytes(ctx.broker, inboxTopic(message.sender), forSender, fromDevice === null ? {} : { notTo: fromDevice }))
    }
    published = Promise.all(sends)
  })
  lastDelivery.set(ctx, turn.catch(() => {}))
  return turn.then(() => published).then(() => {})
}
