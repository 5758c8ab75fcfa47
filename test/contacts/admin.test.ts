// Issue 7 §6: `npm run admin -- contacts list|add|remove`, `block`, `unblock`, and the same through
// the HTTP admin API, which both go through broker/admin/accounts.ts. With a broker to deliver
// them, the changes reach both users' devices as contact events; without one, the devices find
// them by their contact version.
import t, { type Test } from 'tap'
import { createServer, type Server } from 'node:http'
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { AdminError } from '../../broker/admin/accounts.ts'
import { adminFailure as failure, adminLines as admin } from '../harness.ts'
import { ConfigError } from '../../broker/config.ts'
import { httpHandler } from '../../broker/http.ts'
import { createLogger } from '../../broker/log.ts'
import { startBroker } from '../../broker/server.ts'
import { ask, closeAtEnd, connectDevice, eachMode, startTestBroker, testConfig, type TestBroker } from '../harness.ts'
import { CONTACT, NONE, addUsers, connectAll, contactEvents, marker } from './support.ts'

t.test('the admin command, straight to the database', async t => {
  const dataDir = mkdtempSync(join(tmpdir(), 'wmq-contacts-'))
  t.teardown(() => rmSync(dataDir, { recursive: true, force: true }))
  const env = { DATA_DIR: dataDir }
  for (const login of ['alice', 'bob', 'carol']) await admin(['user', 'add', login, '--password', 'S3cret-pass'], env)

  t.same(await admin(['contacts', 'add', 'alice', 'bob'], env), ['alice and bob are contacts now'], 'contacts add')
  t.same(await admin(['contacts', 'add', 'bob', 'alice'], env), ['bob and alice were contacts already'], '  again, from the other side: nothing to do')
  t.same(await admin(['block', 'alice', 'carol'], env), ['alice blocks carol now'], 'block')
  t.same(await admin(['block', 'alice', 'carol'], env), ['alice blocked carol already'], '  again')
  const list = await admin(['contacts', 'list', 'alice'], env)
  t.match(list, [/^\s+2 {2}bob\s+contact {2}since \d{4}-\d\d-\d\d$/, /^\s+3 {2}carol\s+blocked {2}since \d{4}-\d\d-\d\d$/], 'contacts list: bob a contact, carol blocked')
  t.match(JSON.parse((await admin(['contacts', 'list', 'alice', '--json'], env))[0]), [
    { user: 2, login: 'bob', state: 'contact', blocked: false, since: /^\d{4}-/ }, { user: 3, login: 'carol', state: 'none', blocked: true },
  ], '  --json')
  t.same(await admin(['contacts', 'list', 'carol'], env), ['carol has no contacts, requests or blocked users'], "carol's list shows nothing of the block")
  t.same(await admin(['unblock', 'alice', 'carol'], env), ['alice no longer blocks carol'], 'unblock')
  t.same(await admin(['unblock', 'alice', 'carol'], env), ['alice did not block carol'], '  again')
  t.same(JSON.parse((await admin(['contacts', 'remove', 'alice', 'bob', '--json'], env))[0]),
    { login: 'alice', other: 'bob', state: 'none', blocked: false, changed: true }, 'contacts remove --json')
  t.same(await admin(['contacts', 'remove', 'alice', 'bob'], env), ['alice and bob were not contacts'], '  again')

  const unknown = await failure(['contacts', 'add', 'alice', 'nobody'], env)
  t.type(unknown, AdminError, 'an unknown user is an AdminError')
  t.match(unknown, { status: 404, message: 'unknown user "nobody"' }, '  404, naming the login')
  t.match(await failure(['block', 'alice', 'alice'], env), { status: 400, message: '"alice" cannot be their own contact' }, 'oneself: 400')
  const usage = await failure(['contacts', 'add', 'alice'], env)
  t.type(usage, ConfigError, 'a missing login is a usage error')
  t.match(usage.message, 'usage: npm run admin -- contacts add <login> <other>', '  naming the command')
  t.match((await failure(['contacts', 'purge', 'alice'], env)).message, /^usage: npm run admin -- <command>\n.*contacts list/s, 'an unknown subcommand shows the usage')

  // A broker started afterwards: alice's device finds what the command did by her contact version.
  const config = testConfig({ dataDir })
  const broker = await startBroker(config, createLogger('error', () => {}))
  t.teardown(() => broker.close())
  const token = await admin(['token', 'alice'], env) // through the broker's API now that it runs
  const a1 = await connectDevice(`mqtt://127.0.0.1:${broker.ports.MQTT}`, { clientId: 'a1', username: 'alice', password: token[0] })
  closeAtEnd(t, a1)
  const since1 = await ask(a1, { contactSync: { since: 1 } })
  t.same(since1.contacts!.contacts!.map(c => [c.login, c.state, c.blocked, Number(c.version)]),
    [['carol', NONE, false, 3], ['bob', NONE, false, 4]], 'a device that had version 1 learns the block came and went, and bob was removed')
  t.equal(Number(since1.contacts!.cursor), 4, '  up to version 4')
})

