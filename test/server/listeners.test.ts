// Issue 2 §2: the listeners (broker/listeners.ts) and `npm start` (broker/main.ts): MQTT over
// WebSocket, mqtts and wss with a configured key and certificate, a taken port as one line naming
// the setting, graceful shutdown on SIGTERM, and one broker per DATA_DIR.
import t, { type Test } from 'tap'
import { execFileSync, spawn, type ChildProcess } from 'node:child_process'
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs'
import { connect, createServer, type Server, type Socket } from 'node:net'
import { tmpdir } from 'node:os'
import { join, resolve } from 'node:path'
import type { TLSSocket } from 'node:tls'
import { fileURLToPath } from 'node:url'
import { runAdmin } from '../../broker/admin/cli.ts'
import { StartError } from '../../broker/config.ts'
import { ListenError, coalesceWrites } from '../../broker/listeners.ts'
import { createLogger } from '../../broker/log.ts'
import { RUNNING_FILE, startBroker } from '../../broker/server.ts'
import { closeAtEnd, connectDevice, eachMode, sendToUser, startTestBroker, testConfig, wmq } from '../harness.ts'

const root = resolve(fileURLToPath(import.meta.url), '../../..')
const WAIT_LIMIT_MS = 30_000

function tempDir (t: Test, prefix = 'wmq-listen-'): string {
  const dir = mkdtempSync(join(tmpdir(), prefix))
  t.teardown(() => rmSync(dir, { recursive: true, force: true }))
  return dir
}

const text = (body: string): wmq.IDownlink => ({ message: { conversation: 1, seq: 1, sender: 2, content: { text: body } } })
const isText = (body: string) => (d: wmq.Downlink) => d.message?.content?.text === body

/** A plain TCP server holding a port on 127.0.0.1 (0: any free one) until the test ends. */
async function occupy (t: Test, port = 0): Promise<{ server: Server, port: number }> {
  const server = createServer(socket => socket.destroy())
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject)
    server.listen(port, '127.0.0.1', () => resolve())
  })
  t.teardown(() => new Promise<void>(resolve => server.close(() => resolve())))
  const address = server.address()
  return { server, port: typeof address === 'object' && address ? address.port : port }
}

/** Brokers started in this process log nowhere: what they log is not under test here. */
const quiet = createLogger('error', () => {})

/** A port that was free a moment ago (bound to 0 and released). */
async function freePort (): Promise<number> {
  const server = createServer()
  await new Promise<void>(resolve => server.listen(0, '127.0.0.1', () => resolve()))
  const address = server.address()
  await new Promise<void>(resolve => server.close(() => resolve()))
  return typeof address === 'object' && address ? address.port : 0
}

/** True when `port` on 127.0.0.1 can be bound (and it is released again at once). */
async function canBind (port: number): Promise<boolean> {
  const server = createServer()
  return new Promise(resolve => {
    server.once('error', () => resolve(false))
    server.listen(port, '127.0.0.1', () => server.close(() => resolve(true)))
  })
}

eachMode(t, 'MQTT over WebSocket', async (t, mode) => {
  const tb = await startTestBroker(t, mode)
  const alice = await tb.addUser('alice')
  const device = await connectDevice(`ws://127.0.0.1:${tb.broker.ports.WebSocket}/mqtt`,
    { clientId: 'w1', username: 'alice', password: await tb.token('alice') })
  closeAtEnd(t, device)
  t.ok(device.client.connected, 'a device connects over ws://.../mqtt with a token')
  await sendToUser(tb.broker.aedes, alice, text('over websocket'))
  await device.next(isText('over websocket'), 'the inbox event over WebSocket')
  // Not "exactly once": an event published in the same tick as the CONNACK can come twice (aedes
  // drains the session queue after it has already queued the event); DESIGN 5 is at least once.
  t.ok(device.received.every(r => r.topic === 'u/1'), 'it gets its inbox, u/1, without SUBSCRIBE')

  const plain = await fetch(`http://127.0.0.1:${tb.broker.ports.WebSocket}/`)
  t.equal(plain.status, 426, 'plain HTTP on the WebSocket port is told to upgrade')
  t.match(await plain.text(), /\/mqtt/, '  at /mqtt')
})

