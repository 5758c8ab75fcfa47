// DESIGN 6: the broker subscribes each device session itself. A device that never sends SUBSCRIBE
// gets its inbox; away (clean=false), it gets on reconnect what was published meanwhile.
import t from 'tap'
import { closeAtEnd, connectDevice, eachMode, sendToUser, startTestBroker, wmq } from './harness.ts'

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
