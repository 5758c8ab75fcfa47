// Issue 2 §7, table-driven with real clients: own/other user x inbox/downlink/presence/uplink/
// wildcard/#/$SYS x publish/subscribe, each with its expected verdict.
import t from 'tap'
import type { MqttClient } from 'mqtt'
import { closeAtEnd, connectDevice, eachMode, sendToUser, startTestBroker, wmq, type Device } from './harness.ts'

type Ids = { me: number, other: number, myDevice: string, otherDevice: string }

interface Row {
  what: string
  topic: (ids: Ids) => string
  subscribe: 'granted' | 'refused'
  publish: 'served' | 'refused' | 'protocol violation'
}

const rows: Row[] = [
  { what: 'own inbox', topic: i => `u/${i.me.toString(36)}`, subscribe: 'granted', publish: 'refused' },
  { what: "other user's inbox", topic: i => `u/${i.other.toString(36)}`, subscribe: 'refused', publish: 'refused' },
  { what: 'own downlink', topic: i => `d/${i.myDevice}`, subscribe: 'granted', publish: 'refused' },
  { what: "other user's downlink", topic: i => `d/${i.otherDevice}`, subscribe: 'refused', publish: 'refused' },
  { what: 'own presence', topic: i => `p/${i.me.toString(36)}`, subscribe: 'granted', publish: 'refused' },
  { what: "other user's presence (not a contact)", topic: i => `p/${i.other.toString(36)}`, subscribe: 'refused', publish: 'refused' },
  { what: 'uplink', topic: () => 's', subscribe: 'refused', publish: 'served' },
  { what: 'inbox wildcard', topic: () => 'u/+', subscribe: 'refused', publish: 'protocol violation' },
  { what: 'multi-level wildcard', topic: () => '#', subscribe: 'refused', publish: 'protocol violation' },
  { what: '$SYS', topic: () => '$SYS/#', subscribe: 'refused', publish: 'protocol violation' },
  { what: '$SYS topic', topic: () => '$SYS/broker/clients', subscribe: 'refused', publish: 'refused' },
  { what: 'unknown topic', topic: () => 'chat/general', subscribe: 'refused', publish: 'refused' },
  { what: 'inbox with a non-canonical id', topic: i => `u/0${i.me.toString(36)}`, subscribe: 'refused', publish: 'refused' },
]

/** The granted QoS, or 128 for a refusal (mqtt.js 5 reports a SUBACK of 0x80 as an error). */
function subscribe (client: MqttClient, topic: string): Promise<number> {
  return new Promise((resolve, reject) => client.subscribe(topic, { qos: 1 }, (err, granted) => {
    if (err && /Subscribe error/.test(err.message)) return resolve(128)
    return err ? reject(err) : resolve(granted?.[0]?.qos ?? -1)
  }))
}

/** Publishes a Ping on `topic` and tells what came of it. */
async function publish (device: Device, topic: string, ref: number): Promise<Row['publish']> {
  const payload = Buffer.from(wmq.Uplink.encode({ ref, ping: {} }).finish())
  const closed = new Promise<'protocol violation'>(resolve => device.client.once('close', () => resolve('protocol violation')))
  device.client.publish(topic, payload, { qos: 1 })
  const answer = device.next(d => d.ref === ref || d.error?.code === wmq.ErrorCode.TOPIC_FORBIDDEN, `reply to ${topic}`)
    .then(d => d.pong ? 'served' as const : 'refused' as const)
  return Promise.race([answer, closed])
}

eachMode(t, 'topic ACL', async (t, mode) => {
  const tb = await startTestBroker(t, mode)
  const ids: Ids = { me: await tb.addUser('alice'), other: await tb.addUser('bob'), myDevice: 'a1', otherDevice: 'b1' }
  const bob = await connectDevice(tb.mqttUrl, { clientId: ids.otherDevice, username: 'bob', password: await tb.token('bob') })
  closeAtEnd(t, bob)

  let ref = 100
  for (const row of rows) {
    const topic = row.topic(ids)
    const alice = await connectDevice(tb.mqttUrl, { clientId: ids.myDevice, username: 'alice', password: await tb.token('alice') })
    const granted = await subscribe(alice.client, topic)
    t.equal(granted === 128 ? 'refused' : 'granted', row.subscribe, `subscribe ${row.what} (${topic}): ${row.subscribe}`)
    if (row.subscribe === 'refused') {
      t.match(tb.logs.join('\n'), new RegExp(`subscribe refused user=${ids.me} device=a1 topic=${JSON.stringify(topic).replace(/[$+#]/g, '\\$&').replace(/^"(.*)"$/, '"?$1"?')}`),
        '  and the refusal is logged with user and device')
    }
    alice.received.length = 0
    t.equal(await publish(alice, topic, ++ref), row.publish, `publish to ${row.what} (${topic}): ${row.publish}`)
    if (row.publish === 'refused') {
      t.match(tb.logs.join('\n'), `publish refused user=${ids.me} device=${parseInt(ids.myDevice, 36)}`, '  and logged')
      t.ok(alice.client.connected, '  the device keeps its connection')
    }
    await alice.end()
  }

  // Nothing alice published reached bob: a marker sent to bob afterwards is the first thing he got.
  await sendToUser(tb.broker.aedes, ids.other, { message: { conversation: 9, seq: 1, content: { text: 'marker' } } })
  await bob.next(d => d.message?.content?.text === 'marker', 'the marker')
  t.same(bob.received.map(r => r.downlink.message?.content?.text), ['marker'], "none of alice's publishes reached bob")
})
