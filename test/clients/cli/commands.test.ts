// What a typed line means (clients/cli/commands.ts) and what the command line gives (args.ts):
// pure functions, checked without a broker.
import t from 'tap'
import { parseCommandLine, UsageError } from '../../../clients/cli/args.ts'
import { parseCommand } from '../../../clients/cli/commands.ts'

t.test('typed lines', async t => {
  t.same(parseCommand('hello bob'), { kind: 'say', text: 'hello bob' }, 'text is a message')
  t.same(parseCommand('  see you at 6  '), { kind: 'say', text: '  see you at 6' }, 'kept as typed, but for trailing blanks')
  t.same(parseCommand('//etc/hosts is a file'), { kind: 'say', text: '/etc/hosts is a file' }, '// sends a leading /')
  t.same(parseCommand('   '), { kind: 'nothing' })
  t.same(parseCommand('/open #7'), { kind: 'open', target: '#7' })
  t.same(parseCommand('/DM bob'), { kind: 'dm', user: 'bob' }, 'command names in any case')
  t.same(parseCommand('/group create "trip to rome" bob 3'), { kind: 'group create', name: 'trip to rome', users: ['bob', '3'] }, 'a quoted name')
  t.same(parseCommand('/group add trip carol dave'), { kind: 'group add', group: 'trip', users: ['carol', 'dave'] })
  t.same(parseCommand('/group remove #7 dave'), { kind: 'group remove', group: '#7', users: ['dave'] })
  t.same(parseCommand('/group leave #7'), { kind: 'group leave', group: '#7' })
  t.same(parseCommand('/recall #12'), { kind: 'recall', seq: 12 }, 'a seq as shown, with its #')
  t.same(parseCommand('/members "trip to rome"'), { kind: 'members', group: 'trip to rome' })
  for (const [line, kind] of [['/list', 'list'], ['/history', 'history'], ['/groups', 'groups'], ['/help', 'help'], ['/quit', 'quit'], ['/exit', 'quit']]) {
    t.equal(parseCommand(line).kind, kind, line)
  }
  for (const line of ['/open', '/dm a b', '/group create trip', '/group', '/recall x', '/recall 0', '/who', '/frobnicate']) {
    const command = parseCommand(line)
    t.equal(command.kind, 'invalid', `${line}: refused`)
    t.match(command, { reason: /\/\w+/ }, `${line}: with how to use it`)
  }
})

t.test('the command line', async t => {
  t.same(parseCommandLine(['--login', 'alice'], { WMQ_PASSWORD: 'pw' }), { login: 'alice', password: 'pw', url: 'mqtt://127.0.0.1:1883', device: undefined, stateDir: undefined },
    'the password from the environment, the default URL')
  t.match(parseCommandLine(['--login', 'alice'], { WMQ_PASSWORD: 'pw', WMQ_TOKEN: 'tk' }), { token: 'tk', password: undefined }, 'of two secrets in the environment, the token')
  t.match(parseCommandLine(['--login', 'alice', '--password', 'flag'], { WMQ_TOKEN: 'tk' }), { password: 'flag', token: undefined }, 'a flag wins over the environment')
  t.match(parseCommandLine(['--login=alice', '--url', 'ws://h:8083/mqtt', '--device', 'a1', '--state-dir', '/tmp/x'], {}),
    { login: 'alice', url: 'ws://h:8083/mqtt', device: 'a1', stateDir: '/tmp/x' })
  t.equal(parseCommandLine(['--help'], {}), 'help')
  t.throws(() => parseCommandLine([], {}), new UsageError('--login is missing'))
  t.throws(() => parseCommandLine(['--login', 'a', '--password', 'p', '--token', 't'], {}), UsageError, 'not both secrets')
  t.throws(() => parseCommandLine(['--login', 'a', '--url', 'http://x'], {}), UsageError, 'an MQTT URL only')
  t.throws(() => parseCommandLine(['--login', 'a', '--bogus'], {}), UsageError, 'unknown flags')
})
