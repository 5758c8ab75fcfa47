// Bad input on the uplink `s` (broker/chat/requests.ts): a payload that is not an Uplink, one over
// MAX_PAYLOAD, an Uplink without a request. Each gets an Error with its code on the sending device's
// downlink and a log line with user and device; the connection stays up and nobody else hears of it.
import t from 'tap'
import { closeAtEnd, connectDevice, eachMode, sendToUser, startTestBroker, wmq, type Device } from '../harness.ts'

const MAX_PAYLOAD = 1024

interface Case {
  what: string
  payload: () => Buffer
  code: wmq.ErrorCode
  /** The ref the error must carry: the request's when it could be decoded, else 0. */
  ref: number
  todo?: string
}

const encode = (uplink: wmq.IUplink) => Buffer.from(wmq.Uplink.encode(uplink).finish())

const cases: Case[] = [
  { what: 'JSON instead of protobuf', payload: () => Buffer.from('{"ref":1,"ping":{}}'), code: wmq.ErrorCode.MALFORMED, ref: 0 },
  { what: 'bytes that are no protobuf at all', payload: () => Buffer.alloc(11, 0xff), code: wmq.ErrorCode.MALFORMED, ref: 0 },
  { what: 'a field whose length runs past the end', payload: () => Buffer.from([0x0a, 0xff]), code: wmq.ErrorCode.MALFORMED, ref: 0 },
  {
    what: `a valid Uplink over MAX_PAYLOAD (${MAX_PAYLOAD} bytes)`,
    payload: () => encode({ ref: 55, send: { clientMsgId: new Uint8Array(8), user: 2, content: { text: 'x'.repeat(2 * MAX_PAYLOAD) } } }),
    code: wmq.ErrorCode.TOO_LARGE,
    // DESIGN 3: a device re-sends until it hears back about that send; an error it cannot match to
    // its request (ref 0) would leave it re-sending an oversize message for ever.
    ref: 55,
  },
  { what: 'an Uplink with a ref and no request', payload: () => encode({ ref: 42 }), code: wmq.ErrorCode.UNKNOWN_REQUEST, ref: 42 },
  { what: 'an empty payload', payload: () => Buffer.alloc(0), code: wmq.ErrorCode.UNKNOWN_REQUEST, ref: 0 },
  // A newer client's request kind: ref 43, then field 100 (unknown here) holding an empty message.
  { what: 'a request kind this broker does not know', payload: () => Buffer.from([0x08, 43, 0xa2, 0x06, 0x00]), code: wmq.ErrorCode.UNKNOWN_REQUEST, ref: 43 },
]

/** Publishes raw bytes on the uplink, QoS 1, as any MQTT client can. */
const publishRaw = (device: Device, payload: Buffer) => new Promise<void>((resolve, reject) =>
  device.client.publish('s', payload, { qos: 1 }, err => err ? reject(err) : resolve()))

eachMode(t, 'bad input on the uplink', async (t, mode) => {
  const tb = await startTestBroker(t, mode, { maxPayload: MAX_PAYLOAD })
  const alice = await tb.addUser('alice')
  const bob = await tb.addUser('bob')
  const a1 = await connectDevice(tb.mqttUrl, { clientId: 'a1', username: 'alice', password: await tb.token('alice') })
  const a2 = await connectDevice(tb.mqttUrl, { clientId: 'a2', username: 'alice', password: await tb.token('alice') })
  const b1 = await connectDevice(tb.mqttUrl, { clientId: 'b1', username: 'bob', password: await tb.token('bob') })
  closeAtEnd(t, a1, a2, b1)
  const a1Id = parseInt('a1', 36)

  let pingRef = 1000
  for (const c of cases) {
    await t.test(c.what, async t => {
      const payload = c.payload()
      if (c.code === wmq.ErrorCode.TOO_LARGE) t.ok(payload.length > MAX_PAYLOAD, `the payload is ${payload.length} bytes`)
      const seen = a1.received.length
      const logged = tb.logs.length
      await publishRaw(a1, payload)
      // Requests of one device are answered in order: the error comes before the pong.
      const ref = ++pingRef
      await a1.request({ ref, ping: {} })
      await a1.next(d => d.ref === ref && !!d.pong, 'the pong after the bad request')
      const replies = a1.received.slice(seen)

      t.equal(replies.length, 2, 'the device got one reply to the bad request, then the pong')
      const [error, pong] = replies
      t.equal(error?.topic, 'd/a1', '  the error is on its own downlink')
      t.equal(error?.downlink.error?.code, c.code, `  code ${wmq.ErrorCode[c.code]}`)
      t.ok(error?.downlink.error?.detail, '  with a detail for people')
      t.equal(error?.downlink.ref, c.ref, c.ref ? `  echoing the request's ref ${c.ref}` : '  ref 0: there is no ref to echo',
        c.todo ? { todo: c.todo } : {})
      t.equal(pong?.downlink.ref, ref, 'a Ping after it still gets its Pong')
      t.ok(a1.client.connected, '  on the same connection')

      const lines = tb.logs.slice(logged).filter(line => / request refused /.test(line))
      t.equal(lines.length, 1, 'one log line for the refusal')
      t.match(lines[0], new RegExp(`request refused user=${alice} device=${a1Id} .*code=${wmq.ErrorCode[c.code]}`),
        '  with the user, the device and the code')
    })
  }

  t.ok(a1.client.connected && a2.client.connected && b1.client.connected, 'every device is still connected')
  // Nothing of the above reached another user, or alice's other device: a marker sent afterwards is
  // the first thing each of them got.
  await sendToUser(tb.broker.aedes, bob, { message: { conversation: 9, seq: 1, content: { text: 'marker for bob' } } })
  await sendToUser(tb.broker.aedes, alice, { message: { conversation: 9, seq: 1, content: { text: 'marker for alice' } } })
  await b1.next(d => d.message?.content?.text === 'marker for bob', 'the marker for bob')
  await a2.next(d => d.message?.content?.text === 'marker for alice', 'the marker for alice')
  t.same(b1.received.map(r => r.downlink.message?.content?.text), ['marker for bob'], 'bob (another user) received nothing else')
  t.same(a2.received.map(r => r.downlink.message?.content?.text), ['marker for alice'],
    "alice's other device received none of a1's errors: they go to the device's downlink, not the inbox")
})
