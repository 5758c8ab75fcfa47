// Issue 2 §5: who may connect. Real mqtt.js clients against a real broker, in both modes.
import t from 'tap'
import mqtt from 'mqtt'
import { issueToken } from '../../broker/auth/tokens.ts'
import { closeAtEnd, connectDevice, connectRaw, eachMode, startTestBroker } from '../harness.ts'

/** The CONNACK return code of a refused connect (mqtt.js reports it as `code`). */
async function refusedWith (url: string, options: mqtt.IClientOptions): Promise<number | string> {
  try {
    const client = await connectRaw(url, options)
    client.end(true)
    return 'accepted'
  } catch (err) {
    return (err as { code?: number }).code ?? (err as Error).message
  }
}

eachMode(t, 'credentials', async (t, mode) => {
  // Many failures from one address on purpose: no slow-down here (it has its own test below).
  const tb = await startTestBroker(t, mode, { authFreeFailures: 1000 })
  const alice = await tb.addUser('alice', 'S3cret-pass')
  await tb.addUser('bob', 'bobs-password')
  const url = tb.mqttUrl
  const as = (clientId: string, password: string, username = 'alice') => ({ clientId, username, password })

  const withToken = await connectDevice(url, as('a1', await tb.token('alice')))
  closeAtEnd(t, withToken)
  t.ok(withToken.client.connected, 'a valid token connects')
  const withPassword = await connectDevice(url, as('a2', 'S3cret-pass'))
  closeAtEnd(t, withPassword)
  t.ok(withPassword.client.connected, 'the right password connects')

  const expired = issueToken(tb.broker.tokenSecret, alice, Date.now() - 1000)
  t.equal(await refusedWith(url, as('a3', expired)), 4, 'an expired token gets CONNACK 4')
  const valid = await tb.token('alice')
  const tampered = valid.slice(0, -2) + (valid.endsWith('AA') ? 'BB' : 'AA')
  t.equal(await refusedWith(url, as('a3', tampered)), 4, 'a tampered token gets CONNACK 4')
  const forged = issueToken(Buffer.from('not the broker secret'), alice, Date.now() + 60_000)
  t.equal(await refusedWith(url, as('a3', forged)), 4, 'a token signed with another key gets CONNACK 4')
  t.equal(await refusedWith(url, as('a3', await tb.token('bob'))), 4, "bob's token as alice gets CONNACK 4")
  t.equal(await refusedWith(url, as('a3', 'wrong-password')), 4, 'a wrong password gets CONNACK 4')
  t.equal(await refusedWith(url, as('a3', 'whatever', 'mallory')), 4, 'an unknown user gets CONNACK 4, like a wrong password')
  t.equal(await refusedWith(url, { clientId: 'a3' }), 4, 'no credentials get CONNACK 4')
  t.equal(await refusedWith(url, as('A-3!', 'S3cret-pass')), 2, 'a client id that is not a base-36 device id gets CONNACK 2')
  t.equal(await refusedWith(url, as('a1', 'bobs-password', 'bob')), 5, "alice's device a1 used by bob gets CONNACK 5")

  const rows = await tb.broker.db.query<{ id: number, userId: number }>('SELECT id, user_id AS "userId" FROM devices ORDER BY id')
  t.same(rows, [{ id: parseInt('a1', 36), userId: alice }, { id: parseInt('a2', 36), userId: alice }],
    'devices are bound to the user of their first login; refused connects bind nothing')

  const log = tb.logs.join('\n')
  t.match(log, /connect refused login=alice device=a3 .*reason="token expired"/, 'the refusal reason is logged')
  t.match(log, /connect refused login=bob device=a1 .*returnCode=5 reason="device is bound to another user"/)
  for (const secret of ['S3cret-pass', 'bobs-password', 'wrong-password', valid, tampered, expired]) {
    t.notOk(log.includes(secret), `no password or token in the log (${secret.slice(0, 6)}...)`)
  }
})

eachMode(t, 'an MQTT 5 client is refused with a clear log line', async (t, mode) => {
  const tb = await startTestBroker(t, mode)
  await tb.addUser('carol', 'carol-password')
  const result = await new Promise<string>(resolve => {
    const client = mqtt.connect(tb.mqttUrl, { protocolVersion: 5, clientId: 'c1', username: 'carol', password: 'carol-password', reconnectPeriod: 0 })
    client.on('connect', () => { client.end(true); resolve('connected') })
    client.on('error', err => { client.end(true); resolve(`error: ${err.message}`) })
    client.on('close', () => resolve('closed'))
  })
  t.not(result, 'connected', `the MQTT 5 client does not get in (${result})`)
  t.match(tb.logs.join('\n'), /connect refused: this broker speaks MQTT 3.1.1 \(protocol level 4\) only protocolVersion=5 device=c1/)
})

eachMode(t, 'repeated failures are slowed down', async (t, mode) => {
  const tb = await startTestBroker(t, mode, { authFreeFailures: 2, authMaxDelayMs: 50 })
  await tb.addUser('dave', 'daves-password')
  const as = (password: string) => ({ clientId: 'd1', username: 'dave', password })
  for (let i = 0; i < 2; i++) t.equal(await refusedWith(tb.mqttUrl, as('nope-nope')), 4, `failure ${i + 1} is answered at once`)
  t.notMatch(tb.logs.join('\n'), /slowed down/, 'no slow-down within the free failures')
  t.equal(await refusedWith(tb.mqttUrl, as('nope-nope')), 4, 'the third failure is refused too')
  t.match(tb.logs.join('\n'), /login slowed down after repeated failures login=dave device=d1 address=127.0.0.1 delayMs=50/,
    'and was held back first')
  const ok = await connectDevice(tb.mqttUrl, as('daves-password'))
  closeAtEnd(t, ok)
  t.ok(ok.client.connected, 'the right password still gets in after the slow-down')
})