t.test('mqtts and wss with TLS_KEY and TLS_CERT', async t => {
  const dir = tempDir(t, 'wmq-tls-')
  const key = join(dir, 'k.pem')
  const cert = join(dir, 'c.pem')
  execFileSync('openssl', ['req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-keyout', key, '-out', cert,
    '-days', '1', '-subj', '/CN=localhost'], { stdio: 'ignore' })
  const ca = readFileSync(cert)
  const tb = await startTestBroker(t, 'embedded', { tlsKey: key, tlsCert: cert, mqttsPort: 0, wssPort: 0 })
  t.ok(tb.broker.ports.MQTTS > 0 && tb.broker.ports.WSS > 0, 'the mqtts and wss listeners are open')
  const alice = await tb.addUser('alice')

  // Verified against the certificate as a CA, with the name it was made for: the broker serves the
  // configured certificate, not merely some TLS.
  const secure = await connectDevice(`mqtts://127.0.0.1:${tb.broker.ports.MQTTS}`,
    { clientId: 's1', username: 'alice', password: await tb.token('alice'), ca, servername: 'localhost' })
  closeAtEnd(t, secure)
  t.ok(secure.client.connected, 'a device connects over mqtts, the certificate verified')
  const socket = secure.client.stream as TLSSocket
  t.equal(socket.encrypted, true, '  on an encrypted socket')
  t.equal(socket.getPeerCertificate().subject.CN, 'localhost', '  that presents the configured certificate')

  const overWss = await connectDevice(`wss://127.0.0.1:${tb.broker.ports.WSS}/mqtt`,
    { clientId: 's2', username: 'alice', password: 'correct horse', rejectUnauthorized: false })
  closeAtEnd(t, overWss)
  t.ok(overWss.client.connected, 'a device connects over wss')

  await sendToUser(tb.broker.aedes, alice, text('over tls'))
  await secure.next(isText('over tls'), 'the inbox event over mqtts')
  await overWss.next(isText('over tls'), 'the inbox event over wss')
  t.pass('both get their inbox')

  const refused = await connectDevice(`mqtts://127.0.0.1:${tb.broker.ports.MQTTS}`,
    { clientId: 's3', username: 'alice', password: 'correct horse' }).then(d => { void d.end(); return 'accepted' }, (err: Error) => err.message)
  t.match(refused, /self[- ]signed/, 'a client that checks certificates refuses the self-signed one (the test would notice plain TCP)')
})

