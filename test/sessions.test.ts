// DESIGN 6: the broker subscribes each device session itself. A device that never sends SUBSCRIBE
// gets its inbox; away (clean=false), it gets on reconnect what was published meanwhile.
import t from 'tap'
import { ask, closeAtEnd, connectDevice, eachMode, sendToUser, startTestBroker, wmq } from './harness.ts'

const text = (body: string): wmq.IDownlink => ({ message: { conversation: 1, seq: 1, sender: 2, content: { text: body } } })
const isText = (body: string) => (d: wmq.Downlink) => d.message?.content?.text === body

eachMode(t, 'inbox without SUBSCRIBE, and the offline queue', async (t, mode) => {
  const tb = await startTestBroker(t, mode)
  const alice = await tb.addUser('alice')
  const device = await connectDevice(tb.mqttUrl, { clientId: 'a1', username: 'alice', password: await tb.token('alice') })
  closeAtEnd(t, device)

  t.ok(device.client.connected, 'connected with a token, sent no SUBSCRIBE')
  await sendToUser(tb.broker.aedes, alice, text('while online'))
  const online = await device.next(isText('while online'), 'inbox event while online')
  t.equal(online.message?.content?.text, 'while online', 'the inbox event arrives')
  t.equal(device.received.at(-1)?.topic, 'u/1', 'on the user inbox topic, u/{base-36 user}')

  await device.end()
  await sendToUser(tb.broker.aedes, alice, text('while away 1'))
  await sendToUser(tb.broker.aedes, alice, text('while away 2'))

  const back = await connectDevice(tb.mqttUrl, { clientId: 'a1', username: 'alice', password: await tb.token('alice') })
  closeAtEnd(t, back)
  await back.next(isText('while away 2'), 'second queued event')
  t.same(back.received.map(r => r.downlink.message?.content?.text), ['while away 1', 'while away 2'],
    'the reconnected session gets what was published while it was away, in order, once')
})

eachMode(t, 'a clean session is subscribed too', async (t, mode) => {
  const tb = await startTestBroker(t, mode)
  const bob = await tb.addUser('bob')
  const device = await connectDevice(tb.mqttUrl, { clientId: 'b1', username: 'bob', password: 'correct horse', clean: true })
  closeAtEnd(t, device)
  // The clean session is subscribed once aedes reports it ready; the ping reply shows it is.
  await device.request({ ref: 7, ping: {} })
  const pong = await device.next(d => d.ref === 7 && !!d.pong, 'pong on the downlink')
  t.equal(Number(pong.pong!.user), bob, 'the pong tells the device its user id')
  await sendToUser(tb.broker.aedes, bob, text('hello clean'))
  const got = await device.next(isText('hello clean'), 'inbox event')
  t.ok(got, 'a clean session receives its inbox without SUBSCRIBE')
})

t.test('a burst of publishes is written out at once, not queued in the fan-out emitter', async (t) => {
  // mqemitter with a limit on publishes in flight keeps the rest in an array it shifts one at a
  // time: past some tens of thousands each shift costs the whole array, and a broker that fell
  // behind never caught up (broker/session-backends.ts). Without the limit nothing waits there.
  const tb = await startTestBroker(t, 'embedded')
  const alice = await tb.addUser('alice')
  const device = await connectDevice(tb.mqttUrl, { clientId: 'a1', username: 'alice', password: await tb.token('alice') })
  closeAtEnd(t, device)
  const burst = 2000
  const mq = (tb.broker.aedes as unknown as { mq: { length: number } }).mq
  let longest = 0
  let settled = false
  const watch = () => {
    longest = Math.max(longest, mq.length)
    if (!settled) setImmediate(watch)
  }
  watch()
  await Promise.all(Array.from({ length: burst }, (_, i) => sendToUser(tb.broker.aedes, alice, text(`burst ${i}`))))
  settled = true
  t.equal(longest, 0, `none of the ${burst} publishes waited in the emitter's queue`)
  await device.next(isText(`burst ${burst - 1}`), 'the last of the burst')
  t.same(device.received.map(r => r.downlink.message?.content?.text), Array.from({ length: burst }, (_, i) => `burst ${i}`),
    'every publish of the burst arrives, in order, once')
})

eachMode(t, 'a QoS 0 publish that overtakes a QoS 1 one does not cost the device the QoS 1 one', async (t, mode) => {
  // aedes numbers each publish and drops, per client, a packet numbered below one it already
  // delivered (aedes#994). A QoS 0 publish skips the offline queue's step and reaches the devices
  // first, so a typing event or a presence update sent just after a message took its place.
  const tb = await startTestBroker(t, mode)
  const alice = await tb.addUser('alice')
  const persistent = await connectDevice(tb.mqttUrl, { clientId: 'a1', username: 'alice', password: await tb.token('alice') })
  const clean = await connectDevice(tb.mqttUrl, { clientId: 'a2', clean: true, username: 'alice', password: await tb.token('alice') })
  closeAtEnd(t, persistent, clean)
  await ask(clean, { ping: {} }) // a clean session's inbox is subscribed once it is ready
  const rounds = 5
  for (let i = 0; i < rounds; i++) {
    void sendToUser(tb.broker.aedes, alice, text(`message ${i}`))
    void sendToUser(tb.broker.aedes, alice, { typing: { conversation: 1, user: 2, active: true } }, { qos: 0 })
  }
  for (const [name, device] of [['persistent', persistent], ['clean', clean]] as const) {
    await device.until(() => device.received.filter(r => r.downlink.message).length >= rounds &&
      device.received.filter(r => r.downlink.typing).length >= rounds, `${name}: every publish`)
    t.same(device.received.flatMap(r => r.downlink.message ? [r.downlink.message.content?.text] : []),
      Array.from({ length: rounds }, (_, i) => `message ${i}`), `${name} session: every message arrives, once, beside the typing events`)
  }
})
