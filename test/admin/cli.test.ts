// Issue 2 §6: the admin command, `npm run admin -- ...` (broker/admin/cli.ts), both ways: straight
// to the database when no broker holds it, and through the running broker's HTTP admin API when one
// does; as a function, as a real child process, and against a Postgres server (DATABASE_URL).
import t, { type Test } from 'tap'
import { spawn } from 'node:child_process'
import { existsSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join, resolve } from 'node:path'
import { fileURLToPath } from 'node:url'
import pg from 'pg'
import { AdminError, allUsers } from '../../broker/admin/accounts.ts'
import { adminFailure as failure, adminLines as admin } from '../harness.ts'
import { verifyToken } from '../../broker/auth/tokens.ts'
import { ConfigError, StartError } from '../../broker/config.ts'
import { createLogger } from '../../broker/log.ts'
import { RUNNING_FILE, startBroker, type Broker } from '../../broker/server.ts'
import { closeAtEnd, connectDevice, freshStorage, inCI, servicesMissing, testConfig } from '../harness.ts'

const root = resolve(fileURLToPath(import.meta.url), '../../..')

function tempDataDir (t: Test): string {
  const dir = mkdtempSync(join(tmpdir(), 'wmq-admin-'))
  t.teardown(() => rmSync(dir, { recursive: true, force: true }))
  return dir
}

/** A broker on `dataDir` (all ports 0) whose log lines are kept; closed at the end of the test. */
async function brokerOn (t: Test, overrides: Parameters<typeof testConfig>[0]): Promise<{ broker: Broker, logs: string[] }> {
  const logs: string[] = []
  const config = testConfig(overrides)
  const broker = await startBroker(config, createLogger(config.logLevel, line => logs.push(line)))
  t.teardown(() => broker.close())
  return { broker, logs }
}

const mqttUrl = (broker: Broker) => `mqtt://127.0.0.1:${broker.ports.MQTT}`

t.test('straight to the embedded database, no broker running', async t => {
  const dataDir = tempDataDir(t)
  const env = { DATA_DIR: dataDir }

  t.same(await admin(['user', 'add', 'alice', '--password', 'S3cret'], env), ['added user alice (id 1)'], 'user add prints the new id')
  t.notOk(existsSync(join(dataDir, RUNNING_FILE)), 'no broker runs: the command opened the database itself')

  const duplicate = await failure(['user', 'add', 'alice', '--password', 'S3cret'], env)
  t.type(duplicate, AdminError, 'a second add of the same login is an AdminError')
  t.match(duplicate, { status: 409, message: /^duplicate login: "alice" is taken$/ }, '  saying "duplicate login"')

  const weak = await failure(['user', 'add', 'xavier', '--password', 'abc'], env)
  t.type(weak, AdminError, 'a short password is an AdminError')
  t.match(weak, { status: 400, message: /^weak password/ }, '  saying "weak password"')
  // Logins are 2-32 characters, so a one-letter login is refused before its password is looked at.
  const short = await failure(['user', 'add', 'x', '--password', 'abc'], env)
  t.match(short, { status: 400, message: /^invalid login "x"/ }, 'a one-letter login is an invalid login')

  const bad = await failure(['user', 'add', 'Bad Login!'], env)
  t.type(bad, AdminError, 'a login with capitals, a space and "!" is an AdminError')
  t.match(bad, { status: 400, message: /^invalid login "Bad Login!"/ }, '  saying "invalid login"')
  t.notMatch(bad.message, /\n/, '  in one line')

  const token = await admin(['token', 'alice'], env)
  t.equal(token.length, 1, 'token prints one line')
  t.match(token[0], /^t1\.1\.[0-9a-z]+\.[\w-]+$/, '  a token for user 1')

  const unknown = await failure(['token', 'nobody'], env)
  t.type(unknown, AdminError, 'a token for an unknown login is an AdminError')
  t.match(unknown, { status: 404, message: /^unknown user "nobody"$/ }, '  saying "unknown user"')

  const list = await admin(['user', 'list'], env)
  t.equal(list.length, 1, 'user list: one line per user')
  t.match(list[0], /^\s+1 {2}alice\s+0 device\(s\) {2}since \d{4}-\d\d-\d\d$/, '  alice, id 1, no device yet')

  const listed = JSON.parse((await admin(['user', 'list', '--json'], env)).join('\n')) as unknown
  t.match(listed, [{ id: 1, login: 'alice', devices: 0, createdAt: /^\d{4}-\d\d-\d\dT/ }], 'user list --json parses')
  t.equal((listed as unknown[]).length, 1, '  and lists alice only: the failed adds left nothing')
  const added = JSON.parse((await admin(['user', 'add', 'bob', '--json'], env)).join('\n')) as unknown
  // Not id 2: the refused duplicate used up a number of the identity sequence (sequences have gaps).
  t.match(added, { id: Number, login: 'bob' }, 'user add --json parses (no password: a token-only user)')
  const before = Date.now()
  const issued = JSON.parse((await admin(['token', 'alice', '--ttl', '1h', '--json'], env)).join('\n')) as
    { login: string, user: number, token: string, expiresAt: string }
  t.match(issued, { login: 'alice', user: 1, token: /^t1\./ }, 'token --json parses')
  const lifetime = Date.parse(issued.expiresAt) - before
  t.ok(lifetime > 3_500_000 && lifetime <= 3_600_000 + 60_000, '  and --ttl 1h sets an expiry an hour away')

  const usage = await failure(['user', 'remove', 'alice'], env)
  t.type(usage, ConfigError, 'an unknown command is a ConfigError')
  t.match(usage.message, /^usage: npm run admin/, '  that shows the usage')

  // The token verifies with the secret a broker on this DATA_DIR uses, and a device gets in with it.
  const { broker } = await brokerOn(t, { dataDir })
  t.match(verifyToken(broker.tokenSecret, token[0]), { ok: true, user: 1 }, "the printed token verifies with the broker's secret")
  t.match(verifyToken(broker.tokenSecret, issued.token), { ok: true, user: 1 }, '  so does the --json one')
  const device = await connectDevice(mqttUrl(broker), { clientId: 'a1', username: 'alice', password: token[0] })
  closeAtEnd(t, device)
  t.ok(device.client.connected, 'a device connects with the printed token')
})

