// The browser client's endpoints on the HTTP listener (broker/http.ts): POST /login trades a
// password for a token and a device through the MQTT authenticate hook's check and slow-down;
// /config.json says where MQTT over WebSocket listens; the page and its bundle are served.
import t from 'tap'
import { closeAtEnd, connectDevice, eachMode, startTestBroker } from '../../harness.ts'

eachMode(t, 'POST /login', async (t, mode) => {
  const tb = await startTestBroker(t, mode, { authFreeFailures: 1, authMaxDelayMs: 50 })
  const alice = await tb.addUser('alice', 'alice-secret')
  await tb.addUser('bob', 'bob-secret')
  const base = `http://127.0.0.1:${tb.broker.ports.HTTP}`
  const login = async (body: unknown) => {
    const response = await fetch(`${base}/login`, { method: 'POST', body: JSON.stringify(body) })
    return { status: response.status, body: await response.json() as Record<string, unknown> }
  }

  const ok = await login({ login: 'alice', password: 'alice-secret', device: 'w1' })
  t.match(ok, { status: 200, body: { user: alice, login: 'alice', token: /^t1\./, expiresAt: String, device: 'w1' } },
    'the password is traded for a token; the device asked for is bound to alice')
  const device = await connectDevice(`ws://127.0.0.1:${tb.broker.ports.WebSocket}/mqtt`,
    { clientId: 'w1', username: 'alice', password: ok.body.token as string })
  closeAtEnd(t, device)
  t.ok(device.client.connected, 'the token and device connect over WebSocket')

  const shared = await login({ login: 'bob', password: 'bob-secret', device: 'w1' })
  t.equal(shared.status, 200, "bob logs in on alice's browser")
  t.not(shared.body.device, 'w1', '  and gets a device of his own: w1 is bound to alice')
  t.match(shared.body.device, /^[1-9a-z][0-9a-z]{9,10}$/, '  a fresh device id')
  t.match(await login({ login: 'bob', password: 'bob-secret' }), { status: 200, body: { device: /^[1-9a-z][0-9a-z]{9,10}$/ } },
    'no device asked for: one is made')

  t.same(await login({ login: 'alice', password: 'wrong' }), { status: 401, body: { error: 'wrong login or password' } }, 'a wrong password: 401')
  t.same(await login({ login: 'nobody', password: 'wrong' }), { status: 401, body: { error: 'wrong login or password' } }, 'an unknown login: the same 401')
  t.same(await login({ login: 'alice', password: ok.body.token }), { status: 401, body: { error: 'wrong login or password' } },
    'a token is not taken as a password (it would renew itself forever)')
  t.equal((await login({ login: 'alice' })).status, 400, 'no password: 400')
  t.equal((await fetch(`${base}/login`)).status, 405, 'GET /login: 405')
  await login({ login: 'alice', password: 'wrong again' })
  t.ok(tb.logs.some(line => line.includes('web login slowed down after repeated failures') && line.includes('login=alice')),
    'repeated failures are slowed down like MQTT logins')
  t.notOk(tb.logs.some(line => /alice-secret|bob-secret|wrong again/.test(line)), 'no password in the log')
  t.match(await login({ login: 'alice', password: 'alice-secret', device: 'w1' }), { status: 200, body: { device: 'w1' } },
    'the right password still works after the slow-down')

  t.same(await (await fetch(`${base}/config.json`)).json(), { ws: tb.broker.ports.WebSocket, wss: null, path: '/mqtt' }, '/config.json')
  const js = await fetch(`${base}/app.js`)
  t.match({ status: js.status, type: js.headers.get('content-type') }, { status: 200, type: /javascript/ }, '/app.js is bundled and served')
  t.match(await js.text(), /\/login/, '  and is the chat client')
  t.equal((await fetch(`${base}/api/users`)).status, 401, 'the admin API still wants its key')
})