interface Answer { status: number, body: Record<string, unknown> }

function caller (base: string, key: string) {
  return async (method: string, path: string, withKey = true): Promise<Answer> => {
    const res = await fetch(base + path, { method, headers: withKey ? { authorization: `Bearer ${key}` } : {} })
    return { status: res.status, body: await res.json() as Record<string, unknown> }
  }
}

eachMode(t, 'the HTTP admin API', async (t, mode) => {
  const tb = await startTestBroker(t, mode)
  const [, bob, carol] = await addUsers(tb, ['alice', 'bob', 'carol'])
  const call = caller(`http://127.0.0.1:${tb.broker.ports.HTTP}`, tb.broker.adminKey)

  t.same(await call('GET', '/api/users/alice/contacts'), { status: 200, body: { contacts: [] } }, 'GET contacts: none yet')
  t.same(await call('PUT', '/api/users/alice/contacts/bob'),
    { status: 200, body: { login: 'alice', other: 'bob', state: 'contact', blocked: false, changed: true } }, 'PUT contacts/bob: contacts')
  t.match(await call('PUT', '/api/users/bob/contacts/alice'), { status: 200, body: { state: 'contact', changed: false } }, '  again from bob: unchanged')
  t.match(await call('PUT', '/api/users/alice/blocks/carol'), { status: 200, body: { other: 'carol', state: 'none', blocked: true, changed: true } }, 'PUT blocks/carol')
  t.match(await call('GET', '/api/users/alice/contacts'), { status: 200, body: { contacts: [
    { user: bob, login: 'bob', state: 'contact', blocked: false }, { user: carol, login: 'carol', state: 'none', blocked: true }] } }, 'GET lists both')
  t.match(await call('DELETE', '/api/users/alice/blocks/carol'), { status: 200, body: { blocked: false, changed: true } }, 'DELETE blocks/carol')
  t.match(await call('DELETE', '/api/users/alice/contacts/bob'), { status: 200, body: { state: 'none', changed: true } }, 'DELETE contacts/bob')
  t.match(await call('DELETE', '/api/users/alice/contacts/bob'), { status: 200, body: { changed: false } }, '  again: unchanged')

  const before = await tb.broker.db.query('SELECT * FROM contacts ORDER BY 1, 2')
  t.match(await call('PUT', '/api/users/alice/contacts/nobody'), { status: 404, body: { error: 'unknown user "nobody"' } }, 'an unknown user: 404')
  t.match(await call('GET', '/api/users/nobody/contacts'), { status: 404 }, '  in the list too')
  t.match(await call('PUT', '/api/users/alice/blocks/alice'), { status: 400, body: { error: /own contact/ } }, 'oneself: 400')
  t.match(await call('PUT', '/api/users/alice/contacts/bob', false), { status: 401 }, 'no key: 401')
  t.match(await call('POST', '/api/users/alice/contacts/bob'), { status: 404, body: { error: /no admin endpoint POST/ } }, 'POST: no such endpoint')
  t.same(await tb.broker.db.query('SELECT * FROM contacts ORDER BY 1, 2'), before, 'the refused calls changed nothing')
})

