// The catch-up after every connect (PROTOCOL.md §Sync): the conversation list since the stored
// cursor, then, for each conversation whose last seq is past the last applied one, the missing
// history, in order. QoS 1 and the persistent session usually bring the same messages first; the
// catch-up is what makes a lost session, an expired queue or a restarted broker cost latency and
// never a message (DESIGN 1). Duplicates of what the session delivers are dropped by Ordering.
//
// How a new device starts: its first catch-up lists every conversation (empty cursor) and starts each
// at its current last_seq: nothing older is replayed as new `message` events (the application shows
// older messages with history(), page by page, so a phone on 2G does not download years of chat at
// its first login). Messages committed after that list are delivered in order. Sends the
// application makes before it are held in the outbox until it is over, so that they come after
// the start. Once it is over, a conversation never seen before starts at seq 0 (the broker serves
// a member only what came after joining). The list also names what was recalled, and deleted by the
// user on another device, since the cursor: those become `recall` and `deleted` events again.
import type { Ordering } from './ordering.ts'
import type { ConversationSummary } from './wire.ts'

/** `cursor`: the broker's opaque list cursor, base64; '' asks for every conversation. */
export interface ConversationListPage { summaries: ConversationSummary[], cursor: string, more: boolean }

export interface CatchUpDeps {
  ordering: Ordering
  /** One page of SyncConversations{cursor}. */
  listPage (cursor: string): Promise<ConversationListPage>
  /** Whether the device finished a first catch-up before. */
  started: boolean
  /** The list is applied up to this cursor: store it. */
  saveCursor (cursor: string): void
  /** History pulls run at most this many at a time (one TCP connection: more buys nothing on 2G). */
  parallelPulls: number
  /**
   * A conversation's recalls and the user's deletions since the cursor, after its messages are
   * applied: the events a lost session would have brought (the application may have had them).
   */
  changes (summary: ConversationSummary): void
}

/** Runs one catch-up from `since`; resolves with the conversations that changed. */
export async function catchUp (deps: CatchUpDeps, since: string): Promise<ConversationSummary[]> {
  const changed: ConversationSummary[] = []
  let cursor = since
  for (;;) {
    const page = await deps.listPage(cursor)
    const behind: number[] = []
    for (const summary of page.summaries) {
      changed.push(summary)
      if (!deps.started) deps.ordering.setBaseline(summary.conversation, summary.lastSeq)
      else if (summary.lastSeq > (deps.ordering.appliedOf(summary.conversation) ?? 0)) behind.push(summary.conversation)
    }
    await inParallel(behind, deps.parallelPulls, conversation => deps.ordering.fill(conversation))
    if (deps.started) for (const summary of page.summaries) deps.changes(summary)
    // Stored only once every conversation of the page is applied: a crash before it means the
    // next catch-up lists them again. A page's cursor goes on from it, the last one's after the list.
    if (page.cursor !== cursor) deps.saveCursor(cursor = page.cursor)
    if (!page.more || page.summaries.length === 0) return changed
  }
}

async function inParallel<T> (items: T[], width: number, run: (item: T) => Promise<void>): Promise<void> {
  let next = 0
  const worker = async () => {
    while (next < items.length) await run(items[next++])
  }
  await Promise.all(Array.from({ length: Math.min(width, items.length) }, worker))
}
