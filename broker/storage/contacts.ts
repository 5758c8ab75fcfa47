// Contacts, blocking and who may reach whom (issue 7). One relationship is two rows, each one
// user's view of it (schema/003_contacts.sql); a change writes the rows it alters in one
// transaction, each stamped with its owner's next contact version (1, 2, 3, ... per user), so a
// device applies changes in order and can tell a gap from a version it has not seen.
import type { Queryable } from './db.ts'

// wmq.ContactState
export const NONE = 0
export const CONTACT = 1
export const REQUEST_SENT = 2
export const REQUEST_RECEIVED = 3

// wmq.Audience
export const ANYONE = 0
export const CONTACTS = 1

/** One user's (`owner`) view of their relationship with `other`. */
export interface ContactRow {
  owner: number
  other: number
  /** The other user's login. */
  login: string
  state: number
  note: string
  /** The owner blocks the other; only ever shown to the owner. */
  blocked: boolean
  version: number
  time: number
}

/**
 * What a user does to a relationship. `connect` and `disconnect` are the admin's: contacts at once,
 * or no relationship at all (contact or pending request, either way).
 */
export type ContactChange = 'request' | 'accept' | 'decline' | 'cancel' | 'remove' | 'block' | 'unblock' | 'connect' | 'disconnect'

export type ContactRefusal = 'unknown user' | 'blocked' | 'already contacts' | 'no contact'

export type ContactOutcome =
  | { ok: true, mine: ContactRow, changed: ContactRow[] }
  | { ok: false, reason: ContactRefusal }

interface Side { state: number, note: string, blocked: boolean }

type Next = { mine: Side, theirs: Side } | 'repeat' | ContactRefusal

/**
 * The two views after `change`, or 'repeat' when its result already holds (a device retrying over
 * a flaky link gets the same answer and nothing is written), or why it cannot apply. The states
 * of the two views always pair up: none/none, contact/contact, sent/received.
 */
function next (change: ContactChange, note: string, mine: Side, theirs: Side): Next {
  const both = (state: number): Next => ({ mine: { ...mine, state, note: '' }, theirs: { ...theirs, state, note: '' } })
  switch (change) {
    case 'request':
      if (mine.state === CONTACT) return 'already contacts'
      if (mine.state === REQUEST_SENT) return 'repeat'
      if (mine.state === REQUEST_RECEIVED) return both(CONTACT) // they asked first: asking back accepts
      // Issue 7 §4: a user the other blocks cannot start a request.
      if (theirs.blocked) return 'blocked'
      return { mine: { ...mine, state: REQUEST_SENT, note }, theirs: { ...theirs, state: REQUEST_RECEIVED, note } }
    case 'accept':
      if (mine.state === CONTACT) return 'repeat'
      return mine.state === REQUEST_RECEIVED ? both(CONTACT) : 'no contact'
    case 'decline': return mine.state === REQUEST_RECEIVED ? both(NONE) : 'no contact'
    case 'cancel': return mine.state === REQUEST_SENT ? both(NONE) : 'no contact'
    case 'remove': return mine.state === CONTACT ? both(NONE) : 'no contact'
    // Blocking changes the blocker's view only: the blocked user's view, and so their devices,
    // see nothing (issue 7 §4: silent).
    case 'block': return mine.blocked ? 'repeat' : { mine: { ...mine, blocked: true }, theirs }
    case 'unblock': return mine.blocked ? { mine: { ...mine, blocked: false }, theirs } : 'repeat'
    case 'connect': return mine.state === CONTACT ? 'repeat' : both(CONTACT)
    case 'disconnect': return mine.state === NONE ? 'repeat' : both(NONE)
  }
}

const same = (a: Side, b: Side) => a.state === b.state && a.note === b.note && a.blocked === b.blocked

const ROW_COLUMNS = `c.owner_id AS owner, c.other_id AS other, u.login, c.state, c.note, c.blocked, c.version,
  c.changed_at AS time`

