// Issue 2 "Shown by": restarting the embedded broker keeps users and stored data. The database
// lives in DATA_DIR (PGlite); migrations are recorded there, so the second start applies none.
import t from 'tap'
import { spawn } from 'node:child_process'
import { existsSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join, resolve } from 'node:path'
import { fileURLToPath } from 'node:url'
import { addUser, allUsers } from '../../broker/admin/accounts.ts'
import { createLogger } from '../../broker/log.ts'
import { RUNNING_FILE, startBroker } from '../../broker/server.ts'
import { listMigrations, migrate } from '../../broker/storage/migrate.ts'
import { ask, closeAtEnd, connectDevice, connectRaw, sendText, startTestBroker, testConfig } from '../harness.ts'

const root = resolve(fileURLToPath(import.meta.url), '../../..')

/** The CONNACK return code of a refused connect, or 'accepted'. */
async function connackOf (url: string, clientId: string, username: string, password: string): Promise<number | string> {
  try {
    const client = await connectRaw(url, { clientId, username, password })
    await new Promise<void>(resolve => client.end(false, {}, () => resolve()))
    return 'accepted'
  } catch (err) {
    return (err as { code?: number }).code ?? (err as Error).message
  }
}

const migratedLines = (lines: string[]) => lines.filter(line => / INFO database migrated /.test(line))

t.test('a restart keeps users, devices, secrets and messages, and migrates nothing', async t => {
  const tb = await startTestBroker(t, 'embedded')
  const alice = await tb.addUser('alice', 'S3cret-pass')
  const bob = await tb.addUser('bob', 'bobs-password')
  const token = await tb.token('alice', 86_400_000)
  const adminKey = tb.broker.adminKey

  const a1 = await connectDevice(tb.mqttUrl, { clientId: 'a1', username: 'alice', password: 'S3cret-pass' })
  closeAtEnd(t, a1)
  const ack = await sendText(a1, { user: bob }, 'before the restart')
  t.ok(ack.sendAck, 'a message is stored before the restart')
  await a1.end()

  const firstStart = tb.logs.slice()
  t.match(migratedLines(firstStart), [new RegExp(`applied="?${listMigrations().map(m => m.name).join(',')}"?$`)],
    'the first start logs "database migrated" once, with every migration')

  await tb.restart()

  const recorded = await tb.broker.db.query<{ version: number, name: string }>('SELECT version, name FROM schema_migrations ORDER BY version')
  t.same(recorded, listMigrations().map(m => ({ version: m.version, name: m.name })), 'schema_migrations has each migration once')
  t.same(await migrate(tb.broker.db), [], 'migrating again applies nothing')

  t.match(await allUsers(tb.broker.db), [{ id: alice, login: 'alice', devices: 1 }, { id: bob, login: 'bob', devices: 0 }],
    'the users are still there, with their ids and devices')
  t.equal(tb.broker.adminKey, adminKey, 'the admin key is the same (kept in DATA_DIR)')

  t.equal(await connackOf(tb.mqttUrl, 'a1', 'alice', 'S3cret-pass'), 'accepted', 'alice logs in with her password on her device')
  t.equal(await connackOf(tb.mqttUrl, 'a2', 'alice', token), 'accepted', 'a token issued before the restart still works (the key is stored)')
  t.equal(await connackOf(tb.mqttUrl, 'a1', 'bob', 'bobs-password'), 5, "the device binding holds: bob on alice's device gets CONNACK 5")
  t.equal(await connackOf(tb.mqttUrl, 'b1', 'alice', 'wrong-password'), 4, 'a wrong password is still refused (CONNACK 4)')

  const b1 = await connectDevice(tb.mqttUrl, { clientId: 'b1', username: 'bob', password: 'bobs-password' })
  closeAtEnd(t, b1)
  const conversation = Number(ack.sendAck?.conversation)
  const page = await ask(b1, { syncHistory: { conversation, afterSeq: 0 } })
  t.same((page.history?.messages ?? []).map(m => ({ seq: Number(m.seq), sender: Number(m.sender), text: m.content?.text })),
    [{ seq: Number(ack.sendAck?.seq), sender: alice, text: 'before the restart' }], 'the message stored before the restart is in the history')

  const again = await connectDevice(tb.mqttUrl, { clientId: 'a1', username: 'alice', password: 'S3cret-pass' })
  closeAtEnd(t, again)
  const next = await sendText(again, { user: bob }, 'after the restart')
  t.same({ conversation: Number(next.sendAck?.conversation), seq: Number(next.sendAck?.seq) },
    { conversation, seq: Number(ack.sendAck?.seq) + 1 }, 'the conversation goes on: the next message gets the next seq')

  // The same logger served the second broker (it logged the logins above), and never said "migrated".
  const secondStart = tb.logs.slice(firstStart.length)
  t.match(secondStart.join('\n'), /INFO device connected login=alice device=a1/, 'the second broker logs to the same log')
  t.same(migratedLines(secondStart), [], '  and it has no "database migrated" line: the second start applied none')
})

