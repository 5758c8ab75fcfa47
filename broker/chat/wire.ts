// Message bytes, assembled from stored rows without decoding their content: the content column
// already holds wmq.Content bytes, and protobuf lets a message field be appended to an encoded
// message as (tag, length, bytes). Field numbers are those of schema/chat.proto;
// test/chat/wire.test.ts decodes what this builds with the generated code.
import type { Writer } from 'protobufjs'
import { wmq } from '../../schema/generated/chat.js'
import type { StoredMessage } from '../storage/messages.ts'

const field = {
  messageContent: 5,          // Message.content
  downlinkMessage: 4,         // Downlink.message
  downlinkConversations: 5,   // Downlink.conversations
  downlinkHistory: 6,         // Downlink.history
  historyMessages: 2,         // HistoryPage.messages
  summaryLast: 3,             // ConversationSummary.last
  pageConversations: 1,       // ConversationPage.conversations
}

/** Appends an already encoded message as field `number` (wire type 2, length-delimited). */
function append (writer: Writer, number: number, bytes: Uint8Array): Writer {
  return writer.uint32((number << 3) | 2).bytes(bytes)
}

const toBuffer = (bytes: Uint8Array) => Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength)

export interface MessageExtras {
  /** 1:1, to the sender's own devices: the other user. */
  peer?: number
  /** To the sender's own devices and in their history: the id the sender chose. */
  withClientMsgId?: boolean
}

export function messageBytes (m: StoredMessage, extras: MessageExtras = {}): Uint8Array {
  const writer = wmq.Message.encode({
    conversation: m.conversation,
    seq: m.seq,
    sender: m.sender,
    time: m.time,
    group: m.isGroup,
    recalled: m.recalled,
    peer: extras.peer ?? 0,
    clientMsgId: extras.withClientMsgId && m.clientMsgId ? m.clientMsgId : new Uint8Array(0),
  })
  if (m.content.length > 0) append(writer, field.messageContent, m.content)
  return writer.finish()
}

/** Downlink{message} bytes for a delivery (events carry no ref). */
export function deliveryBytes (message: Uint8Array): Buffer {
  return toBuffer(append(wmq.Downlink.encode({}), field.downlinkMessage, message).finish())
}

/** Downlink{ref, history} bytes for a page of encoded messages. */
export function historyBytes (ref: number, page: Omit<wmq.IHistoryPage, 'messages'>, messages: Uint8Array[]): Buffer {
  const pageWriter = wmq.HistoryPage.encode(page)
  for (const m of messages) append(pageWriter, field.historyMessages, m)
  return toBuffer(append(wmq.Downlink.encode({ ref }), field.downlinkHistory, pageWriter.finish()).finish())
}

/** Downlink{ref, conversations} bytes; each summary's `last` is an encoded message. */
export function conversationPageBytes (ref: number, page: Omit<wmq.IConversationPage, 'conversations'>,
  summaries: Array<{ summary: Omit<wmq.IConversationSummary, 'last'>, last: Uint8Array | null }>): Buffer {
  const pageWriter = wmq.ConversationPage.encode(page)
  for (const { summary, last } of summaries) {
    const writer = wmq.ConversationSummary.encode(summary)
    if (last) append(writer, field.summaryLast, last)
    append(pageWriter, field.pageConversations, writer.finish())
  }
  return toBuffer(append(wmq.Downlink.encode({ ref }), field.downlinkConversations, pageWriter.finish()).finish())
}
