// Issue 6 §1: the broker on a Redis Cluster. A real cluster of three primaries (redis-server child
// processes of this test), two broker nodes on it and the test Postgres: delivery across nodes, an
// offline queue taken over on another node, presence counted across nodes, and every key in one
// hash slot (REDIS_CLUSTER=on puts the prefix in braces), so no multi-key step fails with CROSSSLOT.
import t, { type Test } from 'tap'
import { spawn, spawnSync } from 'node:child_process'
import { mkdtempSync, rmSync } from 'node:fs'
import { createServer } from 'node:net'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { Cluster, Redis } from 'ioredis'
import { loadConfig } from '../../broker/config.ts'
import {
  addUsersAt, closeAtEnd, connectDevice, freshStorage, inCI, requireServices, sendText, spawnBroker, textsOf, type Node,
} from '../harness.ts'

const WAIT_LIMIT_MS = 15_000

t.test('REDIS_CLUSTER needs a prefix that can be a hash tag', async t => {
  t.equal(loadConfig([], {}).redisCluster, false, 'off by default')
  t.equal(loadConfig([], { REDIS_CLUSTER: 'on' }).redisCluster, true)
  t.throws(() => loadConfig([], { REDIS_CLUSTER: 'on', REDIS_PREFIX: '' }), /REDIS_CLUSTER=on needs a REDIS_PREFIX/, 'an empty prefix is no hash tag')
  t.throws(() => loadConfig([], { REDIS_CLUSTER: 'on', REDIS_PREFIX: 'a}b:' }), /REDIS_PREFIX without braces/, 'nor one with a brace')
  t.equal(loadConfig([], { REDIS_PREFIX: '' }).redisPrefix, '', 'a single Redis takes any prefix')
})

/** Why a Redis Cluster cannot be started here, or null when it can. */
function redisServerMissing (): string | null {
  const version = spawnSync('redis-server', ['--version'], { encoding: 'utf8' })
  if (version.error) return `redis-server on PATH (${version.error.message})`
  const major = Number(/v=(\d+)/.exec(version.stdout)?.[1])
  // 7.0 brings --cluster-port and CLUSTER ADDSLOTSRANGE.
  return major >= 7 ? null : `redis-server 7 or newer (found: ${version.stdout.trim()})`
}

const freePort = () => new Promise<number>((resolve, reject) => {
  const probe = createServer().listen(0, '127.0.0.1', () => {
    const { port } = probe.address() as { port: number }
    probe.close(() => resolve(port))
  }).on('error', reject)
})

/** Polls `check` until it holds; fails with `what` after WAIT_LIMIT_MS. Not a timing assertion. */
async function eventually (check: () => Promise<boolean>, what: string): Promise<void> {
  const until = Date.now() + WAIT_LIMIT_MS
  while (!await check().catch(() => false)) {
    if (Date.now() > until) throw new Error(`${what}: not within ${WAIT_LIMIT_MS} ms`)
    await new Promise(resolve => setTimeout(resolve, 100))
  }
}

/**
 * Three primaries on free ports in a temp folder, the 16384 slots split between them, no replicas:
 * what `redis-cli --cluster create --cluster-replicas 0` makes. Stopped at the end of the test.
 */
async function startRedisCluster (t: Test): Promise<{ ports: number[] }> {
  const dir = mkdtempSync(join(tmpdir(), 'wmq-redis-cluster-'))
  const ports = [await freePort(), await freePort(), await freePort()]
  const busPorts = [await freePort(), await freePort(), await freePort()]
  const children = ports.map((port, i) => spawn('redis-server', [
    '--port', String(port), '--cluster-port', String(busPorts[i]), '--bind', '127.0.0.1',
    '--cluster-enabled', 'yes', '--cluster-config-file', `nodes-${port}.conf`, '--dir', dir,
    '--save', '', '--appendonly', 'no',
  ], { stdio: 'ignore' }))
  t.teardown(() => {
    for (const child of children) child.kill('SIGKILL')
    rmSync(dir, { recursive: true, force: true })
  })
  const admins = ports.map(port => new Redis(port, '127.0.0.1', { lazyConnect: true, maxRetriesPerRequest: 0, retryStrategy: () => null }))
  try {
    for (const admin of admins) {
      admin.on('error', () => {})
      await eventually(async () => { await admin.connect(); return true }, 'redis-server listening')
    }
    const share = Math.ceil(16384 / ports.length)
    for (const [i, admin] of admins.entries()) {
      await admin.cluster('SET-CONFIG-EPOCH', i + 1)
      await admin.cluster('ADDSLOTSRANGE', i * share, Math.min(16383, (i + 1) * share - 1))
    }
    for (const [i, port] of ports.entries()) if (i > 0) await admins[0].call('CLUSTER', 'MEET', '127.0.0.1', port, busPorts[i])
    await eventually(async () => {
      const infos = await Promise.all(admins.map(admin => admin.cluster('INFO') as Promise<string>))
      return infos.every(info => info.includes('cluster_state:ok') && info.includes(`cluster_known_nodes:${ports.length}`))
    }, 'the cluster agreeing on its slots')
  } finally {
    for (const admin of admins) admin.disconnect()
  }
  return { ports }
}