t.test('a taken port', async t => {
  const dataDir = tempDir(t)
  const taken = await occupy(t)
  const http = await freePort()
  const error = await startBroker(testConfig({ dataDir, mqttPort: taken.port, httpPort: http }), quiet).then(
    async broker => { await broker.close(); return null }, (err: Error) => err)
  t.type(error, ListenError, 'startBroker rejects with a ListenError')
  t.match(error?.message, new RegExp(`^MQTT port ${taken.port} on 127.0.0.1 is already in use: set MQTT_PORT \\(or --mqtt-port\\) to another port, or to "off"$`),
    '  one line naming MQTT_PORT')
  t.ok(await canBind(http), 'the HTTP port is free again')
  t.notOk(existsSync(join(dataDir, RUNNING_FILE)), 'no broker is announced in DATA_DIR')

  // The HTTP listener opens last: the ones opened before it must be closed again.
  const mqtt = await freePort()
  const ws = await freePort()
  const takenHttp = await occupy(t)
  const late = await startBroker(testConfig({ dataDir, mqttPort: mqtt, wsPort: ws, httpPort: takenHttp.port }), quiet).then(
    async broker => { await broker.close(); return null }, (err: Error) => err)
  t.type(late, ListenError, 'a taken HTTP port: ListenError')
  t.match(late?.message, /^HTTP port \d+ on 127\.0\.0\.1 is already in use: set HTTP_PORT \(or --http-port\)/, '  naming HTTP_PORT')
  t.ok(await canBind(mqtt), '  the MQTT listener opened before it was closed again')
  t.ok(await canBind(ws), '  so was the WebSocket listener')

  // ws re-emits its HTTP server's errors: a taken WS_PORT must be the same one line, not a crash.
  const takenWs = await occupy(t)
  const wsError = await startBroker(testConfig({ dataDir, wsPort: takenWs.port }), quiet).then(
    async broker => { await broker.close(); return null }, (err: Error) => err)
  t.type(wsError, ListenError, 'a taken WS_PORT: ListenError')
  t.match(wsError?.message, /^WebSocket port \d+ on 127\.0\.0\.1 is already in use: set WS_PORT \(or --ws-port\)/, '  naming WS_PORT')

  // And the database was let go: a broker starts on the same DATA_DIR.
  const broker = await startBroker(testConfig({ dataDir }), quiet)
  t.ok(broker.ports.MQTT > 0, 'a broker starts on the same DATA_DIR afterwards')
  await broker.close()
})

interface Child {
  process: ChildProcess
  stderr: () => string
  /** Resolves with the first match of `pattern` in stderr. */
  waitFor (pattern: RegExp, what: string): Promise<RegExpMatchArray>
  exited: Promise<{ code: number | null, signal: NodeJS.Signals | null }>
}

/** `npm start` (node --import tsx broker/main.ts) with only the given settings; killed if the test ends first. */
function npmStart (t: Test, settings: Record<string, string>): Child {
  const child = spawn(process.execPath, ['--import', 'tsx', 'broker/main.ts'], {
    cwd: root,
    env: { PATH: process.env.PATH, HOME: process.env.HOME, ...settings },
    stdio: ['ignore', 'ignore', 'pipe'],
  })
  let stderr = ''
  const wake = new Set<() => void>()
  child.stderr?.on('data', (chunk: Buffer) => {
    stderr += chunk.toString()
    for (const check of wake) check()
  })
  const exited = new Promise<{ code: number | null, signal: NodeJS.Signals | null }>(resolve =>
    child.on('exit', (code, signal) => resolve({ code, signal })))
  t.teardown(async () => {
    if (child.exitCode === null && child.signalCode === null) {
      child.kill('SIGKILL')
      await exited
    }
  })
  return {
    process: child,
    stderr: () => stderr,
    exited,
    waitFor (pattern, what) {
      return new Promise((resolve, reject) => {
        const check = () => {
          const match = stderr.match(pattern)
          if (match) { done(); resolve(match) }
        }
        const gone = () => { done(); reject(new Error(`the broker exited before ${what}; stderr:\n${stderr}`)) }
        // A limit so a broken broker fails the test instead of hanging it; not a timing assertion.
        const timer = setTimeout(() => { done(); reject(new Error(`no ${what} within ${WAIT_LIMIT_MS} ms; stderr:\n${stderr}`)) }, WAIT_LIMIT_MS)
        const done = () => { clearTimeout(timer); wake.delete(check); child.off('exit', gone) }
        wake.add(check)
        child.on('exit', gone)
        check()
      })
    },
  }
}

