// Issue 3 §10: presence is online while any device of the user is, offline with last seen after;
// retained on p/{user}; readable by 1:1 partners and group peers only.
import t from 'tap'
import type { MqttClient } from 'mqtt'
import { ask, closeAtEnd, connectDevice, eachMode, sendText, startTestBroker, type Device } from '../harness.ts'

function subscribe (client: MqttClient, topic: string): Promise<'granted' | 'refused'> {
  return new Promise(resolve => client.subscribe(topic, { qos: 0 }, (err, granted) =>
    resolve(err || granted?.[0]?.qos === 128 ? 'refused' : 'granted')))
}

const states = (device: Device, user: number) => device.presence
  .filter(p => p.topic === `p/${user.toString(36)}`).map(p => p.presence.online ? 'online' : 'offline')

eachMode(t, 'presence', async (t, mode) => {
  const tb = await startTestBroker(t, mode)
  const [alice, bob] = [await tb.addUser('alice'), await tb.addUser('bob')]
  await tb.addUser('carol')
  await tb.addUser('dave')
  const connect = async (login: string, device: string) =>
    connectDevice(tb.mqttUrl, { clientId: device, username: login, password: await tb.token(login) })
  const [b1, c1, d1] = [await connect('bob', 'b1'), await connect('carol', 'c1'), await connect('dave', 'd1')]
  closeAtEnd(t, b1, c1, d1)

  t.equal(await subscribe(b1.client, `p/${alice.toString(36)}`), 'refused', 'before they talk, bob may not read alice\'s presence')
  let a1 = await connect('alice', 'a1')
  await sendText(a1, { user: bob }, 'hello')
  t.equal(await subscribe(b1.client, `p/${alice.toString(36)}`), 'granted', 'a 1:1 partner may read it')
  t.equal(await subscribe(c1.client, `p/${alice.toString(36)}`), 'refused', 'a stranger may not')
  t.match(tb.logs.join('\n'), /subscribe refused user=\d+ device=c1 topic=p\/1/, 'and the refusal is logged')
  await ask(d1, { groupCreate: { name: 'g', members: [alice] } })
  t.equal(await subscribe(d1.client, `p/${alice.toString(36)}`), 'granted', 'a group peer may read it')

  await b1.until(() => states(b1, alice).length > 0, "alice's presence on b1")
  t.same(states(b1, alice), ['online'], 'bob sees alice online (the retained state)')
  const a2 = await connect('alice', 'a2')
  closeAtEnd(t, a2)
  await a1.end()
  a1 = await connect('alice', 'a1') // the same phone back on a new connection
  await a1.end()
  await a2.end()
  await b1.until(() => states(b1, alice).includes('offline'), 'alice offline on b1')
  t.same(states(b1, alice), ['online', 'offline'], 'offline only once the last device is gone, no flapping')
  const offline = b1.presence.filter(p => p.topic === `p/${alice.toString(36)}`).at(-1)!.presence
  t.ok(Number(offline.lastSeen) > Date.now() - 60_000, 'offline carries last seen')

  // A reader who subscribes later gets the retained state.
  const b2 = await connect('bob', 'b2')
  closeAtEnd(t, b2)
  t.equal(await subscribe(b2.client, `p/${alice.toString(36)}`), 'granted')
  await b2.until(() => states(b2, alice).length > 0, 'retained presence on b2')
  t.same(states(b2, alice), ['offline'], 'a new reader gets the retained offline state')
})

eachMode(t, 'the presence of a user who never connected: offline, handed to the new reader', async (t, mode) => {
  const tb = await startTestBroker(t, mode)
  await tb.addUser('bob')
  const erin = await tb.addUser('erin')
  const b1 = await connectDevice(tb.mqttUrl, { clientId: 'b1', username: 'bob', password: await tb.token('bob') })
  closeAtEnd(t, b1)
  await sendText(b1, { user: erin }, 'are you there?') // now 1:1 partners
  t.equal(await subscribe(b1.client, `p/${erin.toString(36)}`), 'granted')
  await b1.until(() => states(b1, erin).length > 0, "erin's presence")
  t.same(states(b1, erin), ['offline'], 'the retained state is there when the SUBACK is: offline')
  t.equal(Number(b1.presence[0].presence.lastSeen), 0, 'never seen')
})
