// The terminal chat client (clients/cli) driven through its input as a child process, as a person
// or a script would use it, against a real broker: two people chat (alice and bob at the terminal
// client, carol on the TypeScript SDK), the conversation list counts what each has not read,
// receipts, typing and presence reach the screen, groups work; a wrong password and a broker that
// is not there are one line each, with no stack trace. Through pipes; and, when util-linux's
// `script` is there, once on a pseudo-terminal (password asked without echo, typing hints from
// keystrokes, the half-typed line drawn again under arriving messages). Every wait is bounded;
// nothing asserts on time.
import { spawn, spawnSync, type ChildProcessWithoutNullStreams } from 'node:child_process'
import { mkdtempSync, readFileSync, rmSync } from 'node:fs'
import { createServer } from 'node:net'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import t, { type Test } from 'tap'
import type { TypingEvent } from '../../../clients/ts/index.ts'
import { eachMode, startTestBroker } from '../../harness.ts'
import { linkTo, sdkClient, urlOf, waitFor } from '../ts/sdk.ts'

const MAIN = 'clients/cli/main.ts'
// eslint-disable-next-line no-control-regex
const ANSI = /\x1b\[[0-9;?]*[A-Za-z]/g
/** A line of a Node stack trace: what an expected failure must never print. */
const STACK_LINE = /^\s+at .+(:\d+:\d+\)?|\(native\))$/m

interface Cli {
  child: ChildProcessWithoutNullStreams
  /** Everything written so far, escape sequences removed. */
  text (): string
  stderr (): string
  /** Where the output is now: a later wait looks only at what comes after. */
  mark (): number
  /** Types a line and Enter. */
  type (line: string): void
  /** Resolves with the first output line after `from` that matches; rejects after a bounded wait, naming `what`. */
  waitFor (pattern: RegExp, what: string, from?: number): Promise<string>
  exited: Promise<number | null>
}

function stateDir (t: Test, name: string): string {
  const dir = mkdtempSync(join(tmpdir(), `wmq-cli-${name}-`))
  t.teardown(() => rmSync(dir, { recursive: true, force: true }))
  return dir
}

/** Lines of `text` from character `from` on, each as the screen shows it (after the last carriage return). */
function linesOf (text: string, from: number): string[] {
  return text.slice(from).split('\n').map(line => line.replace(/\r+$/, '').split('\r').at(-1)!)
}

function drive (t: Test, child: ChildProcessWithoutNullStreams, enter: string): Cli {
  let out = ''
  let err = ''
  child.stdout.on('data', (chunk: Buffer) => { out += chunk.toString('utf8').replace(ANSI, '') })
  child.stderr.on('data', (chunk: Buffer) => { err += chunk.toString('utf8').replace(ANSI, '') })
  const exited = new Promise<number | null>(resolve => child.on('exit', code => resolve(code)))
  t.teardown(() => {
    if (child.exitCode === null) child.kill('SIGKILL')
    if (process.env.TEST_LOG) process.stderr.write(`--- ${child.spawnargs.join(' ')}\n${out}${err ? `--- stderr\n${err}` : ''}\n`)
  })
  const cli: Cli = {
    child,
    text: () => out,
    stderr: () => err,
    mark: () => out.length,
    type (line) { child.stdin.write(line + enter) },
    async waitFor (pattern, what, from = 0) {
      let found: string | undefined
      await waitFor(() => (found = linesOf(out, from).find(line => pattern.test(line))) !== undefined,
        `${what}\n--- output so far ---\n${out}\n--- stderr ---\n${err}`)
      return found!
    },
    exited,
  }
  return cli
}

/** The terminal client through pipes: no prompt, no colours, one line per event. */
function startCli (t: Test, args: string[], env: Record<string, string> = {}): Cli {
  const child = spawn(process.execPath, ['--import', 'tsx', MAIN, ...args], {
    env: { ...process.env, WMQ_PASSWORD: '', WMQ_TOKEN: '', ...env },
    stdio: 'pipe',
  })
  return drive(t, child, '\n')
}