t.test('npm start: starts, serves, refuses a second broker on its DATA_DIR, stops on SIGTERM', async t => {
  const dataDir = tempDir(t)
  const child = npmStart(t, { MQTT_PORT: '0', WS_PORT: '0', HTTP_PORT: '0', HOST: '127.0.0.1', DATA_DIR: dataDir })
  const [line] = await child.waitFor(/^.* INFO broker \S+ listening: .*$/m, 'the "listening" log line')
  const port = (name: string) => Number(new RegExp(`\\b${name} (\\d+)`).exec(line)?.[1])
  t.ok(port('MQTT') > 0 && port('WebSocket') > 0 && port('HTTP') > 0, 'the listening line names each bound port')
  t.match(line, /WebSocket \d+\/mqtt/, '  and the WebSocket path')

  const health = await fetch(`http://127.0.0.1:${port('HTTP')}/healthz`)
  t.equal(health.status, 200, 'GET /healthz answers')
  t.match(await health.json(), { ok: true, history: 'pglite', sessions: 'memory' }, '  ok, embedded')
  t.same(JSON.parse(readFileSync(join(dataDir, RUNNING_FILE), 'utf8')), { pid: child.process.pid, httpPort: port('HTTP') },
    'DATA_DIR/broker.json names the process and its HTTP port')

  // The admin command in this process finds the broker through DATA_DIR and uses its admin API.
  const env = { DATA_DIR: dataDir }
  const printed: string[] = []
  await runAdmin(['user', 'add', 'alice', '--password', 'S3cret'], line => printed.push(line), env)
  await runAdmin(['token', 'alice'], line => printed.push(line), env)
  t.equal(printed[0], 'added user alice (id 1)', 'a user added through the running broker')
  await child.waitFor(/admin API method=POST path=\/api\/users\/alice\/token status=201/, 'the admin API log line')
  const device = await connectDevice(`mqtt://127.0.0.1:${port('MQTT')}`, { clientId: 'a1', username: 'alice', password: printed[1] })
  closeAtEnd(t, device)
  t.ok(device.client.connected, 'a device connects with its token')
  await device.request({ ref: 5, ping: {} })
  await device.next(d => d.ref === 5 && !!d.pong, 'the pong')
  t.pass('and is served')

  // Issue 2 §6: PGlite admits one process at a time.
  const second = await startBroker(testConfig({ dataDir }), quiet).then(async broker => { await broker.close(); return null }, (err: Error) => err)
  t.type(second, StartError, 'a second broker on the same DATA_DIR is refused with a StartError')
  t.match(second?.message, new RegExp(`^another broker \\(pid ${child.process.pid}\\) is using ${dataDir.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}: `),
    '  naming the pid of the one that runs')
  const secondProcess = npmStart(t, { MQTT_PORT: '0', WS_PORT: '0', HTTP_PORT: '0', HOST: '127.0.0.1', DATA_DIR: dataDir })
  t.same(await secondProcess.exited, { code: 1, signal: null }, 'a second npm start on the same DATA_DIR exits 1')
  t.match(secondProcess.stderr(), new RegExp(`^error: another broker \\(pid ${child.process.pid}\\) is using [^\\n]+\\n$`),
    '  with one line naming the pid of the running one')
  t.ok((await fetch(`http://127.0.0.1:${port('HTTP')}/healthz`)).ok, 'the running broker is untouched')

  const closed = new Promise<void>(resolve => device.client.once('close', () => resolve()))
  child.process.kill('SIGTERM')
  const exit = await child.exited
  t.same(exit, { code: 0, signal: null }, 'SIGTERM: the process exits with code 0')
  t.match(child.stderr(), /INFO shutting down signal=SIGTERM\n(.*\n)*.* INFO stopped\n$/, '  and logs "stopped" last')
  t.notOk(existsSync(join(dataDir, RUNNING_FILE)), '  DATA_DIR/broker.json is removed')
  await closed
  t.pass('  the connected device was disconnected')
  t.notMatch(child.stderr(), /S3cret|t1\./, 'no password or token reached the log')

  // The same DATA_DIR (migrated already, so no INFO line comes first) with MQTT_PORT taken.
  const taken = await occupy(t)
  const failed = npmStart(t, { MQTT_PORT: String(taken.port), WS_PORT: '0', HTTP_PORT: '0', HOST: '127.0.0.1', DATA_DIR: dataDir })
  t.same(await failed.exited, { code: 1, signal: null }, 'a taken MQTT_PORT: exit code 1')
  t.match(failed.stderr(), new RegExp(`^error: MQTT port ${taken.port} on 127\\.0\\.0\\.1 is already in use: set MQTT_PORT \\(or --mqtt-port\\) to another port, or to "off"\\n$`),
    '  and stderr is exactly one line: "error: MQTT port ..." naming MQTT_PORT')
  t.notOk(existsSync(join(dataDir, RUNNING_FILE)), '  nothing left in DATA_DIR')
})

