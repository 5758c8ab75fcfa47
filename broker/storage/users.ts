// Users, devices and the broker's secrets.
import { randomBytes } from 'node:crypto'
import type { Queryable } from './db.ts'

export interface User { id: number, login: string, passwordHash: string | null, createdAt: Date }

const USER_COLUMNS = 'id, login, password_hash AS "passwordHash", created_at AS "createdAt"'

export async function findUserByLogin (db: Queryable, login: string): Promise<User | null> {
  const rows = await db.query<User>(`SELECT ${USER_COLUMNS} FROM users WHERE login = $1`, [login])
  return rows[0] ?? null
}

export async function findUserById (db: Queryable, id: number): Promise<User | null> {
  const rows = await db.query<User>(`SELECT ${USER_COLUMNS} FROM users WHERE id = $1`, [id])
  return rows[0] ?? null
}

/** The new user, or null when the login is taken. */
export async function insertUser (db: Queryable, login: string, passwordHash: string | null): Promise<User | null> {
  const rows = await db.query<User>(
    `INSERT INTO users (login, password_hash) VALUES ($1, $2) ON CONFLICT (login) DO NOTHING RETURNING ${USER_COLUMNS}`,
    [login, passwordHash])
  return rows[0] ?? null
}

export async function listUsers (db: Queryable): Promise<Array<User & { devices: number }>> {
  return db.query(`SELECT ${USER_COLUMNS},
      (SELECT count(*) FROM devices WHERE devices.user_id = users.id)::int AS devices
    FROM users ORDER BY id`)
}

/**
 * DESIGN 8: a device is bound to the user of its first login. Returns the user the device belongs
 * to, which is `user` unless another user bound it first. A known device is only read: a
 * reconnect costs no commit (a reconnect storm would otherwise be a storm of commits); its
 * last_seen is written when it disconnects (touchDevice).
 */
export async function bindDevice (db: Queryable, device: number, user: number): Promise<number> {
  const known = await deviceOwner(db, device)
  if (known !== null) return known
  const rows = await db.query<{ userId: number }>(
    'INSERT INTO devices (id, user_id) VALUES ($1, $2) ON CONFLICT (id) DO NOTHING RETURNING user_id AS "userId"', [device, user])
  return rows[0]?.userId ?? (await deviceOwner(db, device))! // or another connection bound it meanwhile
}

async function deviceOwner (db: Queryable, device: number): Promise<number | null> {
  const rows = await db.query<{ userId: number }>('SELECT user_id AS "userId" FROM devices WHERE id = $1', [device])
  return rows[0]?.userId ?? null
}

/** The named secret, made (random, 32 bytes) and stored by whichever node asks first. */
export async function brokerSecret (db: Queryable, name: string): Promise<Uint8Array> {
  await db.query('INSERT INTO broker_secrets (name, value) VALUES ($1, $2) ON CONFLICT (name) DO NOTHING',
    [name, randomBytes(32)])
  const rows = await db.query<{ value: Uint8Array }>('SELECT value FROM broker_secrets WHERE name = $1', [name])
  return rows[0].value
}

/** When any device of the user was last connected (ms since the epoch), 0 for never. */
export async function lastSeen (db: Queryable, user: number): Promise<number> {
  const rows = await db.query<{ at: number | null }>(
    'SELECT (extract(epoch FROM max(last_seen)) * 1000)::bigint AS at FROM devices WHERE user_id = $1', [user])
  return rows[0]?.at ?? 0
}

export async function touchDevice (db: Queryable, device: number): Promise<void> {
  await db.query('UPDATE devices SET last_seen = now() WHERE id = $1', [device])
}

/** True when the two users are both members of some conversation now (1:1 partners, group peers). */
export async function sharesConversation (db: Queryable, a: number, b: number): Promise<boolean> {
  const rows = await db.query(
    `SELECT 1 FROM members x JOIN members y ON x.conversation_id = y.conversation_id
      WHERE x.user_id = $1 AND y.user_id = $2 AND x.left_seq IS NULL AND y.left_seq IS NULL LIMIT 1`, [a, b])
  return rows.length > 0
}