const quote = (word: string) => `'${word.replace(/'/g, `'\\''`)}'`

/** The terminal client on a pseudo-terminal made by util-linux's `script`. */
function startCliOnPty (t: Test, args: string[]): Cli {
  const command = [process.execPath, '--import', 'tsx', MAIN, ...args].map(quote).join(' ')
  const child = spawn('script', ['-qfec', command, '/dev/null'], {
    env: { ...process.env, WMQ_PASSWORD: '', WMQ_TOKEN: '', TERM: 'xterm-256color', COLUMNS: '120', LINES: '40' },
    stdio: 'pipe',
  })
  return drive(t, child, '\r')
}

async function freePort (): Promise<number> {
  const server = createServer()
  await new Promise<void>(resolve => server.listen(0, '127.0.0.1', resolve))
  const { port } = server.address() as { port: number }
  await new Promise(resolve => server.close(resolve))
  return port
}

eachMode(t, 'two people chat through the terminal client; lists, receipts, typing, presence, groups', async (t, mode) => {
  const tb = await startTestBroker(t, mode)
  const alice = await tb.addUser('alice', 'alice-password')
  await tb.addUser('bob')
  await tb.addUser('carol')

  // alice logs in with a password from the environment, bob with a token on the command line.
  const a = startCli(t, ['--login', 'alice', '--url', tb.mqttUrl, '--state-dir', stateDir(t, 'alice')], { WMQ_PASSWORD: 'alice-password' })
  const b = startCli(t, ['--login', 'bob', '--token', await tb.token('bob'), '--url', tb.mqttUrl, '--state-dir', stateDir(t, 'bob')])
  t.match(await a.waitFor(/online as alice/, 'alice online'), /^● online as alice \(user \d+\) at mqtt:\/\/127\.0\.0\.1:\d+/, 'alice is online, told with her user id')
  await a.waitFor(/no conversations yet/, 'alice: the empty list at the start')
  await b.waitFor(/online as bob/, 'bob online')

  let from = a.mark()
  a.type('/dm bob')
  await a.waitFor(/^── bob ──$/, 'alice opens a conversation with bob', from)
  await a.waitFor(/no messages yet/, 'a new conversation says so', from)
  from = a.mark()
  a.type('hello bob')
  t.match(await a.waitFor(/alice: hello bob/, "alice's message, placed by its acknowledgement", from), /^\d\d:\d\d {2}alice: hello bob {2}#1$/, "alice's message with its time and seq")

  await b.waitFor(/alice: hello bob/, 'bob is told of the message in a conversation he has not open')
  t.match(b.text(), /^» alice: hello bob {2}\(\/open alice\)$/m, 'as a one-line notice')
  await a.waitFor(/✓ delivered to bob {2}#1/, "bob's device reports delivery to alice")
  from = b.mark()
  b.type('/list')
  const bobsRow = await b.waitFor(/^ {2}alice /, "the conversation in bob's list", from)
  t.match(bobsRow, /^ {2}alice +1 unread +\d\d:\d\d {2}alice: hello bob$/, 'bob has 1 unread, with the preview')

  from = b.mark()
  b.type('/open alice')
  await b.waitFor(/^── alice ──$/, 'bob opens it', from)
  await b.waitFor(/alice: hello bob {2}#1/, 'with the recent history', from)
  await a.waitFor(/✓✓ read by bob {2}#1/, 'opening marks it read: alice sees the read mark')
  await b.waitFor(/● alice is online/, "bob sees alice's presence in the open 1:1")

  b.type('hi alice')
  await b.waitFor(/bob: hi alice {2}#2/, "bob's answer on his screen")
  t.match(await a.waitFor(/bob: hi alice/, "bob's answer on alice's screen"), /^\d\d:\d\d {2}bob: hi alice {2}#2$/, "bob's answer on alice's screen")
  await b.waitFor(/✓✓ read by alice {2}#2/, 'alice has it open, so it is read at once')

  // carol, on the SDK, writes to alice while alice has bob open: a notice, and an unread count.
  const c = await sdkClient(t, tb, 'carol', 'c1')
  const carolTyping: TypingEvent[] = []
  c.client.on('typing', e => carolTyping.push(e))
  await c.client.whenSynced()
  const carols = await c.client.send({ user: alice }, 'psst alice')
  await a.waitFor(/^» carol: psst alice {2}\(\/open carol\)$/, 'a notice of the message from carol')
  from = a.mark()
  a.type('/list')
  t.match(await a.waitFor(/^ {2}carol /, "carol in alice's list", from), /^ {2}carol +1 unread +\d\d:\d\d {2}carol: psst alice$/, 'one unread from carol')
  t.match(await a.waitFor(/^ {2}bob /, "bob in alice's list", from), /^ {2}bob +\d\d:\d\d {2}bob: hi alice$/, 'nothing unread with bob')
  t.match(a.text().slice(from), /^Conversations \(1 unread\):$/m, 'the total')

  from = a.mark()
  a.type('/open carol')
  await a.waitFor(/carol: psst alice {2}#1/, "carol's message in the opened conversation", from)
  await a.waitFor(/● carol is online/, "carol's presence", from)
  c.client.typing(carols.conversation, true)
  await a.waitFor(/^ {3}carol is typing…$/, 'the typing hint', from)
  from = a.mark()
  a.type('/who bob')
  await a.waitFor(/^bob is online$/, '/who tells presence', from)
  await c.client.close()
  await a.waitFor(/○ carol is offline, last seen \d\d:\d\d/, "carol's going offline, in the open 1:1", from)

  // A group: made at alice's terminal, announced on bob's, members listed, a message recalled.
  from = a.mark()
  a.type('/group create trip bob carol')
  const created = await a.waitFor(/^created #\d+ trip with bob, carol$/, 'the group is made', from)
  const group = Number(/#(\d+)/.exec(created)![1])
  await a.waitFor(new RegExp(`^── #${group} trip ──$`), 'and opened', from)
  await a.waitFor(/· alice created the group "trip" with bob, carol {2}#1/, 'its first message says who made it', from)
  await b.waitFor(new RegExp(`^» #${group} trip: alice created the group "trip" with bob, carol {2}\\(/open #${group}\\)$`), 'bob is told')
  a.type('who comes?')
  await a.waitFor(/alice: who comes\? {2}#2/, 'a message to the group', from)
  await b.waitFor(new RegExp(`^» #${group} trip · alice: who comes\\?`), 'bob is told of it')
  from = b.mark()
  b.type('/members trip')
  await b.waitFor(new RegExp(`^Members of #${group} trip:$`), 'members by group name', from)
  for (const [login, role] of [['alice', 'owner'], ['bob', 'member'], ['carol', 'member']]) {
    await b.waitFor(new RegExp(`^ {2}${login} \\(\\d+\\) {2}${role}$`), `${login} among the members`, from)
  }
  from = a.mark()
  a.type('/recall 2')
  await a.waitFor(/you recalled #2/, 'a recall', from)
  b.type('/nonsense')
  await b.waitFor(/^unknown command \/nonsense: \/help lists the commands/, 'an unknown command is said so')

  from = a.mark()
  a.type('/quit')
  b.type('/quit')
  t.equal(await a.exited, 0, 'alice quits with exit code 0')
  t.equal(await b.exited, 0, 'bob too')
  for (const [who, cli] of [['alice', a], ['bob', b]] as const) {
    t.equal(cli.stderr(), '', `nothing on ${who}'s stderr`)
    t.notMatch(cli.text(), STACK_LINE, `no stack trace on ${who}'s screen`)
  }
})

t.test('expected failures are one line, with no stack trace', async t => {
  const tb = await startTestBroker(t, 'embedded')
  await tb.addUser('alice', 'alice-password')

  const wrong = startCli(t, ['--login', 'alice', '--url', tb.mqttUrl, '--state-dir', stateDir(t, 'wrong')], { WMQ_PASSWORD: 'not the password' })
  t.equal(await wrong.exited, 1, 'a wrong password: exit code 1')
  t.equal(wrong.stderr(), 'login refused: wrong login or password\n', 'and one line that says so')
  t.notMatch(wrong.text() + wrong.stderr(), STACK_LINE, 'no stack trace')
  t.notMatch(wrong.text(), /online/, 'never online')

  const port = await freePort()
  const absent = startCli(t, ['--login', 'alice', '--url', `mqtt://127.0.0.1:${port}`, '--state-dir', stateDir(t, 'absent')], { WMQ_PASSWORD: 'alice-password' })
  t.equal(await absent.exited, 1, 'no broker: exit code 1')
  t.equal(absent.stderr(), `no broker at mqtt://127.0.0.1:${port}: start it with "npm start", or point --url at a running one\n`,
    'one line naming the URL and how to start a broker')
  t.notMatch(absent.text() + absent.stderr(), STACK_LINE, 'no stack trace')

  const secretless = startCli(t, ['--login', 'alice', '--url', tb.mqttUrl, '--state-dir', stateDir(t, 'secretless')])
  t.equal(await secretless.exited, 2, 'no password and no terminal to ask on: exit code 2')
  t.match(secretless.stderr(), /^error: no password: set WMQ_PASSWORD or WMQ_TOKEN, or give --password or --token .*\n$/, 'one line')

  const device = stateDir(t, 'device')
  const first = startCli(t, ['--login', 'alice', '--url', tb.mqttUrl, '--state-dir', device], { WMQ_PASSWORD: 'alice-password' })
  const made = /this is a new device, ([0-9a-z]+),/.exec(await first.waitFor(/this is a new device/, 'a device id is made at the first start'))![1]
  first.child.stdin.end() // the end of the input quits, as /quit does
  t.equal(await first.exited, 0, 'the end of the input quits')
  const again = startCli(t, ['--login', 'alice', '--url', tb.mqttUrl, '--state-dir', device], { WMQ_PASSWORD: 'alice-password' })
  await again.waitFor(/online as alice/, 'the second start')
  again.child.stdin.end()
  t.equal(await again.exited, 0, 'again')
  t.notMatch(again.text(), /new device/, 'the second start keeps the device id')
  t.equal(readFileSync(join(device, 'device'), 'utf8').trim(), made, 'kept in the state folder')
})

t.test('connection state: a lost link is said, and so is the way back; what was typed meanwhile goes out', async t => {
  const tb = await startTestBroker(t, 'embedded')
  await tb.addUser('alice', 'alice-password')
  const bob = await tb.addUser('bob')
  const b = await sdkClient(t, tb, 'bob', 'b1')
  await b.client.whenSynced()
  const link = await linkTo(t, tb)
  const a = startCli(t, ['--login', 'alice', '--url', urlOf(link), '--state-dir', stateDir(t, 'link')], { WMQ_PASSWORD: 'alice-password' })
  await a.waitFor(/online as alice/, 'online through the link')
  let from = a.mark()
  a.type(`/dm ${bob}`)
  // A stranger's login is not readable by id before a first message (profiles: PROTOCOL §4).
  await a.waitFor(new RegExp(`^── (bob|user ${bob}) ──$`), 'a user id opens a 1:1 as a login does', from)
  from = a.mark()
  link.resetAll()
  a.type('sent around a reset')
  await a.waitFor(/^○ connection lost \(.+\): reconnecting…$/, 'the lost connection is said', from)
  await a.waitFor(/^● online$/, 'and the way back', from)
  await a.waitFor(/alice: sent around a reset {2}#1/, 'the message is acknowledged', from)
  await waitFor(() => b.messages.some(m => m.content !== null && 'text' in m.content && m.content.text === 'sent around a reset'), 'bob gets it')
  a.type('/quit')
  t.equal(await a.exited, 0, 'exit code 0')
  t.equal(a.stderr(), '', 'nothing on stderr')
})

const hasScript = spawnSync('script', ['--version'], { stdio: 'ignore' }).status === 0

t.test('on a pseudo-terminal: the password is not echoed, keystrokes send typing hints, the typed line survives arrivals',
  { skip: hasScript ? false : 'needs `script` from util-linux for a pseudo-terminal' }, async t => {
    const tb = await startTestBroker(t, 'embedded')
    await tb.addUser('alice', 'alice-password')
    const bob = await tb.addUser('bob')
    const b = await sdkClient(t, tb, 'bob', 'b1')
    const typing: TypingEvent[] = []
    b.client.on('typing', e => typing.push(e))
    await b.client.whenSynced()

    const a = startCliOnPty(t, ['--login', 'alice', '--url', tb.mqttUrl, '--state-dir', stateDir(t, 'pty')])
    await a.waitFor(/password for alice: /, 'the password is asked for')
    a.type('alice-password')
    await a.waitFor(/online as alice/, 'online after the password')
    t.notMatch(a.text(), /alice-password/, 'the password was not echoed')

    let from = a.mark()
    a.type('/dm bob')
    await a.waitFor(/── bob ──/, 'the conversation opens', from)
    a.type('hello bob')
    await a.waitFor(/alice: hello bob {2}#1/, 'a first message makes the conversation', from)
    await waitFor(() => b.messages.length === 1, 'bob gets it')

    a.child.stdin.write('still typ') // no Enter: a person in the middle of a line
    await waitFor(() => typing.some(e => e.active && e.user !== bob), 'the keystrokes reach bob as a typing hint')
    from = a.mark()
    await b.client.send({ user: typing[0].user }, 'are you there?')
    await a.waitFor(/bob: are you there\? {2}#2/, "bob's message shows while alice types", from)
    await a.waitFor(/bob› still typ$/, 'and the half-typed line is drawn again below it', from)
    a.type('ing')
    await waitFor(() => b.messages.some(m => m.content !== null && 'text' in m.content && m.content.text === 'still typing'), 'the finished line is sent')

    a.type('/quit')
    t.equal(await a.exited, 0, '/quit ends it with exit code 0')
    t.notMatch(a.text(), STACK_LINE, 'no stack trace')
  })
