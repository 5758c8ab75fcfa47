// Sync (issue 3 §6): what fills any gap a device sees (DESIGN 1, 5).
//  (a) the conversation list since a cursor: each conversation with its last seq, a preview of the
//      last message and the unread count; the cursor is a snapshot, so no change is skipped
//      whatever order transactions commit in (list-cursor.ts);
//  (b) history pages: after or before a seq, ascending within a page, bounded in count and in
//      bytes (HISTORY_PAGE_BYTES) so a 20 kbit/s link is never blocked by one huge reply (DESIGN 7).
import { wmq } from '../../schema/generated/chat.js'
import type { Identity } from '../auth/authenticate.ts'
import { conversationsSince, historyRange, messagesAt } from '../storage/messages.ts'
import { listCursorBytes, parseSnapshot, readListCursor, snapshotText } from './list-cursor.ts'
import type { ChatContext } from './context.ts'
import { conversationOf, requireMember } from './membership.ts'
import { conversationPageBytes, historyBytes, messageBytes } from './wire.ts'

const pageSize = (ctx: ChatContext, asked: number | null | undefined) =>
  Math.min(asked || ctx.limits.historyPage, ctx.limits.historyPageMax)

export async function syncHistory (ctx: ChatContext, who: Identity, ref: number, request: wmq.ISyncHistory): Promise<Buffer> {
  const conversation = conversationOf(request.conversation)
  const place = await requireMember(ctx.db, conversation, who.user)
  // A member sees what came after joining and, once gone, up to leaving.
  const visibleLast = place.leftSeq ?? place.lastSeq
  const after = Math.max(Number(request.afterSeq ?? 0), place.joinedSeq)
  const before = Math.min(Number(request.beforeSeq || Number.MAX_SAFE_INTEGER), visibleLast + 1)
  const limit = pageSize(ctx, request.limit)
  const newestFirst = Boolean(request.beforeSeq)
  const rows = await historyRange(ctx.db, who.user, conversation, place.isGroup, after, before, limit + 1, newestFirst)
  let more = rows.length > limit
  const candidates = newestFirst ? rows.slice(-limit).reverse() : rows.slice(0, limit) // nearest the cursor first
  const page: Uint8Array[] = []
  let bytes = 0
  for (const row of candidates) {
    const encoded = messageBytes(row, { withClientMsgId: row.sender === who.user })
    if (page.length > 0 && bytes + encoded.length > ctx.limits.historyPageBytes) {
      more = true
      break
    }
    page.push(encoded)
    bytes += encoded.length
  }
  if (newestFirst) page.reverse()
  return historyBytes(ref, { conversation, more, lastSeq: visibleLast }, page)
}

/**
 * One page of the conversation list (list-cursor.ts). A round's first page is read at the snapshot
 * that ends it; the pages after it continue in conversation id order from where the last stopped.
 */
export async function syncConversations (ctx: ChatContext, who: Identity, ref: number, request: wmq.ISyncConversations): Promise<Buffer> {
  const limit = pageSize(ctx, request.limit)
  const asked = readListCursor(request.cursor)
  const seen = asked.seen && snapshotText(asked.seen)
  const { rows, snapshot } = await conversationsSince(ctx.db, who.user, seen, asked.round?.after ?? 0, limit + 1)
  const more = rows.length > limit
  const page = rows.slice(0, limit)
  const lastSeen = (row: typeof page[number]) => row.leftSeq ?? row.lastSeq
  const previews = await messagesAt(ctx.db, page.filter(row => lastSeen(row) > 0)
    .map(row => ({ conversation: row.conversation, seq: lastSeen(row), isGroup: row.isGroup })))
  const previewOf = new Map(previews.map(m => [m.conversation, m]))
  const summaries = page.map(row => {
    const last = previewOf.get(row.conversation)
    return {
      summary: {
        conversation: row.conversation,
        lastSeq: lastSeen(row),
        unread: Math.max(0, lastSeen(row) - row.readSeq),
        readSeq: row.readSeq,
        peer: row.peer ?? 0,
        group: row.isGroup,
        name: row.name ?? '',
        recalled: row.recalled,
        deleted: row.deleted,
      },
      last: last ? messageBytes(last, { withClientMsgId: last.sender === who.user }) : null,
    }
  })
  const roundSnapshot = asked.round?.snapshot ?? parseSnapshot(snapshot)
  const next = more
    ? listCursorBytes({ seen: asked.seen, round: { snapshot: roundSnapshot, after: page.at(-1)!.conversation } })
    : listCursorBytes({ seen: roundSnapshot, round: null })
  return conversationPageBytes(ref, { cursor: next, more }, summaries)
}
