// Provisioning (issue 2 §6): what the admin command and the HTTP admin API both do, so the two
// cannot drift apart. Failures are AdminError, one line a person can act on.
import { hashPassword, weakPasswordReason } from '../auth/passwords.ts'
import { issueToken } from '../auth/tokens.ts'
import { changeContact, contactsSince, type ContactRow } from '../storage/contacts.ts'
import type { Db, Queryable } from '../storage/db.ts'
import { findUserByLogin, insertUser, listUsers, type User } from '../storage/users.ts'

export class AdminError extends Error {
  constructor (readonly status: 400 | 404 | 409, message: string) {
    super(message)
  }
}

const LOGIN = /^[a-z0-9][a-z0-9_.-]{1,31}$/

export interface UserView { id: number, login: string, devices?: number, createdAt: string }

const view = (user: User & { devices?: number }): UserView => ({
  id: user.id,
  login: user.login,
  ...(user.devices === undefined ? {} : { devices: user.devices }),
  createdAt: new Date(user.createdAt).toISOString(),
})

export async function addUser (db: Queryable, login: string, password: string | undefined): Promise<UserView> {
  if (!LOGIN.test(login)) {
    throw new AdminError(400, `invalid login "${login}": use 2-32 lower-case letters, digits, '.', '_' or '-', starting with a letter or digit`)
  }
  if (password !== undefined) {
    const weak = weakPasswordReason(password, login)
    if (weak) throw new AdminError(400, weak)
  }
  const user = await insertUser(db, login, password === undefined ? null : await hashPassword(password))
  if (!user) throw new AdminError(409, `duplicate login: "${login}" is taken`)
  return view(user)
}

export async function allUsers (db: Queryable): Promise<UserView[]> {
  return (await listUsers(db)).map(view)
}

export interface IssuedToken { login: string, user: number, token: string, expiresAt: string }

export async function tokenFor (db: Queryable, secret: Uint8Array, login: string, ttlMs: number): Promise<IssuedToken> {
  const user = await findUserByLogin(db, login)
  if (!user) throw new AdminError(404, `unknown user "${login}"`)
  const expires = Date.now() + ttlMs
  return { login, user: user.id, token: issueToken(secret, user.id, expires), expiresAt: new Date(expires).toISOString() }
}

// ---- contacts and blocking (issue 7 §6) ----

async function userNamed (db: Queryable, login: string): Promise<User> {
  const user = await findUserByLogin(db, login)
  if (!user) throw new AdminError(404, `unknown user "${login}"`)
  return user
}

const STATE_NAMES = ['none', 'contact', 'request sent', 'request received'] as const

export interface ContactView {
  user: number
  login: string
  state: typeof STATE_NAMES[number]
  /** The listed user blocks this one. */
  blocked: boolean
  /** A pending request's note. */
  note?: string
  since: string
}

const contactView = (row: ContactRow): ContactView => ({
  user: row.other,
  login: row.login,
  state: STATE_NAMES[row.state] ?? 'none',
  blocked: row.blocked,
  ...(row.note ? { note: row.note } : {}),
  since: new Date(row.time).toISOString(),
})

const ADMIN_PAGE = 1000

/** Everyone in the user's contact list: contacts, pending requests either way, blocked users. */
export async function contactList (db: Queryable, login: string): Promise<ContactView[]> {
  const user = await userNamed(db, login)
  const rows: ContactRow[] = []
  for (let since = 0; ;) {
    const page = await contactsSince(db, user.id, since, ADMIN_PAGE)
    rows.push(...page.rows.filter(row => row.state !== 0 || row.blocked))
    if (page.rows.length < ADMIN_PAGE) break
    since = page.rows.at(-1)!.version
  }
  return rows.sort((a, b) => a.login.localeCompare(b.login)).map(contactView)
}

/** The admin's changes: contacts at once, no relationship at all, block, unblock. */
export type AdminContactChange = 'connect' | 'disconnect' | 'block' | 'unblock'

export interface ContactChangeView {
  login: string
  other: string
  state: ContactView['state']
  blocked: boolean
  /** False when the relationship was so already: nothing was written. */
  changed: boolean
}

/**
 * `login` and `other` become contacts (`connect`, clearing a pending request), have no contact or
 * request left (`disconnect`), or `login` blocks or unblocks `other`. Returns the result and the
 * rows written, which a running broker delivers to both users' devices (http.ts); without a broker
 * the devices find them by their contact version at their next sync.
 */
export async function changeContactAsAdmin (db: Db, login: string, other: string, change: AdminContactChange):
  Promise<{ view: ContactChangeView, rows: ContactRow[] }> {
  if (login === other) throw new AdminError(400, `"${login}" cannot be their own contact`)
  const [user, peer] = [await userNamed(db, login), await userNamed(db, other)]
  const outcome = await db.transaction(tx => changeContact(tx, user.id, peer.id, change, '', Date.now()))
  if (!outcome.ok) throw new AdminError(404, `unknown user "${login}" or "${other}"`) // deleted meanwhile
  const { mine, changed } = outcome
  return {
    view: { login, other, state: STATE_NAMES[mine.state] ?? 'none', blocked: mine.blocked, changed: changed.length > 0 },
    rows: changed,
  }
}