/** Applies `change` by `actor` to their relationship with `other`, in the caller's transaction. */
export async function changeContact (tx: Queryable, actor: number, other: number, change: ContactChange,
  note: string, now: number): Promise<ContactOutcome> {
  // Both users' rows are locked in id order: their versions move one at a time, and two changes
  // of the same pair (from either side) never deadlock.
  const users = await tx.query<{ id: number, login: string, version: number }>(
    `SELECT id, login, contact_version AS version FROM users WHERE id = ANY($1::bigint[]) ORDER BY id FOR NO KEY UPDATE`,
    [[actor, other]])
  if (users.length !== 2) return { ok: false, reason: 'unknown user' }
  const rows = await tx.query<ContactRow>(
    `SELECT ${ROW_COLUMNS} FROM contacts c JOIN users u ON u.id = c.other_id
      WHERE (c.owner_id = $1 AND c.other_id = $2) OR (c.owner_id = $2 AND c.other_id = $1)`, [actor, other])
  const loginOf = (id: number) => users.find(u => u.id === id)!.login
  const rowOf = (owner: number, of: number): ContactRow => rows.find(r => r.owner === owner) ??
    { owner, other: of, login: loginOf(of), state: NONE, note: '', blocked: false, version: 0, time: 0 }
  const mine = rowOf(actor, other)
  const theirs = rowOf(other, actor)

  const outcome = next(change, note, mine, theirs)
  if (outcome === 'repeat') return { ok: true, mine, changed: [] }
  if (typeof outcome === 'string') return { ok: false, reason: outcome }

  const changed: ContactRow[] = []
  for (const [row, side] of [[mine, outcome.mine], [theirs, outcome.theirs]] as const) {
    if (same(row, side)) continue
    const version = users.find(u => u.id === row.owner)!.version + 1
    await tx.query(
      `INSERT INTO contacts (owner_id, other_id, state, note, blocked, version, changed_at) VALUES ($1, $2, $3, $4, $5, $6, $7)
       ON CONFLICT (owner_id, other_id) DO UPDATE
         SET state = $3, note = $4, blocked = $5, version = $6, changed_at = $7`,
      [row.owner, row.other, side.state, side.note, side.blocked, version, now])
    await tx.query('UPDATE users SET contact_version = $2 WHERE id = $1', [row.owner, version])
    changed.push({ ...row, ...side, version, time: now })
  }
  return { ok: true, mine: changed.find(r => r.owner === actor) ?? mine, changed }
}

/**
 * The owner's contact list: since a version, every row changed after it (removals as state NONE);
 * from 0, the current list (contacts, pending requests, blocked users). `version` is the owner's
 * version the page is complete up to: read first, so every row up to it is committed (a row and
 * its owner's version are written in one transaction).
 */
export async function contactsSince (db: Queryable, owner: number, since: number, limit: number): Promise<{ rows: ContactRow[], version: number }> {
  const [user] = await db.query<{ version: number }>('SELECT contact_version AS version FROM users WHERE id = $1', [owner])
  const version = user?.version ?? 0
  const rows = await db.query<ContactRow>(
    `SELECT ${ROW_COLUMNS} FROM contacts c JOIN users u ON u.id = c.other_id
      WHERE c.owner_id = $1 AND c.version > $2 AND c.version <= $3 AND ($2 > 0 OR c.state <> ${NONE} OR c.blocked)
      ORDER BY c.version LIMIT $4`, [owner, since, version, limit])
  return { rows, version }
}

/** SQL: either of the users ($1 and the column `user`) blocks the other. */
const eitherBlocks = (user: string) => `EXISTS (SELECT 1 FROM contacts b WHERE b.blocked
  AND ((b.owner_id = $1 AND b.other_id = ${user}) OR (b.owner_id = ${user} AND b.other_id = $1)))`

/** SQL: $1's view of `user` is in one of `states`. */
const viewIn = (user: string, states: number[]) =>
  `EXISTS (SELECT 1 FROM contacts v WHERE v.owner_id = $1 AND v.other_id = ${user} AND v.state IN (${states.join(', ')}))`

/** SQL: $1 and `user` are both members of some conversation now (1:1 partners, group peers). */
const sharesConversation = (user: string) => `EXISTS (SELECT 1 FROM members x JOIN members y ON x.conversation_id = y.conversation_id
  WHERE x.user_id = $1 AND y.user_id = ${user} AND x.left_seq IS NULL AND y.left_seq IS NULL)`

/**
 * DESIGN §Topics, issue 7 §5: `reader` may read the presence of `user` (p/{user}) when they are
 * contacts, 1:1 partners or group peers, and never when either blocks the other. Symmetric.
 */
