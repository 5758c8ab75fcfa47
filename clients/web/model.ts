// What the page shows, kept from the SDK's events and replies; no DOM here (view.ts draws it).
// Messages come from two places that overlap: the SDK's `message` events (exactly once, in seq
// order, from where this device started: DESIGN 5) and history pages asked for when a chat opens
// or the user scrolls up. Keyed by (conversation, seq) they merge without duplicates.
import type { ChatMessage, ConversationSummary, Presence, Receipt, TypingEvent } from '../ts/index.ts'

/** How long a typing hint shows without a fresh one (PROTOCOL §Typing: a QoS 0 stop can be lost). */
export const TYPING_SHOWN_MS = 5000

export interface Conversation {
  id: number
  /** 1:1: the other user; 0 in a group. */
  peer: number
  group: boolean
  /** A group's name. */
  name: string
  lastSeq: number
  /** This user's read position. */
  readSeq: number
  /** The partner's receipts (1:1): known from receipt events of this page's lifetime. */
  peerDelivered: number
  peerRead: number
  last: ChatMessage | null
  messages: Map<number, ChatMessage>
  /** Older history exists below the oldest message held: null until the first page is asked for. */
  moreOlder: boolean | null
  /** Who is typing, until when (ms since the epoch). */
  typing: Map<number, number>
}

/** The chat on screen: a conversation, or a 1:1 with someone not written to yet (conversation 0). */
export interface OpenChat { conversation: number, peer: number }

export class ChatModel {
  readonly conversations = new Map<number, Conversation>()
  readonly names = new Map<number, string>()
  readonly presence = new Map<number, Presence>()
  open: OpenChat | null = null

  constructor (readonly me: number, myLogin: string) {
    this.names.set(me, myLogin)
  }

  nameOf (user: number): string {
    return this.names.get(user) ?? `user ${user}`
  }

  titleOf (c: Conversation): string {
    if (c.group) return c.name || `group ${c.id}`
    return c.peer === this.me ? `${this.nameOf(c.peer)} (you)` : this.nameOf(c.peer)
  }

  /** Conversations, the latest activity first. */
  list (): Conversation[] {
    const at = (c: Conversation) => c.last?.time ?? 0
    return [...this.conversations.values()].sort((a, b) => at(b) - at(a) || b.id - a.id)
  }

  /** The open chat's conversation, once it has one. */
  openConversation (): Conversation | null {
    if (!this.open) return null
    if (this.open.conversation) return this.conversations.get(this.open.conversation) ?? null
    const found = [...this.conversations.values()].find(c => !c.group && c.peer === this.open!.peer)
    if (found) this.open.conversation = found.id
    return found ?? null
  }

  private conversation (id: number, peer = 0, group = false): Conversation {
    let c = this.conversations.get(id)
    if (!c) {
      c = { id, peer, group, name: '', lastSeq: 0, readSeq: 0, peerDelivered: 0, peerRead: 0, last: null, messages: new Map(), moreOlder: null, typing: new Map() }
      this.conversations.set(id, c)
    }
    if (!c.peer && peer) c.peer = peer
    return c
  }

  /** A conversation-list entry (from syncConversations or the SDK's `conversations` event). */
  summary (s: ConversationSummary): void {
    const c = this.conversation(s.conversation, s.peer, s.group)
    c.name = s.name || c.name
    if (s.lastSeq >= c.lastSeq) {
      c.lastSeq = s.lastSeq
      if (s.last) c.last = s.last
    }
    c.readSeq = Math.max(c.readSeq, s.readSeq)
  }

  /** A message, live or from history; false when it was held already. */
  message (m: ChatMessage): boolean {
    const c = this.conversation(m.conversation, m.group ? 0 : m.peer, m.group)
    if (c.messages.has(m.seq)) return false
    c.messages.set(m.seq, m)
    if (m.seq >= c.lastSeq) {
      c.lastSeq = m.seq
      c.last = m
    }
    // The broker marks a conversation read up to its sender's own message.
    if (m.mine) c.readSeq = Math.max(c.readSeq, m.seq)
    else c.typing.delete(m.sender)
    return true
  }

  unread (c: Conversation): number {
    return Math.max(0, c.lastSeq - c.readSeq)
  }

  receipt (r: Receipt): void {
    const c = this.conversations.get(r.conversation)
    if (!c) return // listed with its read state at the next sync
    if (r.user === this.me) { // read on this or another device of mine
      c.readSeq = Math.max(c.readSeq, r.readSeq)
    } else if (!c.group) {
      c.peerDelivered = Math.max(c.peerDelivered, r.deliveredSeq, r.readSeq)
      c.peerRead = Math.max(c.peerRead, r.readSeq)
    }
  }

  typing (t: TypingEvent): void {
    const c = this.conversations.get(t.conversation)
    if (!c || t.user === this.me) return
    if (t.active) c.typing.set(t.user, Date.now() + TYPING_SHOWN_MS)
    else c.typing.delete(t.user)
  }

  /** Who types in the conversation now. */
  typists (c: Conversation): number[] {
    const now = Date.now()
    return [...c.typing].filter(([, until]) => until > now).map(([user]) => user)
  }

  recalled (conversation: number, seq: number): void {
    const m = this.conversations.get(conversation)?.messages.get(seq)
    if (m) Object.assign(m, { recalled: true, content: null })
  }

  deleted (conversation: number, seqs: number[]): void {
    const c = this.conversations.get(conversation)
    for (const seq of seqs) c?.messages.delete(seq)
  }

  /** Own messages: 'read', 'delivered' or 'sent' by the partner's receipts (1:1 only). */
  statusOf (c: Conversation, m: ChatMessage): 'read' | 'delivered' | 'sent' {
    if (m.seq <= c.peerRead) return 'read'
    if (m.seq <= c.peerDelivered) return 'delivered'
    return 'sent'
  }

  /** The held messages of a conversation in seq order. */
  messagesOf (c: Conversation): ChatMessage[] {
    return [...c.messages.values()].sort((a, b) => a.seq - b.seq)
  }

  oldestSeq (c: Conversation): number {
    let oldest = 0
    for (const seq of c.messages.keys()) if (!oldest || seq < oldest) oldest = seq
    return oldest
  }
}