t.test('through the admin API of a running embedded broker', async t => {
  const dataDir = tempDataDir(t)
  const env = { DATA_DIR: dataDir }
  const { broker, logs } = await brokerOn(t, { dataDir })
  t.ok(existsSync(join(dataDir, RUNNING_FILE)), 'the running broker announces itself in DATA_DIR')

  t.same(await admin(['user', 'add', 'bob', '--password', 'S3cret'], env), ['added user bob (id 1)'], 'user add while the broker runs')
  t.match(logs.join('\n'), /admin API method=POST path=\/api\/users status=201/, '  went through the admin API (the broker logged it)')

  const duplicate = await failure(['user', 'add', 'bob', '--password', 'S3cret'], env)
  t.type(duplicate, AdminError, 'a duplicate through the API is the same AdminError')
  t.match(duplicate, { status: 409, message: /^duplicate login: "bob" is taken$/ }, '  with the same one line')
  const unknown = await failure(['token', 'nobody'], env)
  t.match(unknown, { status: 404, message: /^unknown user "nobody"$/ }, 'an unknown user through the API: 404, "unknown user"')

  const token = await admin(['token', 'bob'], env)
  t.match(logs.join('\n'), /admin API method=POST path=\/api\/users\/bob\/token status=201/, 'token went through the admin API')
  t.match(verifyToken(broker.tokenSecret, token[0]), { ok: true, user: 1 }, '  and verifies')
  t.match(JSON.parse((await admin(['user', 'list', '--json'], env)).join('\n')), [{ id: 1, login: 'bob' }], 'user list through the API')

  const device = await connectDevice(mqttUrl(broker), { clientId: 'b1', username: 'bob', password: token[0] })
  closeAtEnd(t, device)
  t.ok(device.client.connected, 'a device connects with the token')
  await device.end()

  await broker.close()
  t.notOk(existsSync(join(dataDir, RUNNING_FILE)), 'a closed broker takes its announcement away')
  t.match(JSON.parse((await admin(['user', 'list', '--json'], env)).join('\n')), [{ id: 1, login: 'bob', devices: 1 }],
    'with the broker gone the command opens the database itself: bob and his device are there')
})

