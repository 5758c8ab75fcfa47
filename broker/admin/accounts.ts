// Provisioning (issue 2 §6): what the admin command and the HTTP admin API both do, so the two
// cannot drift apart. Failures are AdminError, one line a person can act on.
import { hashPassword, weakPasswordReason } from '../auth/passwords.ts'
import { issueToken } from '../auth/tokens.ts'
import type { Queryable } from '../storage/db.ts'
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
