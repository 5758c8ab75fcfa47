// Recall and delete for me (issue 3 §9): a recalled message keeps its place in the sequence and
// loses its content; a message deleted for one user is hidden from that user's history only.
import type { Queryable } from './db.ts'

export interface RecallTarget {
  sender: number
  sentAt: number
  recalled: boolean
  /** Written by the broker (membership changes): no client_msg_id. */
  system: boolean
}

/**
 * The message at (conversation, seq), locked until the transaction ends; null when there is none
 * or `user` deleted it for themselves (history hides it from them, so it is not theirs to act on).
 */
export async function lockMessage (tx: Queryable, user: number, conversation: number, seq: number): Promise<RecallTarget | null> {
  const rows = await tx.query<RecallTarget>(
    `SELECT m.sender_id AS sender, m.sent_at AS "sentAt", m.recalled, m.client_msg_id IS NULL AS system
       FROM messages m
      WHERE m.conversation_id = $1 AND m.seq = $2
        AND NOT EXISTS (SELECT 1 FROM deletions d WHERE d.user_id = $3 AND d.conversation_id = m.conversation_id AND d.seq = m.seq)
        FOR UPDATE OF m`, [conversation, seq, user])
  return rows[0] ?? null
}

/**
 * Empties the message and marks it recalled. The conversation and the message are marked changed in
 * this transaction: the conversation-list sync brings every member a preview that shows the recall,
 * and names the recalled seq to a device whose cursor did not see it (issue 3 §6).
 */
export async function markRecalled (tx: Queryable, conversation: number, seq: number): Promise<void> {
  await tx.query(
    `WITH touched AS (UPDATE conversations SET changed_in = pg_current_xact_id() WHERE id = $1)
     UPDATE messages SET recalled = true, content = ''::bytea, recalled_in = pg_current_xact_id()
      WHERE conversation_id = $1 AND seq = $2`, [conversation, seq])
}

/**
 * Hides, for `user` only, those of `seqs` that are messages of the conversation in (after, upTo].
 * Returns each such seq (ascending) and whether this call hid it (false: it already was). What it
 * hides keeps this transaction (deletions.deleted_in), and the user's place in the conversation is
 * marked changed in it: the conversation-list sync names those seqs to the user's devices whose
 * cursor did not see them (issue 3 §6).
 */
export async function deleteForUser (tx: Queryable, user: number, conversation: number, seqs: number[],
  after: number, upTo: number): Promise<Array<{ seq: number, fresh: boolean }>> {
  const rows = await tx.query<{ seq: number, fresh: boolean }>(
    `WITH found AS (
       SELECT m.seq FROM messages m
        WHERE m.conversation_id = $2 AND m.seq = ANY($3::bigint[]) AND m.seq > $4 AND m.seq <= $5
     ), hidden AS (
       INSERT INTO deletions (user_id, conversation_id, seq) SELECT $1, $2, seq FROM found
       ON CONFLICT DO NOTHING RETURNING seq
     )
     SELECT f.seq, h.seq IS NOT NULL AS fresh FROM found f LEFT JOIN hidden h ON h.seq = f.seq ORDER BY f.seq`,
    [user, conversation, seqs, after, upTo])
  const fresh = rows.filter(row => row.fresh).map(row => row.seq)
  if (fresh.length > 0) {
    await tx.query('UPDATE members SET changed_in = pg_current_xact_id() WHERE conversation_id = $1 AND user_id = $2', [conversation, user])
  }
  return rows
}
