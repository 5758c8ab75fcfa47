// The events a client emits, typed by name. A small emitter of our own rather than Node's
// EventEmitter, so the browser bundle needs no polyfill; a throwing listener is reported on
// `error` and never breaks the SDK's state.
import type {
  wmq, ChatMessage, ConversationSummary, DeletedEvent, GroupChange, Presence, Receipt, RecallEvent, SendResult, TypingEvent,
} from './wire.ts'

/**
 * connecting:   the first connection is being made
 * online:       connected (CONNACK received); requests and the outbox flow
 * reconnecting: the link went down or was found dead; the next attempt waits a jittered backoff
 * offline:      closed by the application, or refused for good (see the `error` event)
 */
export type ConnectionState = 'connecting' | 'online' | 'reconnecting' | 'offline'

export interface ChatEvents {
  /** Every message of every conversation, exactly once and in seq order per conversation (DESIGN 5). */
  message: (message: ChatMessage) => void
  /** A membership change of a group, in the group's order (also emitted as a system `message`). */
  group: (change: GroupChange) => void
  receipt: (receipt: Receipt) => void
  typing: (typing: TypingEvent) => void
  /**
   * A message was recalled, or (deleted) the user deleted messages on another device. After a
   * reconnect whose session was lost, the catch-up tells them again from the conversation list:
   * the same recall or deletion can come twice, and applying it again changes nothing.
   */
  recall: (recall: RecallEvent) => void
  deleted: (deleted: DeletedEvent) => void
  presence: (presence: Presence) => void
  /** Conversations that changed since the last catch-up (on every connect). */
  conversations: (changed: ConversationSummary[]) => void
  /** An outbox entry was acknowledged (also one written before a restart, which has no promise). */
  sent: (result: SendResult) => void
  /** An outbox entry was refused for good and removed. */
  sendFailed: (failure: { clientMsgId: string, error: Error }) => void
  /** Any other event on the inbox, decoded (contacts, profiles, privacy: issue 7). */
  downlink: (downlink: wmq.Downlink) => void
  state: (state: ConnectionState, reason?: string) => void
  /** A catch-up after a connect finished: everything committed before it has been applied. */
  synced: () => void
  error: (error: Error) => void
}

export type Listener<E extends keyof ChatEvents> = ChatEvents[E]

export class Emitter {
  private readonly listeners = new Map<keyof ChatEvents, Set<(...args: never[]) => void>>()

  /** Adds a listener; returns the function that removes it. */
  on<E extends keyof ChatEvents> (event: E, listener: ChatEvents[E]): () => void {
    let set = this.listeners.get(event)
    if (!set) this.listeners.set(event, set = new Set())
    set.add(listener)
    return () => this.off(event, listener)
  }

  off<E extends keyof ChatEvents> (event: E, listener: ChatEvents[E]): void {
    this.listeners.get(event)?.delete(listener)
  }

  emit<E extends keyof ChatEvents> (event: E, ...args: Parameters<ChatEvents[E]>): void {
    const set = this.listeners.get(event)
    if (!set) return
    for (const listener of [...set]) {
      try {
        (listener as (...a: Parameters<ChatEvents[E]>) => void)(...args)
      } catch (err) {
        if (event !== 'error') this.emit('error', err instanceof Error ? err : new Error(String(err)))
      }
    }
  }
}
