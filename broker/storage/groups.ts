// Groups and their members. A group's id is its conversation's id; every membership change is a
// system message in that conversation's sequence (issue 3 §4), written in the same transaction.
import type { Queryable } from './db.ts'
import type { StoredMessage } from './messages.ts'

export const MEMBER = 0
export const ADMIN = 1
export const OWNER = 2

export interface GroupRow { id: number, name: string, members: number, role: number }
export interface MemberRow { user: number, role: number, login: string }

/** Appends a system message (seq = last + 1) under the conversation's row lock. */
export async function appendSystemMessage (tx: Queryable, conversation: number, actor: number, content: Uint8Array, now: number): Promise<StoredMessage> {
  const [{ seq }] = await tx.query<{ seq: number }>(
    `UPDATE conversations SET last_seq = last_seq + 1, changed_in = pg_current_xact_id() WHERE id = $1 RETURNING last_seq AS seq`,
    [conversation])
  await tx.query(
    'INSERT INTO messages (conversation_id, seq, sender_id, client_msg_id, sent_at, content) VALUES ($1, $2, $3, NULL, $4, $5)',
    [conversation, seq, actor, now, Buffer.from(content)])
  // The actor has read what they did, as a sender has read their own message.
  await tx.query(
    `UPDATE members SET read_seq = greatest(read_seq, $2), delivered_seq = greatest(delivered_seq, $2)
      WHERE conversation_id = $1 AND user_id = $3`, [conversation, seq, actor])
  return { conversation, seq, sender: actor, clientMsgId: null, time: now, content, recalled: false, isGroup: true }
}

export async function existingUsers (db: Queryable, users: number[]): Promise<Set<number>> {
  const rows = await db.query<{ id: number }>('SELECT id FROM users WHERE id = ANY($1::bigint[])', [users])
  return new Set(rows.map(row => row.id))
}

export async function insertGroup (tx: Queryable, name: string, owner: number, members: number[]): Promise<number> {
  const [{ id }] = await tx.query<{ id: number }>('INSERT INTO conversations (is_group) VALUES (true) RETURNING id')
  await tx.query('INSERT INTO groups (id, name, created_by) VALUES ($1, $2, $3)', [id, name, owner])
  await tx.query(
    `INSERT INTO members (conversation_id, user_id, role)
     SELECT $1, u, CASE WHEN u = $2 THEN ${OWNER} ELSE ${MEMBER} END FROM unnest($3::bigint[]) AS u`, [id, owner, members])
  return id
}

/**
 * Locks the group for a change and returns it with its active members and their roles;
 * null when there is no such group.
 */
export async function lockGroup (tx: Queryable, group: number): Promise<{ name: string, lastSeq: number, roles: Map<number, number> } | null> {
  const rows = await tx.query<{ name: string, lastSeq: number }>(
    `SELECT g.name, c.last_seq AS "lastSeq" FROM conversations c JOIN groups g ON g.id = c.id WHERE c.id = $1 FOR UPDATE OF c`, [group])
  if (!rows[0]) return null
  const members = await tx.query<{ user: number, role: number }>(
    'SELECT user_id AS "user", role FROM members WHERE conversation_id = $1 AND left_seq IS NULL', [group])
  return { ...rows[0], roles: new Map(members.map(m => [m.user, m.role])) }
}

/** Adds users (or brings former members back) as members who see messages after `afterSeq`. */
export async function addMembers (tx: Queryable, group: number, users: number[], afterSeq: number): Promise<void> {
  await tx.query(
    `INSERT INTO members (conversation_id, user_id, role, joined_seq, delivered_seq, read_seq)
     SELECT $1, u, ${MEMBER}, $3, $3, $3 FROM unnest($2::bigint[]) AS u
     ON CONFLICT (conversation_id, user_id) DO UPDATE
       SET left_seq = NULL, role = ${MEMBER}, joined_seq = $3, delivered_seq = $3, read_seq = $3, changed_in = pg_current_xact_id()`,
    [group, users, afterSeq])
}

/** Members who go keep what they saw up to `lastSeq` (the system message telling them). */
export async function removeMembers (tx: Queryable, group: number, users: number[], lastSeq: number): Promise<void> {
  await tx.query(
    `UPDATE members SET left_seq = $3, role = ${MEMBER}, changed_in = pg_current_xact_id()
      WHERE conversation_id = $1 AND user_id = ANY($2::bigint[]) AND left_seq IS NULL`, [group, users, lastSeq])
}

export async function setRole (tx: Queryable, group: number, user: number, role: number): Promise<void> {
  await tx.query('UPDATE members SET role = $3 WHERE conversation_id = $1 AND user_id = $2', [group, user, role])
}

export async function renameGroup (tx: Queryable, group: number, name: string): Promise<void> {
  await tx.query('UPDATE groups SET name = $2 WHERE id = $1', [group, name])
}

export async function groupsOf (db: Queryable, user: number): Promise<GroupRow[]> {
  return db.query<GroupRow>(
    `SELECT g.id, g.name, m.role,
            (SELECT count(*) FROM members a WHERE a.conversation_id = g.id AND a.left_seq IS NULL)::int AS members
       FROM members m JOIN groups g ON g.id = m.conversation_id
      WHERE m.user_id = $1 AND m.left_seq IS NULL ORDER BY g.id`, [user])
}

export async function membersOf (db: Queryable, group: number): Promise<MemberRow[]> {
  return db.query<MemberRow>(
    `SELECT m.user_id AS "user", m.role, u.login FROM members m JOIN users u ON u.id = m.user_id
      WHERE m.conversation_id = $1 AND m.left_seq IS NULL ORDER BY m.role DESC, m.user_id`, [group])
}
