// What a device keeps between runs, and where. One small JSON document per device:
//   - the outbox: every send not yet acknowledged, with its client_msg_id, so a restart re-sends it
//     with the same id and the broker stores it once (DESIGN 3);
//   - per conversation, the last seq applied to the application, so a restart does not replay
//     (DESIGN 5), and the conversation-list cursor the next catch-up starts from;
//   - whether the device has finished its first catch-up (see sync.ts: how a new device starts).
// Stores are pluggable: memoryStore() here, fileStore() in store-file.ts (Node only), and
// indexedDbStore() / localStorageStore() in store-browser.ts, kept apart so that a browser bundle
// pulls in no Node module.
import type { Recipient } from './wire.ts'

export const STATE_VERSION = 1

/** An outbox entry as stored. */
export interface SavedSend {
  /** The client_msg_id, hex. */
  id: string
  to: Recipient
  /** wmq.Content bytes, base64. */
  content: string
  /** ms since the epoch, when the application asked to send. */
  createdAt: number
}

export interface SavedState {
  version: typeof STATE_VERSION
  /** The device this state belongs to: a store is never shared by two device ids. */
  device: string
  /** This device's user id once learned; 0 before. */
  user: number
  /** The first catch-up finished: conversations seen from now on start at seq 0. */
  started: boolean
  /**
   * The conversation-list cursor (SyncConversations.cursor, base64) the next catch-up starts from;
   * '' before the first. A number here is a cursor of an older SDK, which could skip a change: it
   * is read as ''.
   */
  cursor: string
  /** Conversation id (decimal) -> last seq applied to the application. */
  applied: Record<string, number>
  /** Unacknowledged sends, in the order the application made them. */
  outbox: SavedSend[]
}

export interface Store {
  /** The saved state, or null for a device that has none yet. */
  load (): Promise<SavedState | null>
  /** Replaces the saved state; resolves once it is durable. Calls never overlap (createStateWriter). */
  save (state: SavedState): Promise<void>
}

export function emptyState (device: string): SavedState {
  return { version: STATE_VERSION, device, user: 0, started: false, cursor: '', applied: {}, outbox: [] }
}

/** The state a store returned, checked; a store of another device or version is refused, not guessed at. */
export function checkState (raw: unknown, device: string): SavedState {
  const state = raw as Partial<SavedState> | null
  if (!state || typeof state !== 'object' || state.version !== STATE_VERSION) {
    throw new Error(`the store holds no state of version ${STATE_VERSION}`)
  }
  if (state.device !== device) throw new Error(`the store belongs to device "${state.device}", not "${device}"`)
  return {
    ...emptyState(device),
    user: Number(state.user) || 0,
    started: Boolean(state.started),
    cursor: typeof state.cursor === 'string' ? state.cursor : '',
    applied: { ...state.applied },
    outbox: Array.isArray(state.outbox) ? state.outbox : [],
  }
}

/** Keeps the state in memory (JSON, so nothing is shared by reference): for tests and throwaway clients. */
export function memoryStore (): Store & { readonly saved: SavedState | null } {
  let text: string | null = null
  return {
    async load () { return text === null ? null : JSON.parse(text) as SavedState },
    async save (state) { text = JSON.stringify(state) },
    get saved () { return text === null ? null : JSON.parse(text) as SavedState },
  }
}

export interface StateWriter {
  /** Saves the state as it is now; resolves once a save that includes it is durable. */
  write (): Promise<void>
}

/**
 * Serialises saves and coalesces them: while one save runs, any number of write() calls share the
 * one save that starts after it, with the state as it is then.
 */
export function createStateWriter (store: Store, snapshot: () => SavedState): StateWriter {
  let current: Promise<void> = Promise.resolve()
  let next: Promise<void> | null = null
  return {
    write () {
      if (next) return next
      const run = current.catch(() => {}).then(() => {
        next = null
        return store.save(snapshot())
      })
      next = current = run
      return run
    },
  }
}
