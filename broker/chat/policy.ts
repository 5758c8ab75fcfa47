// Who may reach whom (issue 7 §4-5), checked before anything is stored, so a refusal writes
// nothing. A user's block and a user's "contacts only" setting are refused with the same code and
// the same words: a blocked user cannot tell a block from a setting (issue 7 §4: silent).
import { wmq } from '../../schema/generated/chat.js'
import type { Queryable } from '../storage/db.ts'
import { directVerdict, groupAddRefusals, type DirectVerdict } from '../storage/contacts.ts'
import { RequestError } from './errors.ts'

const { FORBIDDEN, UNKNOWN_USER } = wmq.ErrorCode

/** The refusal of anything `users` do not accept from the asker, whatever the reason. */
export const refusal = (users: number[]): RequestError =>
  new RequestError(FORBIDDEN, `${users.length > 1 ? 'users' : 'user'} ${users.join(', ')} ${users.length > 1 ? 'do' : 'does'} not accept this from you`)

/**
 * A user id from a request. A uint64 past 2^53 decodes to an inexact number that Postgres would
 * refuse as a bigint; no user has such an id, so it is unknown, not an internal error.
 */
export function userOf (value: number | null | undefined): number {
  const id = Number(value ?? 0)
  if (!Number.isSafeInteger(id) || id <= 0) throw new RequestError(UNKNOWN_USER, `no user ${value ?? 0}`)
  return id
}

/** Issue 7 §4-5: `sender` may write to `recipient` 1:1 (oneself: "saved messages", always). */
export async function requireMayWrite (db: Queryable, sender: number, recipient: number): Promise<void> {
  if (sender === recipient) return
  const verdict = await directVerdict(db, sender, userOf(recipient))
  if (verdict !== 'ok') throw directRefusal(verdict, recipient)
}

/** The error a device gets for a 1:1 send its recipient does not accept. */
export function directRefusal (verdict: Exclude<DirectVerdict, 'ok'>, recipient: number): RequestError {
  switch (verdict) {
    case 'unknown user': return new RequestError(UNKNOWN_USER, `no user ${recipient}`)
    case 'refused': return refusal([recipient])
    // The sender's own block: telling the sender so reveals nothing to anyone.
    case 'sender blocks': return new RequestError(FORBIDDEN, `you block user ${recipient}: unblock them to write`)
  }
}

/** Issue 7 §5: `adder` may add every one of `users` to a group (existing users, checked before). */
export async function requireMayAdd (db: Queryable, adder: number, users: number[]): Promise<void> {
  const refusing = await groupAddRefusals(db, adder, users)
  if (refusing.length > 0) throw refusal(refusing)
}