t.test('after a crash (SIGKILL) the next start takes over DATA_DIR and keeps the data', async t => {
  const dataDir = mkdtempSync(join(tmpdir(), 'wmq-restart-'))
  t.teardown(() => rmSync(dataDir, { recursive: true, force: true }))
  // Set up a user with a broker in this process, then hand the folder to a real `npm start`.
  const setup = await startBroker(testConfig({ dataDir }), createLogger('error', () => {}))
  await addUser(setup.db, 'carol', 'S3cret-pass')
  await setup.close()

  const child = spawn(process.execPath, ['--import', 'tsx', 'broker/main.ts'], {
    cwd: root,
    env: { PATH: process.env.PATH, HOME: process.env.HOME, MQTT_PORT: '0', WS_PORT: '0', HTTP_PORT: '0', HOST: '127.0.0.1', DATA_DIR: dataDir },
    stdio: ['ignore', 'ignore', 'pipe'],
  })
  const exited = new Promise<NodeJS.Signals | null>(resolve => child.on('exit', (_code, signal) => resolve(signal)))
  t.teardown(() => { if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL') })
  await new Promise<void>((resolve, reject) => {
    let stderr = ''
    // A limit so a broken broker fails the test instead of hanging it; not a timing assertion.
    const timer = setTimeout(() => reject(new Error(`npm start did not listen; stderr:\n${stderr}`)), 30_000)
    child.stderr.on('data', (chunk: Buffer) => {
      stderr += chunk.toString()
      if (/ listening: /.test(stderr)) { clearTimeout(timer); resolve() }
    })
  })
  t.ok(existsSync(join(dataDir, RUNNING_FILE)), 'the running broker announced itself')
  child.kill('SIGKILL')
  t.equal(await exited, 'SIGKILL', 'killed without a chance to clean up')
  t.ok(existsSync(join(dataDir, RUNNING_FILE)), '  so its announcement is left behind')

  const logs: string[] = []
  const broker = await startBroker(testConfig({ dataDir }), createLogger('debug', line => logs.push(line)))
  t.teardown(() => broker.close())
  t.pass('a new broker starts on the folder of the dead one')
  t.same(migratedLines(logs), [], '  migrates nothing')
  t.match(await allUsers(broker.db), [{ login: 'carol' }], '  and finds the user')
  t.equal(await connackOf(`mqtt://127.0.0.1:${broker.ports.MQTT}`, 'c1', 'carol', 'S3cret-pass'), 'accepted', '  who logs in')
})

t.test('a leftover broker.json with garbage in it does not block a start', async t => {
  const dataDir = mkdtempSync(join(tmpdir(), 'wmq-restart-'))
  t.teardown(() => rmSync(dataDir, { recursive: true, force: true }))
  writeFileSync(join(dataDir, RUNNING_FILE), 'not json')
  const broker = await startBroker(testConfig({ dataDir }), createLogger('error', () => {}))
  t.ok(broker.ports.MQTT > 0, 'the broker starts')
  await broker.close()
  t.notOk(existsSync(join(dataDir, RUNNING_FILE)), 'and removes the file when it stops')
})
