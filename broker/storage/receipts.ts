// Read state (issue 3 §8): how far each member's messages were delivered and read.
import type { Queryable } from './db.ts'

export interface ReadState {
  deliveredSeq: number
  readSeq: number
  leftSeq: number | null
  lastSeq: number
  isGroup: boolean
}

/** The user's read state in a conversation, locked until the transaction ends; null when not a member now or before. */
export async function lockReadState (tx: Queryable, conversation: number, user: number): Promise<ReadState | null> {
  const rows = await tx.query<ReadState>(
    `SELECT m.delivered_seq AS "deliveredSeq", m.read_seq AS "readSeq", m.left_seq AS "leftSeq",
            c.last_seq AS "lastSeq", c.is_group AS "isGroup"
       FROM members m JOIN conversations c ON c.id = m.conversation_id
      WHERE m.conversation_id = $1 AND m.user_id = $2
        FOR UPDATE OF m`, [conversation, user])
  return rows[0] ?? null
}

/**
 * Moves the read state forward (never back) and marks the member's row changed in this transaction,
 * so the conversation-list sync of the user's devices brings the new unread count.
 */
export async function advanceReadState (tx: Queryable, conversation: number, user: number,
  deliveredSeq: number, readSeq: number): Promise<void> {
  await tx.query(
    `UPDATE members SET delivered_seq = greatest(delivered_seq, $3), read_seq = greatest(read_seq, $4),
            changed_in = pg_current_xact_id()
      WHERE conversation_id = $1 AND user_id = $2`, [conversation, user, deliveredSeq, readSeq])
}