const on = (node: Node, login: string, device: string) =>
  connectDevice(node.mqttUrl, { clientId: device, username: login, password: `${login}-password` })

t.test('two nodes on a Redis Cluster of three primaries', async t => {
  const missing = redisServerMissing()
  if (missing) {
    if (inCI) t.fail(`CI=true and the Redis Cluster test cannot run: needs ${missing}`)
    else t.plan(0, `skipped: needs ${missing} to start a Redis Cluster`)
    return
  }
  if (!await requireServices(t)) return // the test Postgres
  const { ports } = await startRedisCluster(t)
  const storage = await freshStorage('services')
  t.teardown(() => storage.drop())
  const o = storage.overrides
  const env = {
    DATABASE_URL: o.databaseUrl!,
    // Two of the three nodes: ioredis finds the third from them.
    REDIS_URL: `redis://127.0.0.1:${ports[0]},redis://127.0.0.1:${ports[1]}`,
    REDIS_CLUSTER: 'on',
    REDIS_PREFIX: o.redisPrefix!,
    DATA_DIR: o.dataDir!,
  }
  const [a, b] = await Promise.all([spawnBroker(t, env), spawnBroker(t, env)])
  const [, bob, carol] = await addUsersAt(o.databaseUrl!, ['alice', 'bob', 'carol'])

  await t.test('a 1:1 message from a device on A reaches a device on B', async t => {
    const a1 = await on(a, 'alice', 'a1')
    const b1 = await on(b, 'bob', 'b1')
    closeAtEnd(t, a1, b1)
    t.ok((await sendText(a1, { user: bob }, 'hello across the cluster')).sendAck, 'stored and acknowledged on A')
    await b1.until(() => textsOf(b1).includes('hello across the cluster'), 'delivery on B')
    t.pass('delivered on B')
  })

  await t.test('a device away from A gets its offline queue when it reconnects to B', async t => {
    const a1 = await on(a, 'alice', 'a1')
    closeAtEnd(t, a1)
    const away = await on(a, 'bob', 'b2')
    await away.end()
    for (let i = 1; i <= 3; i++) await sendText(a1, { user: bob }, `queued${i}`)
    const back = await on(b, 'bob', 'b2')
    closeAtEnd(t, back)
    await back.until(() => textsOf(back).length >= 3, 'the queue on node B')
    t.same(textsOf(back), ['queued1', 'queued2', 'queued3'], 'the session left on A is served on B, in order')
  })

  await t.test('presence is counted across nodes', async t => {
    const b1 = await on(b, 'bob', 'b1')
    closeAtEnd(t, b1)
    const c1 = await on(a, 'carol', 'c1')
    await sendText(c1, { user: bob }, 'hi bob') // a 1:1 partner may read carol's presence
    await new Promise<void>((resolve, reject) => b1.client.subscribe(`p/${carol.toString(36)}`, { qos: 0 }, err => err ? reject(err) : resolve()))
    // The retained state and the live one may both arrive: repeats are one state.
    const states = () => b1.presence.map(p => p.presence.online ? 'online' : 'offline').filter((s, i, all) => s !== all[i - 1])
    await b1.until(() => states().length > 0, 'presence on B')
    const c2 = await on(b, 'carol', 'c2')
    await c1.end()
    await c2.end()
    await b1.until(() => states().includes('offline'), 'offline once both are gone')
    t.same(states(), ['online', 'offline'], 'carol stayed online while her device on B remained after the one on A left')
  })

  await t.test('every key is in the hash slot of the prefix', async t => {
    const cluster = new Cluster([{ host: '127.0.0.1', port: ports[0] }], { lazyConnect: true })
    cluster.on('error', () => {})
    await cluster.connect()
    t.teardown(() => cluster.disconnect())
    const keysPerPrimary = await Promise.all(cluster.nodes('master').map(node => node.keys(`*${o.redisPrefix!}*`)))
    const all = keysPerPrimary.flat()
    t.ok(all.length > 0, `the nodes keep their sessions and presence on the cluster (${all.length} keys)`)
    t.same(all.filter(key => !key.startsWith(`{${o.redisPrefix!}}`)), [], 'each key starts with the prefix in braces')
    t.equal(keysPerPrimary.filter(keys => keys.length > 0).length, 1, 'all of them on one primary')
    t.equal(new Set(await Promise.all(all.map(key => cluster.cluster('KEYSLOT', key)))).size, 1, 'in one slot')
  })

  await t.test('a node stops gracefully on the cluster', async t => {
    a.child.kill('SIGTERM')
    const limit = new Promise<string>(resolve => setTimeout(() => resolve(`still running after ${WAIT_LIMIT_MS} ms`), WAIT_LIMIT_MS).unref())
    t.equal(await Promise.race([a.exited, limit]), 0, 'SIGTERM: it closes its cluster connections and exits with 0')
  })

  for (const node of [a, b]) t.notMatch(node.log(), /CROSSSLOT|MOVED|redis (connection|fan-out) error/, 'no Redis error in the node\'s log')
})
