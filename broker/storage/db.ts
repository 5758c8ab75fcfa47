// Storage behind one interface (STYLE: the same SQL for PGlite and a Postgres server).
// DESIGN 9: PGlite under DATA_DIR by default; DATABASE_URL switches to a Postgres server (pg).
// Both hand back int8 as JS numbers (ids and seqs stay below 2^53) and bytea as Uint8Array.
import { mkdirSync } from 'node:fs'
import { join } from 'node:path'
import pg from 'pg'

export interface Queryable {
  /**
   * `name` makes the statement a prepared one on a Postgres server: parsed once per connection and,
   * once Postgres finds its generic plan as good as a fresh one, planned once too. For the send
   * path's two statements per batch, planning was about half of Postgres's CPU (BENCHMARKS.md).
   * PGlite ignores it.
   */
  query<Row = Record<string, unknown>> (sql: string, params?: unknown[], name?: string): Promise<Row[]>
  /** Runs a script of several statements (no parameters): migrations. */
  exec (sql: string): Promise<void>
}

export interface Db extends Queryable {
  readonly kind: 'pglite' | 'postgres'
  /** Runs `work` in one transaction: committed when it resolves, rolled back when it throws. */
  transaction<T> (work: (tx: Queryable) => Promise<T>): Promise<T>
  close (): Promise<void>
}

const INT8 = 20

/** True when a query failed because the database cannot be reached (not because of the query). */
export function isUnavailable (err: unknown): boolean {
  const { code, message } = err as { code?: string, message?: string }
  return ['ECONNREFUSED', 'ECONNRESET', 'ETIMEDOUT', 'EPIPE', '57P01', '57P03', '08006', '08001'].includes(code ?? '') ||
    /Connection terminated|connection is closed|Client has encountered a connection error/i.test(message ?? '')
}

export async function openPostgres (url: string): Promise<Db> {
  const types = {
    getTypeParser: (oid: number, format?: 'text' | 'binary') =>
      oid === INT8 ? (value: string) => Number(value) : pg.types.getTypeParser(oid, format),
  }
  const pool = new pg.Pool({ connectionString: url, types, max: 10 })
  // An idle client that loses its server emits here; the next query reports the failure.
  pool.on('error', () => {})
  const client = await pool.connect() // fail at start, not at the first request
  client.release()
  const toBytes = (row: Record<string, unknown>) => {
    for (const key in row) {
      const value = row[key]
      if (Buffer.isBuffer(value)) row[key] = new Uint8Array(value.buffer, value.byteOffset, value.byteLength)
    }
    return row
  }
  const run = async <Row>(target: pg.Pool | pg.PoolClient, sql: string, params?: unknown[], name?: string) =>
    (await target.query({ text: sql, values: params, name })).rows.map(toBytes) as Row[]
  return {
    kind: 'postgres',
    query: (sql, params, name) => run(pool, sql, params, name),
    exec: async sql => { await pool.query(sql) },
    async transaction (work) {
      const tx = await pool.connect()
      try {
        await tx.query('BEGIN')
        const result = await work({ query: (sql, params, name) => run(tx, sql, params, name), exec: async sql => { await tx.query(sql) } })
        await tx.query('COMMIT')
        return result
      } catch (err) {
        await tx.query('ROLLBACK').catch(() => {})
        throw err
      } finally {
        tx.release()
      }
    },
    close: () => pool.end(),
  }
}

/** PGlite in `dir`, or in memory when `dir` is null (tests). */
export async function openPglite (dir: string | null): Promise<Db> {
  const { PGlite } = await import('@electric-sql/pglite')
  if (dir) mkdirSync(dir, { recursive: true })
  const db = await PGlite.create(dir ? join(dir, 'pg') : undefined)
  return {
    kind: 'pglite',
    query: async (sql, params) => (await db.query(sql, params)).rows as never[],
    exec: async sql => { await db.exec(sql) },
    transaction: work => db.transaction(tx => work({
      query: async (sql, params) => (await tx.query(sql, params)).rows as never[],
      exec: async sql => { await tx.exec(sql) },
    })),
    close: () => db.close(),
  }
}
