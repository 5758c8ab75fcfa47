// Issue 4 §4, "Shown by": the C client for embedded devices (clients/c), built with make and run
// against a test broker as a child process. It sends to a group and a TypeScript device reads the
// messages; it prints what the TypeScript device sends; when its connection is reset with sends
// stored but unacknowledged, it reconnects, re-sends them with their client_msg_id, and the broker
// stores each once (DESIGN 3); then it sends and receives again.
//
// Needs gcc, make, protoc-c and the libmosquitto and protobuf-c headers (see clients/c/Makefile):
// under CI=true their absence fails the test; elsewhere it is skipped with what to install.
import { spawn, spawnSync } from 'node:child_process'
import { join } from 'node:path'
import { createInterface } from 'node:readline'
import { fileURLToPath } from 'node:url'
import t, { type Test } from 'tap'
import { FlakyLink } from '../../../bench/lab/flaky-link.ts'
import { profiles, type Profile } from '../../../bench/lab/profiles.ts'
import { ask, closeAtEnd, connectDevice, eachMode, inCI, sendText, startTestBroker, textsOf, wmq, type Mode } from '../../harness.ts'

const clientDir = fileURLToPath(new URL('../../../clients/c/', import.meta.url))
const binary = join(clientDir, 'build', 'wmq-device')

/** Long enough for a slow CI machine, short enough that a broken client fails instead of hanging. */
const WAIT_LIMIT_MS = 20_000

interface CDevice {
  /** Every line the client printed on stdout, in order. */
  lines: string[]
  stderr (): string
  /** Resolves once `condition` holds, checked now and after every line; rejects at the limit or when the client exits first. */
  until (condition: () => boolean, what: string): Promise<void>
  write (text: string): void
  endInput (): void
  /** The exit code once the process ends. */
  exited: Promise<number | null>
}