t.test('how the command finds the broker', async t => {
  const dataDir = tempDataDir(t)
  // A broker.json left by a process that is gone: the command opens the database itself.
  const gone = spawn(process.execPath, ['-e', ''])
  const pid = gone.pid
  await new Promise(resolve => gone.on('exit', resolve))
  writeFileSync(join(dataDir, RUNNING_FILE), JSON.stringify({ pid, httpPort: 1 }) + '\n')
  t.same(await admin(['user', 'add', 'erin', '--password', 'S3cret'], { DATA_DIR: dataDir }), ['added user erin (id 1)'],
    'a broker.json of a dead process is ignored')

  // A running broker without an HTTP listener holds the database and has no API: one clear line.
  const { broker } = await brokerOn(t, { dataDir, httpPort: null })
  const noApi = await failure(['user', 'list'], { DATA_DIR: dataDir })
  t.type(noApi, StartError, 'a running broker with HTTP_PORT=off: StartError')
  t.match(noApi.message, new RegExp(`^the broker \\(pid ${process.pid}\\) holds the database and has no HTTP listener: .*HTTP_PORT`), '  that says what to do')
  await broker.close()

  // ADMIN_URL names the broker to talk to; an admin key it does not know is refused.
  const other = await brokerOn(t, { dataDir: 'memory', adminKey: 'the-right-key' })
  const adminUrl = `http://127.0.0.1:${other.broker.ports.HTTP}`
  t.same(await admin(['user', 'add', 'frank', '--password', 'S3cret'], { DATA_DIR: dataDir, ADMIN_URL: adminUrl, ADMIN_KEY: 'the-right-key' }),
    ['added user frank (id 1)'], 'ADMIN_URL and ADMIN_KEY: the user is added on that broker')
  t.match(await allUsers(other.broker.db), [{ login: 'frank' }], '  (in its database, not in DATA_DIR)')
  const wrongKey = await failure(['user', 'list'], { DATA_DIR: dataDir, ADMIN_URL: adminUrl, ADMIN_KEY: 'a-wrong-key' })
  t.match(wrongKey, { message: /^admin key required/ }, 'a wrong ADMIN_KEY: refused, in one line')
  const unreachable = await failure(['user', 'list'], { DATA_DIR: dataDir, ADMIN_URL: 'http://127.0.0.1:1' })
  t.type(unreachable, StartError, 'an ADMIN_URL nobody answers: StartError')
  t.match(unreachable.message, /^cannot reach the broker's admin API at http:\/\/127\.0\.0\.1:1/, '  naming the address')
})

interface Run { code: number | null, stdout: string, stderr: string }

/**
 * Runs `tsx broker/admin/cli.ts ...`, what `npm run admin` runs, with only the given settings. The
 * project's tsx binary rather than `npx`, so that npm's own warnings about the machine's npmrc do
 * not mix into the stderr under test.
 */
function runCommand (args: string[], settings: Record<string, string>): Promise<Run> {
  return new Promise((resolve, reject) => {
    const child = spawn(join(root, 'node_modules/.bin/tsx'), ['broker/admin/cli.ts', ...args], {
      cwd: root,
      env: { PATH: process.env.PATH, HOME: process.env.HOME, ...settings },
      stdio: ['ignore', 'pipe', 'pipe'],
    })
    let stdout = ''
    let stderr = ''
    child.stdout.on('data', (chunk: Buffer) => { stdout += chunk.toString() })
    child.stderr.on('data', (chunk: Buffer) => { stderr += chunk.toString() })
    child.on('error', reject)
    child.on('close', code => resolve({ code, stdout, stderr }))
  })
}

t.test('the real command, as a child process', async t => {
  const dataDir = tempDataDir(t)
  const added = await runCommand(['user', 'add', 'carol', '--password', 'S3cret'], { DATA_DIR: dataDir })
  t.equal(added.code, 0, 'user add exits 0')
  t.equal(added.stdout, 'added user carol (id 1)\n', '  and prints the new user')
  t.equal(added.stderr, '', '  with nothing on stderr')

  const duplicate = await runCommand(['user', 'add', 'carol', '--password', 'S3cret'], { DATA_DIR: dataDir })
  t.equal(duplicate.code, 1, 'a duplicate exits 1')
  t.equal(duplicate.stdout, '', '  prints nothing on stdout')
  t.match(duplicate.stderr, /^error: duplicate login: "carol" is taken\n$/, '  and one line on stderr starting with "error:"')
  t.notMatch(duplicate.stderr, /\n\s+at /, '  no stack trace')

  // While a broker holds DATA_DIR, the command (another process) goes through its admin API.
  const { broker, logs } = await brokerOn(t, { dataDir })
  const token = await runCommand(['token', 'carol'], { DATA_DIR: dataDir })
  t.equal(token.code, 0, 'token while the broker runs exits 0')
  t.match(token.stdout, /^t1\.1\.[0-9a-z]+\.[\w-]+\n$/, '  and prints the token')
  t.match(logs.join('\n'), /admin API method=POST path=\/api\/users\/carol\/token status=201/, '  which came through the admin API')
  t.match(verifyToken(broker.tokenSecret, token.stdout.trim()), { ok: true, user: 1 }, '  and verifies')

  const wrongPort = await runCommand(['user', 'list'], { DATA_DIR: dataDir, ADMIN_URL: `http://127.0.0.1:${broker.ports.WebSocket}` })
  t.equal(wrongPort.code, 1, 'ADMIN_URL at a port that is not the admin API exits 1')
  t.match(wrongPort.stderr, /^error: http:\/\/127\.0\.0\.1:\d+ answered HTTP 426 without JSON: it is not the broker's admin API \(HTTP_PORT\)\n$/,
    '  with one line, no stack trace')
})

t.test('straight to a Postgres server (DATABASE_URL)', async t => {
  const missing = await servicesMissing()
  if (missing) {
    if (inCI) return t.fail(`CI=true and a service is missing: ${missing}`)
    t.plan(0, `skipped: needs ${missing}`)
    return
  }
  const storage = await freshStorage('services')
  t.teardown(() => storage.drop())
  const databaseUrl = storage.overrides.databaseUrl ?? ''
  // DATA_DIR points at an empty folder: nothing may be written or read there with DATABASE_URL.
  const env = { DATABASE_URL: databaseUrl, DATA_DIR: storage.overrides.dataDir ?? '' }

  t.same(await admin(['user', 'add', 'dave', '--password', 'S3cret'], env), ['added user dave (id 1)'], 'user add against Postgres')
  const duplicate = await failure(['user', 'add', 'dave', '--password', 'S3cret'], env)
  t.match(duplicate, { status: 409, message: /^duplicate login/ }, '  a duplicate is refused there too')
  const token = await admin(['token', 'dave'], env)
  t.match(await admin(['user', 'list'], env), [/^\s+1 {2}dave\s/], 'user list against Postgres')
  t.notOk(existsSync(join(env.DATA_DIR, 'pg')), 'no embedded database was made in DATA_DIR')

  const db = new pg.Client({ connectionString: databaseUrl })
  await db.connect()
  t.teardown(() => db.end())
  const rows = (await db.query<{ login: string, hashed: boolean }>(
    "SELECT login, password_hash LIKE 'scrypt$%' AS hashed FROM users ORDER BY id")).rows
  t.same(rows, [{ login: 'dave', hashed: true }], "the user is a row in the server's database, password hashed")
  const secret = (await db.query<{ value: Buffer }>("SELECT value FROM broker_secrets WHERE name = 'token'")).rows[0]?.value
  t.ok(secret, 'the token key was made in the database, where every node finds it')
  t.match(verifyToken(secret ?? Buffer.alloc(0), token[0]), { ok: true, user: 1 }, 'the token verifies with that key')

  const { broker } = await brokerOn(t, storage.overrides)
  const device = await connectDevice(mqttUrl(broker), { clientId: 'd1', username: 'dave', password: token[0] })
  closeAtEnd(t, device)
  t.ok(device.client.connected, 'a broker on that database lets a device in with the token')
})
