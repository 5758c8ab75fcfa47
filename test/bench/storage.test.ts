// The commit probe of `npm run bench -- storage` (and of the throughput scenario, beside each weakmq
// phase) on the real Postgres server: its commits are real rows, it stops when told, and its
// database is gone afterwards. No timing assertions: the figures belong in BENCHMARKS.md.
import { setTimeout as sleep } from 'node:timers/promises'
import pg from 'pg'
import t from 'tap'
import { openCommitProbe } from '../../bench/scenarios/storage.ts'
import { BENCH_DATABASE_URL } from '../../bench/targets.ts'
import { requireServices } from '../harness.ts'

async function query<T extends pg.QueryResultRow> (database: string | null, text: string, values: unknown[] = []): Promise<T[]> {
  const url = new URL(BENCH_DATABASE_URL)
  if (database) url.pathname = `/${database}`
  const client = new pg.Client({ connectionString: url.toString() })
  await client.connect()
  try {
    return (await client.query<T>(text, values)).rows
  } finally {
    await client.end()
  }
}

t.test('the commit probe commits rows of its own, stops when told and drops its database', async (t) => {
  if (!await requireServices(t)) return
  const probe = await openCommitProbe()
  let closed = false
  t.teardown(async () => { if (!closed) await probe.close() })
  t.match(probe.settings, { fsync: /^(on|off)$/, synchronous_commit: /\w/ }, 'what a commit waits for is read from the server')

  const running = probe.start(1)
  await sleep(300)
  const result = await running.stop()
  t.ok(result.latency.count > 0, `${result.latency.count} commits measured`)
  const [{ rows }] = await query<{ rows: number }>(probe.database, 'SELECT count(*)::int AS rows FROM probe')
  t.equal(rows, result.latency.count, 'each measured commit stored its row')

  await sleep(50)
  const [{ after }] = await query<{ after: number }>(probe.database, 'SELECT count(*)::int AS after FROM probe')
  t.equal(after, rows, 'nothing is committed after stop()')

  await probe.close()
  closed = true
  const left = await query(null, 'SELECT 1 FROM pg_database WHERE datname = $1', [probe.database])
  t.equal(left.length, 0, 'the probe database is dropped')
})

t.test('a commit that fails ends the probe, and stop() says so', async (t) => {
  if (!await requireServices(t)) return
  const probe = await openCommitProbe()
  t.teardown(() => probe.close())
  const running = probe.start(1)
  await sleep(50)
  await query(null, 'SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = $1', [probe.database])
  await sleep(100) // the probe's next commit fails meanwhile: nothing may throw before stop()
  await t.rejects(running.stop(), /terminat|connection/i, 'stop() rejects with the commit\'s error')
})