t.test('npm start with WS_PORT taken, on a fresh DATA_DIR', async t => {
  const taken = await occupy(t)
  const child = npmStart(t, { MQTT_PORT: '0', WS_PORT: String(taken.port), HTTP_PORT: '0', HOST: '127.0.0.1', DATA_DIR: tempDir(t) })
  t.same(await child.exited, { code: 1, signal: null }, 'exit code 1')
  // A fresh folder is migrated before the listeners open, so the INFO line of that may come first.
  const lines = child.stderr().split('\n')
  t.equal(lines.pop(), '', 'stderr ends with a newline')
  t.equal(lines.at(-1), `error: WebSocket port ${taken.port} on 127.0.0.1 is already in use: set WS_PORT (or --ws-port) to another port, or to "off"`,
    '  its last line is the error, naming WS_PORT')
  t.same(lines.slice(0, -1).filter(line => !/^\S+ INFO database migrated /.test(line)), [], '  and nothing else but the migration log line: no stack trace')
})

t.test('npm start with a setting that does not parse', async t => {
  const child = npmStart(t, { MQTT_PORT: 'eighteen', DATA_DIR: tempDir(t) })
  t.same(await child.exited, { code: 1, signal: null }, 'exit code 1')
  t.equal(child.stderr(), 'error: MQTT_PORT must be a port from 0 to 65535 or "off", not "eighteen"\n', '  one line naming the setting')
})

// With TCP_NODELAY every write is its own syscall and segment; packets written in one turn of the
// event loop (a batch's deliveries to one device, a PUBACK and a reply) are handed to the kernel
// as one write, in order.
t.test('packets written in one turn leave in one write', async t => {
  const server = createServer()
  await new Promise<void>(resolve => server.listen(0, '127.0.0.1', resolve))
  t.teardown(() => new Promise<void>(resolve => server.close(() => resolve())))
  const accepted = new Promise<Socket>(resolve => server.once('connection', resolve))
  const client = connect((server.address() as { port: number }).port, '127.0.0.1')
  t.teardown(() => client.destroy())
  const socket = await accepted
  socket.setNoDelay(true)
  coalesceWrites(socket)
  // Count what the stream hands to the socket's handle: one call per syscall-level write.
  const handed: number[] = []
  const internal = socket as unknown as { _write: (...a: unknown[]) => void, _writev: (chunks: unknown[], cb: unknown) => void }
  const single = internal._write.bind(socket)
  const many = internal._writev.bind(socket)
  internal._write = (...a) => { handed.push(1); single(...a) }
  internal._writev = (chunks, cb) => { handed.push(chunks.length); many(chunks, cb) }

  let received = ''
  const all = new Promise<void>(resolve => client.on('data', chunk => {
    received += chunk.toString()
    if (received.length === 15) resolve()
  }))
  for (const packet of ['one..', 'two..', 'three']) socket.write(packet)
  await all
  t.same(handed, [3], 'three writes in one turn: one writev of three chunks')
  t.equal(received, 'one..two..three', 'in the order written')

  socket.write('four.')
  await new Promise(resolve => setImmediate(resolve))
  await new Promise(resolve => setImmediate(resolve))
  socket.write('five.')
  await new Promise(resolve => client.once('data', resolve))
  t.ok(handed.length >= 3, `writes in later turns leave in their own turn (${handed.length} handed so far)`)
})
