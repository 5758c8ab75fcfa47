// The SDK's vocabulary and its mapping to the wire (schema/chat.proto, the one source of message
// shapes). Ids and seqs are JS numbers: the generated code is built with --force-number and every
// id stays below 2^53 (DESIGN 7). Nothing here uses Node's Buffer, so browsers bundle it as is.
import { wmq } from '../../schema/generated/chat.js'

export { wmq }
export const Role = wmq.Role
export type Role = wmq.Role
export const ErrorCode = wmq.ErrorCode
export type ErrorCode = wmq.ErrorCode

/** What a message carries: exactly one of these (chat.proto `Content.body`). */
export type Content =
  | { text: string }
  | { media: wmq.IMedia }
  | { location: wmq.ILocation }
  | { custom: Uint8Array }
  | { system: wmq.ISystemEvent }

/** Whom a message is for: a user (1:1) or a group. */
export type Recipient = { user: number } | { group: number }

/** One message of one conversation; (conversation, seq) identifies it (DESIGN 2). */
export interface ChatMessage {
  conversation: number
  seq: number
  /** The user who sent it (for a system message: who made the change); 0 when the SDK does not know its own user id yet. */
  sender: number
  /** Sent by this user (from this device or another one). */
  mine: boolean
  /** Commit time on the server, ms since the epoch. */
  time: number
  /** null once recalled (or a kind this SDK does not know). */
  content: Content | null
  group: boolean
  /** 1:1: the other user, when known; 0 in a group. */
  peer: number
  recalled: boolean
  /** Hex of the sender's client_msg_id: present on this user's own messages only. */
  clientMsgId: string
}

export interface SendResult { clientMsgId: string, conversation: number, seq: number, time: number }
export interface ConversationSummary {
  conversation: number
  lastSeq: number
  /** Preview: the last message. */
  last: ChatMessage | null
  unread: number
  /** 1:1: the other user. */
  peer: number
  group: boolean
  /** A group's name. */
  name: string
  readSeq: number
  /**
   * Seqs recalled, and seqs the user deleted on another device, that the cursor the list was asked
   * from had not seen (the latest 100 of each): what a device whose session was lost did not hear
   * as events.
   */
  recalled: number[]
  deleted: number[]
}
export interface HistoryPage { conversation: number, messages: ChatMessage[], more: boolean, lastSeq: number }
export interface Receipt { conversation: number, user: number, deliveredSeq: number, readSeq: number }
export interface TypingEvent { conversation: number, user: number, active: boolean }
export interface RecallEvent { conversation: number, seq: number }
export interface DeletedEvent { conversation: number, seqs: number[] }
export interface GroupInfo { group: number, name: string, members: number, role: Role }
export interface Member { user: number, role: Role, login: string }
export interface Presence { user: number, online: boolean, lastSeen: number }
/** A membership change: a system message in the group's own sequence, applied in order. */
export interface GroupChange { group: number, seq: number, actor: number, time: number, event: wmq.ISystemEvent }

export function encodeUplink (uplink: wmq.IUplink): Uint8Array {
  return wmq.Uplink.encode(uplink).finish()
}

export function decodeDownlink (bytes: Uint8Array): wmq.Downlink {
  return wmq.Downlink.decode(bytes)
}

export function toHex (bytes: Uint8Array): string {
  let text = ''
  for (const byte of bytes) text += byte.toString(16).padStart(2, '0')
  return text
}

export function fromHex (text: string): Uint8Array {
  const bytes = new Uint8Array(text.length >> 1)
  for (let i = 0; i < bytes.length; i++) bytes[i] = parseInt(text.slice(2 * i, 2 * i + 2), 16)
  return bytes
}

export function toBase64 (bytes: Uint8Array): string {
  let binary = ''
  for (const byte of bytes) binary += String.fromCharCode(byte)
  return btoa(binary)
}

export function fromBase64 (text: string): Uint8Array {
  return Uint8Array.from(atob(text), char => char.charCodeAt(0))
}

/** 8 random bytes: plenty for a per-message id that must not repeat (DESIGN 3). */
export function newClientMsgId (): Uint8Array {
  return globalThis.crypto.getRandomValues(new Uint8Array(8))
}

const present = <T> (value: T | null | undefined): value is T => value !== null && value !== undefined

/** The content's one body, or null for none (a recalled message has empty content). */
export function contentOf (content: wmq.IContent | null | undefined): Content | null {
  if (!content) return null
  if (present(content.text)) return { text: content.text }
  if (present(content.media)) return { media: content.media }
  if (present(content.location)) return { location: content.location }
  if (present(content.custom)) return { custom: content.custom }
  if (present(content.system)) return { system: content.system }
  return null
}

export const asContent = (content: string | Content): Content => typeof content === 'string' ? { text: content } : content

/** What the SDK knows beyond one message: its own user, the peers of 1:1 conversations. */
export interface Context { self: number | null, peerOf (conversation: number): number }

export function toChatMessage (m: wmq.IMessage, context: Context): ChatMessage {
  const clientMsgId = m.clientMsgId?.length ? toHex(m.clientMsgId) : ''
  const sender = Number(m.sender ?? 0)
  const conversation = Number(m.conversation ?? 0)
  const group = Boolean(m.group)
  // Only the sender's own devices get a client_msg_id (deliveries and history alike).
  const mine = clientMsgId !== '' || (context.self !== null && sender === context.self)
  const peer = group ? 0 : Number(m.peer ?? 0) || (mine ? context.peerOf(conversation) : sender)
  return {
    conversation,
    seq: Number(m.seq ?? 0),
    sender,
    mine,
    time: Number(m.time ?? 0),
    content: m.recalled ? null : contentOf(m.content),
    group,
    peer,
    recalled: Boolean(m.recalled),
    clientMsgId,
  }
}

export function toSummary (s: wmq.IConversationSummary, context: Context): ConversationSummary {
  return {
    conversation: Number(s.conversation ?? 0),
    lastSeq: Number(s.lastSeq ?? 0),
    last: s.last ? toChatMessage(s.last, context) : null,
    unread: Number(s.unread ?? 0),
    peer: Number(s.peer ?? 0),
    group: Boolean(s.group),
    name: s.name ?? '',
    readSeq: Number(s.readSeq ?? 0),
    recalled: (s.recalled ?? []).map(Number),
    deleted: (s.deleted ?? []).map(Number),
  }
}

export function toHistoryPage (page: wmq.IHistoryPage, context: Context): HistoryPage {
  return {
    conversation: Number(page.conversation ?? 0),
    messages: (page.messages ?? []).map(m => toChatMessage(m, context)),
    more: Boolean(page.more),
    lastSeq: Number(page.lastSeq ?? 0),
  }
}

export const toReceipt = (r: wmq.IReceiptEvent): Receipt => ({
  conversation: Number(r.conversation ?? 0), user: Number(r.user ?? 0), deliveredSeq: Number(r.deliveredSeq ?? 0), readSeq: Number(r.readSeq ?? 0),
})

export const toGroupInfo = (g: wmq.IGroupInfo): GroupInfo => ({
  group: Number(g.group ?? 0), name: g.name ?? '', members: g.members ?? 0, role: g.role ?? Role.MEMBER,
})

export const toMember = (m: wmq.IMember): Member => ({ user: Number(m.user ?? 0), role: m.role ?? Role.MEMBER, login: m.login ?? '' })
