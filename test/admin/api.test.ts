// Issue 2 §6: the HTTP admin API (broker/http.ts) of a running broker, guarded by the admin key,
// and /healthz, in both modes.
import t from 'tap'
import { verifyToken } from '../../broker/auth/tokens.ts'
import { closeAtEnd, connectDevice, eachMode, startTestBroker } from '../harness.ts'

interface Answer { status: number, type: string | null, body: Record<string, unknown> }

eachMode(t, 'admin API', async (t, mode) => {
  const tb = await startTestBroker(t, mode)
  const base = `http://127.0.0.1:${tb.broker.ports.HTTP}`
  const call = async (method: string, path: string, options: { key?: string | null, body?: string } = {}): Promise<Answer> => {
    const key = options.key === undefined ? tb.broker.adminKey : options.key
    const res = await fetch(base + path, {
      method,
      headers: { 'content-type': 'application/json', ...(key === null ? {} : { authorization: `Bearer ${key}` }) },
      body: options.body,
    })
    return { status: res.status, type: res.headers.get('content-type'), body: await res.json() as Record<string, unknown> }
  }
  const json = (value: unknown) => JSON.stringify(value)
  const logins = async () => (await tb.broker.db.query<{ login: string }>('SELECT login FROM users ORDER BY id')).map(r => r.login)

  // No key, a wrong key, a key in the wrong scheme: 401, nothing changes.
  const mallory = json({ login: 'mallory', password: 'S3cret-pass' })
  for (const [what, key] of [['no key', null], ['a wrong key', 'not-the-key'], ['an empty key', ''],
    ['the key with a typo', tb.broker.adminKey + 'x']] as const) {
    const added = await call('POST', '/api/users', { key, body: mallory })
    t.equal(added.status, 401, `POST /api/users with ${what}: 401`)
    t.match(added.body, { error: /admin key required/ }, '  saying an admin key is needed')
    t.equal((await call('GET', '/api/users', { key })).status, 401, `GET /api/users with ${what}: 401`)
  }
  const basic = await fetch(`${base}/api/users`, { headers: { authorization: `Basic ${tb.broker.adminKey}` } })
  t.equal(basic.status, 401, 'the key under another scheme than Bearer: 401')
  await basic.body?.cancel()
  await tb.addUser('victim', 'S3cret-pass')
  t.equal((await call('POST', '/api/users/victim/token', { key: null, body: '{}' })).status, 401, 'a token without the key: 401')
  t.same(await logins(), ['victim'], 'nothing was added by the refused requests')
  t.match(tb.logs.join('\n'), /WARN admin API refused: missing or wrong admin key path=\/api\/users/, 'refusals are logged')
  t.notMatch(tb.logs.join('\n'), tb.broker.adminKey, '  and the admin key never is')

  // With the key.
  const added = await call('POST', '/api/users', { body: json({ login: 'alice', password: 'S3cret' }) })
  t.equal(added.status, 201, 'POST /api/users: 201')
  t.equal(added.type, 'application/json', '  JSON')
  t.match(added.body, { id: Number, login: 'alice', createdAt: /^\d{4}-\d\d-\d\dT/ }, '  the new user')
  t.notOk('password' in added.body || 'passwordHash' in added.body, '  without the password or its hash')

  const duplicate = await call('POST', '/api/users', { body: json({ login: 'alice', password: 'S3cret-other' }) })
  t.equal(duplicate.status, 409, 'a duplicate login: 409')
  t.same(duplicate.body, { error: 'duplicate login: "alice" is taken' }, '  with a clear error')
  const weak = await call('POST', '/api/users', { body: json({ login: 'carol', password: '12345' }) })
  t.equal(weak.status, 400, 'a weak password: 400')
  t.match(weak.body, { error: /^weak password/ }, '  saying so')
  const common = await call('POST', '/api/users', { body: json({ login: 'carol', password: 'password' }) })
  t.match(common, { status: 400, body: { error: /^weak password/ } }, 'a common password: 400 weak password')
  const invalid = await call('POST', '/api/users', { body: json({ login: 'Carol Smith', password: 'S3cret' }) })
  t.match(invalid, { status: 400, body: { error: /^invalid login/ } }, 'an invalid login: 400')
  const malformed = await call('POST', '/api/users', { body: '{"login": "carol", ' })
  t.match(malformed, { status: 400, body: { error: 'the body must be a JSON object' } }, 'malformed JSON: 400')
  const array = await call('POST', '/api/users', { body: '["carol"]' })
  t.match(array, { status: 400, body: { error: 'the body must be a JSON object' } }, 'JSON that is not an object: 400')
  const noLogin = await call('POST', '/api/users', { body: json({ password: 'S3cret' }) })
  t.match(noLogin, { status: 400, body: { error: '"login" is required' } }, 'no login: 400')
  const numeric = await call('POST', '/api/users', { body: json({ login: 'carol', password: 123456789 }) })
  t.match(numeric, { status: 400, body: { error: '"password" must be a string' } }, 'a password that is not a string: 400')
  const huge = await call('POST', '/api/users', { body: json({ login: 'carol', password: 'x'.repeat(20_000) }) })
  t.match(huge, { status: 400, body: { error: 'request body too large' } }, 'a body over 16 KiB: 400')
  t.same(await logins(), ['victim', 'alice'], 'none of the refused adds left a user')

  const list = await call('GET', '/api/users')
  t.equal(list.status, 200, 'GET /api/users: 200')
  t.match(list.body, { users: [{ login: 'victim', devices: 0 }, { login: 'alice', devices: 0 }] }, '  lists the users')
  t.equal((list.body.users as unknown[]).length, 2, '  and only them')

  const issued = await call('POST', '/api/users/alice/token', { body: '{}' })
  t.equal(issued.status, 201, 'POST /api/users/alice/token: 201')
  t.match(issued.body, { login: 'alice', user: added.body.id, token: /^t1\./, expiresAt: /^\d{4}-/ }, '  a token for alice')
  const token = String(issued.body.token)
  t.match(verifyToken(tb.broker.tokenSecret, token), { ok: true, user: added.body.id }, '  that verifies')
  const device = await connectDevice(tb.mqttUrl, { clientId: 'a1', username: 'alice', password: token })
  closeAtEnd(t, device)
  t.ok(device.client.connected, '  and connects a device')
  t.match((await call('GET', '/api/users')).body, { users: [{ login: 'victim' }, { login: 'alice', devices: 1 }] },
    'the list counts the new device')

  const short = await call('POST', '/api/users/alice/token', { body: json({ ttl: '90s' }) })
  t.equal(short.status, 201, 'a token with a ttl: 201')
  const lifetime = Date.parse(String(short.body.expiresAt)) - Date.now()
  t.ok(lifetime > 0 && lifetime <= 90_000, '  that expires within the ttl')
  t.match(await call('POST', '/api/users/alice/token', { body: json({ ttl: 'soon' }) }),
    { status: 400, body: { error: /not a duration/ } }, 'a ttl that is not a duration: 400')
  t.match(await call('POST', '/api/users/nobody/token', { body: '{}' }),
    { status: 404, body: { error: 'unknown user "nobody"' } }, 'a token for an unknown user: 404')

  t.match(await call('POST', '/api/users/%E0%A4%A/token', { body: '{}' }),
    { status: 400, body: { error: /bad percent-encoding/ } }, 'a login in the path that is not valid percent-encoding: 400')
  t.match(await call('POST', `/api/users/${encodeURIComponent('alice')}/token`, { body: '{}' }), { status: 201 }, 'a percent-encoded login works')
  t.notMatch(tb.logs.join('\n'), / ERROR /, 'no request above was an internal error')
  t.match(await call('GET', '/api/nothing'), { status: 404, body: { error: 'no admin endpoint GET /api/nothing' } }, 'an unknown endpoint: 404')
  t.match(await call('DELETE', '/api/users'), { status: 404, body: { error: /^no admin endpoint DELETE/ } }, 'an unknown method: 404')
  t.match(await call('GET', '/api/users/alice/token'), { status: 404 }, 'GET on the token endpoint: 404')

  const health = await call('GET', '/healthz', { key: null })
  t.equal(health.status, 200, 'GET /healthz needs no key: 200')
  t.match(health.body, {
    ok: true,
    broker: tb.broker.aedes.id,
    history: mode === 'embedded' ? 'pglite' : 'postgres',
    sessions: mode === 'embedded' ? 'memory' : 'redis',
    clients: 1,
    uptimeSeconds: Number,
  }, '  ok, with the history and sessions kind of this mode and the connected device')
  t.match(await call('GET', '/nothing', { key: null }), { status: 404 }, 'anything else outside /api and the web client: 404')
})