// Only an embedded broker is reached through its API (with DATABASE_URL the command opens the database).
t.test('the admin command through a running embedded broker', async t => {
  const tb = await startTestBroker(t, 'embedded')
  await addUsers(tb, ['alice', 'bob'])
  const env = { DATA_DIR: tb.config.dataDir }
  t.same(await admin(['contacts', 'add', 'alice', 'bob'], env), ['alice and bob are contacts now'], 'contacts add')
  t.match(tb.logs.join('\n'), /admin API method=PUT path=\/api\/users\/alice\/contacts\/bob status=200/, '  went through the admin API')
  t.same(await admin(['block', 'bob', 'alice'], env), ['bob blocks alice now'], 'block')
  t.match(JSON.parse((await admin(['contacts', 'list', 'bob', '--json'], env))[0]), [{ login: 'alice', state: 'contact', blocked: true }], 'contacts list')
  t.match(await failure(['unblock', 'bob', 'nobody'], env), { status: 404, message: 'unknown user "nobody"' }, 'the same errors as straight to the database')
})

/** The admin API of `tb`'s database on a listener of its own, given the broker to deliver with. */
async function apiWithBroker (t: Test, tb: TestBroker): Promise<ReturnType<typeof caller>> {
  const server: Server = createServer(httpHandler({
    db: tb.broker.db, adminKey: 'test-key', tokenSecret: tb.broker.tokenSecret, tokenTtlMs: 60_000,
    log: createLogger('error', () => {}), health: () => ({}), broker: tb.broker.aedes,
  }))
  await new Promise<void>(resolve => server.listen(0, '127.0.0.1', resolve))
  t.teardown(() => new Promise<void>(resolve => server.close(() => resolve())))
  const address = server.address()
  return caller(`http://127.0.0.1:${typeof address === 'object' && address ? address.port : 0}`, 'test-key')
}

eachMode(t, 'admin changes reach the devices when the API has the broker', async (t, mode) => {
  const tb = await startTestBroker(t, mode)
  const [alice, bob, carol] = await addUsers(tb, ['alice', 'bob', 'carol'])
  const [a1, b1, c1] = await connectAll(tb, [['alice', 'a1'], ['bob', 'b1'], ['carol', 'c1']])
  closeAtEnd(t, a1, b1, c1)
  const call = await apiWithBroker(t, tb)

  await call('PUT', '/api/users/alice/contacts/bob')
  await call('PUT', '/api/users/alice/blocks/carol')
  await call('DELETE', '/api/users/bob/contacts/alice')
  for (const [user, device] of [[alice, a1], [bob, b1], [carol, c1]] as const) await marker(tb, user, device, 'after the admin')
  t.same(contactEvents(a1).map(e => [e.user, e.state, e.blocked, e.version]),
    [[bob, CONTACT, false, 1], [carol, NONE, true, 2], [bob, NONE, false, 3]], "alice's device gets every change of her list, in order")
  t.same(contactEvents(b1).map(e => [e.user, e.state, e.version]), [[alice, CONTACT, 1], [alice, NONE, 2]], "and bob's his")
  t.same(contactEvents(c1), [], 'carol nothing: the block is silent')
})

t.test('the broker\'s own admin API delivers admin changes', async t => {
  const tb = await startTestBroker(t, 'embedded')
  const [alice, bob] = await addUsers(tb, ['alice', 'bob'])
  const [b1] = await connectAll(tb, [['bob', 'b1']])
  closeAtEnd(t, b1)
  await caller(`http://127.0.0.1:${tb.broker.ports.HTTP}`, tb.broker.adminKey)('PUT', '/api/users/alice/contacts/bob')
  await marker(tb, bob, b1, 'after')
  t.same(contactEvents(b1).map(e => [e.user, e.state]), [[alice, CONTACT]], "bob's device gets the change")
})