/** Starts wmq-device with `args` (and `env` on top of ours); killed at the end of the test if still running. */
function runDevice (t: Test, args: string[], env: Record<string, string> = {}): CDevice {
  const child = spawn(binary, args, { env: { ...process.env, ...env }, stdio: ['pipe', 'pipe', 'pipe'] })
  const lines: string[] = []
  let stderr = ''
  let ended = false
  const wakers = new Set<() => void>()
  const wake = () => { for (const w of wakers) w() }
  createInterface({ input: child.stdout }).on('line', line => { lines.push(line); wake() })
  child.stderr.on('data', (chunk: Buffer) => { stderr += chunk.toString() })
  child.stdin.on('error', () => {}) // the client may exit before reading everything
  const exited = new Promise<number | null>(resolve => child.on('close', code => { ended = true; wake(); resolve(code) }))
  t.teardown(() => { if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL') })
  return {
    lines,
    stderr: () => stderr,
    until (condition, what) {
      return new Promise((resolve, reject) => {
        const check = () => {
          if (condition()) finish(null)
          else if (ended) finish(new Error(`${what}: the C client exited first`))
        }
        // A limit so a broken client fails the test instead of hanging it; not a timing assertion.
        const timer = setTimeout(() => finish(new Error(`${what}: not within ${WAIT_LIMIT_MS} ms`)), WAIT_LIMIT_MS)
        const finish = (err: Error | null) => {
          clearTimeout(timer)
          wakers.delete(check)
          if (err) reject(new Error(`${err.message}\nstdout:\n${lines.join('\n')}\nstderr:\n${stderr}`))
          else resolve()
        }
        wakers.add(check)
        check()
      })
    },
    write: text => { child.stdin.write(text) },
    endInput: () => { child.stdin.end() },
    exited,
  }
}

const starting = (prefix: string, lines: string[]) => lines.filter(line => line.startsWith(prefix))

/** An `ack <conversation> <seq> <text>` line as numbers and text. */
function parseAck (line: string): { conversation: number, seq: number, text: string } {
  const [, conversation, seq, ...text] = line.split(' ')
  return { conversation: Number(conversation), seq: Number(seq), text: text.join(' ') }
}

/** Broker to device held back for a minute, device to broker untouched: replies stay in the link. */
const repliesHeld: Profile = {
  name: 'replies-held',
  up: profiles.loopback.up,
  down: { bitsPerSecond: Infinity, delayMs: 60_000, jitterMs: 0, loss: 0 },
}

function toolchainMissing (): string | null {
  const check = spawnSync('make', ['-s', '-C', clientDir, 'check-deps'], { encoding: 'utf8' })
  if (check.error) return `make (${check.error.message})`
  // check-deps prints one line, `missing: ...`, on stdout; make's own complaint goes to stderr.
  return check.status === 0 ? null : (check.stdout.trim() || check.stderr.trim()).replaceAll('\n', '; ')
}

const missing = toolchainMissing()
if (missing) {
  const install = 'apt-get install gcc libc6-dev make pkg-config libmosquitto-dev libprotobuf-c-dev protobuf-c-compiler'
  if (inCI) t.fail(`CI=true and the C client cannot be built: ${missing}; CI must run: ${install}`)
  else t.plan(0, `skipped: the C client cannot be built here (${missing}); ${install}`)
} else {
  const build = spawnSync('make', ['-C', clientDir], { encoding: 'utf8' })
  if (build.status !== 0) {
    t.fail(`make -C clients/c failed (exit ${build.status}): the compiler output is below`, { output: build.stdout + build.stderr })
  } else {
    t.pass('make -C clients/c builds wmq-device (-std=c11 -Wall -Wextra -Werror -pedantic)')
    eachMode(t, 'the C client sends, receives, and rides out a reset', deviceScenario)
  }
}

async function deviceScenario (t: Test, mode: Mode): Promise<void> {
  const tb = await startTestBroker(t, mode)
  const alice = await tb.addUser('alice') // the C device's user
  const bob = await tb.addUser('bob')
  const b1 = await connectDevice(tb.mqttUrl, { clientId: 'b1', username: 'bob', password: await tb.token('bob') })
  closeAtEnd(t, b1)
  const group = Number((await ask(b1, { groupCreate: { name: 'sensors', members: [alice] } })).group!.group)
  const link = new FlakyLink({ target: { host: '127.0.0.1', port: tb.broker.ports.MQTT } })
  await link.listen()
  t.teardown(() => link.close())

  const c1 = runDevice(t, ['--host', '127.0.0.1', '--port', String(link.port), '--device', 'c1', '--login', 'alice',
    '--token', await tb.token('alice'), '--group', String(group), '--stdin', '--count', '2'])
  await c1.until(() => c1.lines.includes('connected'), 'the C client connects')

  // The C client sends to the group; bob's TypeScript device gets the messages.
  const first = ['hello from C', 'tabs\tand ünïcode']
  for (const text of first) c1.write(text + '\n')
  await c1.until(() => starting('ack ', c1.lines).length === 2, 'two acks')
  const acks = starting('ack ', c1.lines).map(parseAck)
  t.same(acks, [{ conversation: group, seq: 2, text: first[0] }, { conversation: group, seq: 3, text: 'tabs\\tand ünïcode' }],
    'each send is acknowledged with its place in the group (seq 1 is the creation), in the order sent')
  await b1.until(() => first.every(text => textsOf(b1).includes(text)), 'bob gets both')
  const fromAlice = b1.received.map(r => r.downlink.message).filter(m => m && Number(m.sender) === alice)
  t.same(fromAlice.map(m => [Number(m!.conversation), Number(m!.seq), m!.content?.text]), [[group, 2, first[0]], [group, 3, first[1]]],
    "bob's device received them from alice, with the acknowledged seqs")

  // Bob's device sends to the group; the C client prints it.
  const hello = await sendText(b1, { group }, 'hello device')
  const helloLine = `msg ${group} ${hello.sendAck!.seq} ${bob} hello device`
  await c1.until(() => c1.lines.includes(helloLine), 'the C client prints the message')
  t.pass(`the C client printed "${helloLine}"`)

  // Two sends reach the broker, but their SendAcks are held in the link; then the link is reset.
  link.setProfile(repliesHeld)
  const held = ['sent while the replies are held', 'and a second one']
  for (const text of held) c1.write(text + '\n')
  await b1.until(() => held.every(text => textsOf(b1).includes(text)), 'bob gets the held sends: they are stored')
  t.equal(starting('ack ', c1.lines).length, 2, 'their acknowledgements have not reached the C client')
  link.setProfile(profiles.loopback)
  link.resetAll()
  await c1.until(() => c1.lines.filter(line => line === 'connected').length === 2, 'the C client reconnects')
  t.ok(c1.lines.includes('disconnected'), 'it printed the drop')
  t.match(c1.stderr(), /connection lost \(.*\); 2 unacknowledged send\(s\) wait in the outbox/, 'it kept both unacknowledged sends to send again')
  await c1.until(() => starting('ack ', c1.lines).length === 4, 'acks of the held sends after the reconnect')
  const heldAcks = starting('ack ', c1.lines).slice(2).map(parseAck)
  const heldAtBob = b1.received.map(r => r.downlink.message).filter(m => m && held.includes(m.content?.text ?? ''))
  t.same(heldAcks.map(a => [a.seq, a.text]), heldAtBob.map(m => [Number(m!.seq), m!.content!.text]),
    'the re-sends are answered with the seqs stored the first time')

  // Sending and receiving work again.
  c1.write('back online\n')
  await c1.until(() => starting('ack ', c1.lines).length === 5, 'the ack of a send after the reconnect')
  await b1.until(() => textsOf(b1).includes('back online'), 'bob gets it')
  const welcome = await sendText(b1, { group }, 'welcome back')
  const welcomeLine = `msg ${group} ${welcome.sendAck!.seq} ${bob} welcome back`
  t.equal(await c1.exited, 0, 'with --count 2 and nothing left to send, the C client exits 0 after the second message')
  t.same(starting('msg ', c1.lines), [helloLine, welcomeLine], 'it printed each message of the group once')
  t.same(starting('ack ', c1.lines).map(line => parseAck(line).seq), [2, 3, 5, 6, 7], 'and each send acknowledged once')

  // Stored exactly once: the messages table has one row per send, each with its own client_msg_id.
  const sent = [...first, ...held, 'back online']
  const rows = await tb.broker.db.query<{ seq: number, client_msg_id: Uint8Array, content: Uint8Array }>(
    'SELECT seq, client_msg_id, content FROM messages WHERE sender_id = $1 ORDER BY seq', [alice])
  t.same(rows.map(r => wmq.Content.decode(r.content).text), sent, "the broker stored each of the C client's sends exactly once")
  t.same(new Set(rows.map(r => Buffer.from(r.client_msg_id).toString('hex'))).size, sent.length, 'each with its own client_msg_id')
  t.ok(rows.every(r => r.client_msg_id.length === 8), 'of 8 random bytes')
  t.same(textsOf(b1).filter(text => sent.includes(text)), sent, 'and bob received each once, in order')

  // --send with the token from WMQ_TOKEN, directly to the broker: exits once both are acknowledged.
  const c2 = runDevice(t, ['--port', String(tb.broker.ports.MQTT), '--device', 'c1', '--login', 'alice', '--group', String(group),
    '--send', 'one', '--send', 'two'], { WMQ_TOKEN: await tb.token('alice') })
  t.equal(await c2.exited, 0, '--send texts: the client exits 0 once they are acknowledged')
  t.same(starting('ack ', c2.lines).map(line => parseAck(line).text), ['one', 'two'], 'both acknowledged, in order')
  await b1.until(() => textsOf(b1).includes('two'), 'bob gets them')

  // A wrong token is refused for good: no retry loop.
  const c3 = runDevice(t, ['--port', String(tb.broker.ports.MQTT), '--device', 'c1', '--login', 'alice', '--token', 'not-a-token'])
  t.equal(await c3.exited, 1, 'a refused login exits 1')
  t.match(c3.stderr(), /connection refused \(CONNACK 4/, 'and says why')
}