export async function mayReadPresence (db: Queryable, reader: number, user: number): Promise<boolean> {
  if (reader === user) return true
  const [row] = await db.query<{ may: boolean }>(
    `SELECT NOT ${eitherBlocks('$2')} AND (${viewIn('$2', [CONTACT])} OR ${sharesConversation('$2')}) AS may`, [reader, user])
  return row.may
}

/**
 * SQL for the profile columns ($1: the reader): oneself, and as for presence, plus a user who has
 * a request pending with the reader (so the reader sees who asks).
 */
export const mayReadProfileSql = (user: string) =>
  `(${user} = $1 OR (NOT ${eitherBlocks(user)} AND (${viewIn(user, [CONTACT, REQUEST_RECEIVED])} OR ${sharesConversation(user)})))`

/** Contacts of `user` who get its profile changes: neither blocks the other. */
export async function contactsToTell (db: Queryable, user: number): Promise<number[]> {
  const rows = await db.query<{ other: number }>(
    `SELECT c.other_id AS other FROM contacts c
      WHERE c.owner_id = $1 AND c.state = ${CONTACT} AND NOT ${eitherBlocks('c.other_id')}`, [user])
  return rows.map(r => r.other)
}

export type DirectVerdict = 'ok' | 'unknown user' | 'refused' | 'sender blocks'

/**
 * Issue 7 §4-5: may `sender` write to `recipient` 1:1? Refused when the recipient blocks the
 * sender, or takes 1:1 conversations from contacts only and the sender is none, unless the
 * recipient has written in their conversation already (a conversation the recipient took part in
 * stays open; a stranger's unanswered messages do not open it).
 */
export async function directVerdict (db: Queryable, sender: number, recipient: number): Promise<DirectVerdict> {
  const [row] = await db.query<{ verdict: DirectVerdict }>(directVerdictsSql('$1', '$2'), [[sender], [recipient]])
  return row.verdict
}

export const pairKey = (sender: number, recipient: number) => `${sender}>${recipient}`

/**
 * SQL: `directVerdict` for the (sender, recipient) pairs of two bigint[] parameters; rows of
 * (sender, recipient, verdict). The send path asks it once per batch, inside its plan (issue 3 §3).
 */
export const directVerdictsSql = (senders: string, recipients: string) =>
  `SELECT k.sender, k.recipient,
          CASE WHEN u.id IS NULL THEN 'unknown user'
               WHEN coalesce(theirs.blocked, false) THEN 'refused'
               WHEN coalesce(mine.blocked, false) THEN 'sender blocks'
               WHEN u.start_chat <> ${CONTACTS} OR coalesce(theirs.state, ${NONE}) = ${CONTACT} THEN 'ok'
               WHEN EXISTS (SELECT 1 FROM conversations c JOIN messages m ON m.conversation_id = c.id AND m.sender_id = k.recipient
                             WHERE c.user_low = least(k.sender, k.recipient) AND c.user_high = greatest(k.sender, k.recipient)) THEN 'ok'
               ELSE 'refused' END AS verdict
     FROM unnest(${senders}::bigint[], ${recipients}::bigint[]) AS k(sender, recipient)
     LEFT JOIN users u ON u.id = k.recipient
     LEFT JOIN contacts theirs ON theirs.owner_id = k.recipient AND theirs.other_id = k.sender
     LEFT JOIN contacts mine ON mine.owner_id = k.sender AND mine.other_id = k.recipient`

/**
 * Issue 7 §5: the users among `users` whom `adder` may not add to a group: they block the adder,
 * or take group additions from contacts only and the adder is none.
 */
export async function groupAddRefusals (db: Queryable, adder: number, users: number[]): Promise<number[]> {
  const rows = await db.query<{ id: number }>(
    `SELECT u.id FROM users u LEFT JOIN contacts c ON c.owner_id = u.id AND c.other_id = $1
      WHERE u.id = ANY($2::bigint[]) AND u.id <> $1
        AND (coalesce(c.blocked, false) OR (u.add_to_group = ${CONTACTS} AND coalesce(c.state, ${NONE}) <> ${CONTACT}))
      ORDER BY u.id`, [adder, users])
  return rows.map(r => r.id)
}
