// Profiles, privacy settings and user search (issue 7 §1, §3, §5): columns of `users`
// (schema/003_contacts.sql), so every user has them from the start.
import { CONTACT, mayReadProfileSql } from './contacts.ts'
import type { Queryable } from './db.ts'

export interface ProfileRow { user: number, login: string, displayName: string, avatar: string, status: string, time: number }
export interface ProfileFields { displayName?: string, avatar?: string, status?: string }

export interface PrivacyRow { hiddenFromSearch: boolean, startChat: number, addToGroup: number }

export interface UserCardRow { user: number, login: string, displayName: string }

const PROFILE_COLUMNS = `u.id AS "user", u.login, u.display_name AS "displayName", u.avatar, u.status, u.profile_time AS time`
const PRIVACY_COLUMNS = 'hidden_from_search AS "hiddenFromSearch", start_chat AS "startChat", add_to_group AS "addToGroup"'

/** The profiles among `users` that `reader` may read (contacts.ts, mayReadProfileSql), by id. */
export async function readableProfiles (db: Queryable, reader: number, users: number[]): Promise<ProfileRow[]> {
  return db.query<ProfileRow>(
    `SELECT ${PROFILE_COLUMNS} FROM users u WHERE u.id = ANY($2::bigint[]) AND ${mayReadProfileSql('u.id')} ORDER BY u.id`,
    [reader, users])
}

/** Sets the given fields (the others stay) and returns the profile; null for an unknown user. */
export async function setProfile (db: Queryable, user: number, fields: ProfileFields, now: number): Promise<ProfileRow | null> {
  const rows = await db.query<ProfileRow>(
    `UPDATE users u SET display_name = coalesce($2, u.display_name), avatar = coalesce($3, u.avatar),
            status = coalesce($4, u.status), profile_time = $5
      WHERE u.id = $1 RETURNING ${PROFILE_COLUMNS}`,
    [user, fields.displayName ?? null, fields.avatar ?? null, fields.status ?? null, now])
  return rows[0] ?? null
}

export async function profileOf (db: Queryable, user: number): Promise<ProfileRow | null> {
  const rows = await db.query<ProfileRow>(`SELECT ${PROFILE_COLUMNS} FROM users u WHERE u.id = $1`, [user])
  return rows[0] ?? null
}

/** Sets the given settings (the others stay) and returns them all. */
export async function setPrivacy (db: Queryable, user: number, fields: Partial<PrivacyRow>): Promise<PrivacyRow | null> {
  const rows = await db.query<PrivacyRow>(
    `UPDATE users SET hidden_from_search = coalesce($2, hidden_from_search), start_chat = coalesce($3, start_chat),
            add_to_group = coalesce($4, add_to_group)
      WHERE id = $1 RETURNING ${PRIVACY_COLUMNS}`,
    [user, fields.hiddenFromSearch ?? null, fields.startChat ?? null, fields.addToGroup ?? null])
  return rows[0] ?? null
}

/** `LIKE` pattern of a prefix: its own `%`, `_` and `\` match themselves. */
const prefixPattern = (prefix: string) => prefix.replace(/[\\%_]/g, '\\$&') + '%'

/**
 * Users whose login or display name starts with `prefix` (case-insensitive), the exact login
 * first, then by login. Left out: the searcher, users hidden from search, and users who block the
 * searcher (to the searcher they look hidden). Contacts are found whatever their setting.
 */
export async function searchUsers (db: Queryable, searcher: number, prefix: string, limit: number): Promise<UserCardRow[]> {
  const lower = prefix.toLowerCase()
  return db.query<UserCardRow>(
    `SELECT u.id AS "user", u.login, u.display_name AS "displayName" FROM users u
      WHERE (u.login LIKE $2 ESCAPE '\\' OR lower(u.display_name) LIKE $2 ESCAPE '\\')
        AND u.id <> $1
        AND (NOT u.hidden_from_search
             OR EXISTS (SELECT 1 FROM contacts c WHERE c.owner_id = $1 AND c.other_id = u.id AND c.state = ${CONTACT}))
        AND NOT EXISTS (SELECT 1 FROM contacts b WHERE b.owner_id = u.id AND b.other_id = $1 AND b.blocked)
      ORDER BY (u.login = $3) DESC, u.login LIMIT $4`,
    [searcher, prefixPattern(lower), lower, limit])
}
