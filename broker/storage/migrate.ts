// Numbered SQL files in schema/ (001_identity.sql, ...) applied in order at start, each in its own
// transaction, recorded in schema_migrations so a second start applies nothing. An advisory lock
// keeps two nodes starting together from applying the same file twice.
import { readdirSync, readFileSync } from 'node:fs'
import { dirname, join } from 'node:path'
import { fileURLToPath } from 'node:url'
import type { Db } from './db.ts'

const schemaDir = join(dirname(fileURLToPath(import.meta.url)), '..', '..', 'schema')
const MIGRATION_LOCK = 7274_1001

export interface Migration { version: number, name: string, sql: string }

export function listMigrations (dir = schemaDir): Migration[] {
  return readdirSync(dir)
    .filter(file => /^\d{3}_[\w-]+\.sql$/.test(file))
    .sort()
    .map(file => ({ version: Number(file.slice(0, 3)), name: file, sql: readFileSync(join(dir, file), 'utf8') }))
}

/** Applies what is missing; returns the names applied now. */
export async function migrate (db: Db, migrations = listMigrations()): Promise<string[]> {
  // Under the lock too: two nodes running CREATE TABLE IF NOT EXISTS at once can still collide.
  await db.transaction(async tx => {
    await tx.query('SELECT pg_advisory_xact_lock($1)', [MIGRATION_LOCK])
    await tx.query(`CREATE TABLE IF NOT EXISTS schema_migrations (
      version integer PRIMARY KEY, name text NOT NULL, applied_at timestamptz NOT NULL DEFAULT now())`)
  })
  const applied: string[] = []
  for (const migration of migrations) {
    const done = await db.transaction(async tx => {
      await tx.query('SELECT pg_advisory_xact_lock($1)', [MIGRATION_LOCK])
      const rows = await tx.query('SELECT 1 FROM schema_migrations WHERE version = $1', [migration.version])
      if (rows.length > 0) return false
      await tx.exec(migration.sql)
      await tx.query('INSERT INTO schema_migrations (version, name) VALUES ($1, $2)', [migration.version, migration.name])
      return true
    })
    if (done) applied.push(migration.name)
  }
  return applied
}
