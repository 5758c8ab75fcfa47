// Issue 3 §5 and §11: each kind of content, and each refusal, which stores nothing.
import t from 'tap'
import { ask, closeAtEnd, connectDevice, eachMode, newClientMsgId, startTestBroker, wmq } from '../harness.ts'

eachMode(t, 'kinds of content and their refusals', async (t, mode) => {
  const tb = await startTestBroker(t, mode, { maxBody: 300 })
  await tb.addUser('alice')
  const bob = await tb.addUser('bob')
  const a1 = await connectDevice(tb.mqttUrl, { clientId: 'a1', username: 'alice', password: await tb.token('alice') })
  const b1 = await connectDevice(tb.mqttUrl, { clientId: 'b1', username: 'bob', password: await tb.token('bob') })
  closeAtEnd(t, a1, b1)
  const send = (content: wmq.IContent, clientMsgId = newClientMsgId()) => ask(a1, { send: { clientMsgId, user: bob, content } })
  const rows = async () => (await tb.broker.db.query<{ n: number }>('SELECT count(*)::int AS n FROM messages'))[0].n

  const accepted: Array<[string, wmq.IContent]> = [
    ['text', { text: 'hello' }],
    ['image with a thumbnail', { media: { kind: wmq.MediaKind.IMAGE, mime: 'image/jpeg', size: 48213, width: 640, height: 480, ref: 'obj/1', thumbnail: new Uint8Array(40) } }],
    ['voice', { media: { kind: wmq.MediaKind.VOICE, mime: 'audio/ogg', size: 9000, durationMs: 4200, ref: 'obj/2' } }],
    ['video', { media: { kind: wmq.MediaKind.VIDEO, mime: 'video/mp4', size: 1e6, durationMs: 8000, width: 320, height: 240, ref: 'obj/3' } }],
    ['file', { media: { kind: wmq.MediaKind.FILE, mime: 'application/pdf', size: 1234, ref: 'obj/4', name: 'a.pdf' } }],
    ['location', { location: { latitude: 59.33, longitude: 18.06, label: 'Stockholm' } }],
    ['custom', { custom: new Uint8Array([1, 2, 3]) }],
  ]
  for (const [kind, content] of accepted) {
    const reply = await send(content)
    t.ok(reply.sendAck, `${kind} is accepted`)
  }
  await b1.until(() => b1.received.filter(r => r.downlink.message).length === accepted.length, 'every kind delivered')
  const delivered = b1.received.map(r => r.downlink.message!.content!)
  const plain = (c: wmq.IContent) => wmq.Content.toObject(wmq.Content.fromObject(c), { bytes: Array, longs: Number })
  t.same(delivered.map(plain), accepted.map(([, c]) => plain(c)),
    'and delivered as sent')
  const stored = await rows()

  const refused: Array<[string, Parameters<typeof send>[0] | null, wmq.ErrorCode, Uint8Array?]> = [
    ['no content', null, wmq.ErrorCode.INVALID_ARGUMENT],
    ['empty text', { text: '   ' }, wmq.ErrorCode.INVALID_ARGUMENT],
    ['text over MAX_BODY', { text: 'x'.repeat(400) }, wmq.ErrorCode.TOO_LARGE],
    ['a thumbnail over MAX_BODY', { media: { kind: wmq.MediaKind.IMAGE, mime: 'image/png', ref: 'o', thumbnail: new Uint8Array(400) } }, wmq.ErrorCode.TOO_LARGE],
    ['media without a ref', { media: { kind: wmq.MediaKind.IMAGE, mime: 'image/png' } }, wmq.ErrorCode.INVALID_ARGUMENT],
    ['media with a bad mime', { media: { kind: wmq.MediaKind.FILE, mime: 'pdf', ref: 'o' } }, wmq.ErrorCode.INVALID_ARGUMENT],
    ['an unknown media kind', { media: { kind: 9 as wmq.MediaKind, mime: 'a/b', ref: 'o' } }, wmq.ErrorCode.INVALID_ARGUMENT],
    ['a latitude of 91', { location: { latitude: 91, longitude: 0 } }, wmq.ErrorCode.INVALID_ARGUMENT],
    ['empty custom data', { custom: new Uint8Array(0) }, wmq.ErrorCode.INVALID_ARGUMENT],
    ['a system event from a device', { system: { renamed: 'x' } }, wmq.ErrorCode.FORBIDDEN],
    ['an empty client_msg_id', { text: 'x' }, wmq.ErrorCode.INVALID_ARGUMENT, new Uint8Array(0)],
    ['a client_msg_id of 17 bytes', { text: 'x' }, wmq.ErrorCode.INVALID_ARGUMENT, new Uint8Array(17)],
  ]
  for (const [what, content, code, clientMsgId] of refused) {
    const reply = content === null
      ? await ask(a1, { send: { clientMsgId: newClientMsgId(), user: bob } })
      : await send(content, clientMsgId)
    t.equal(reply.error?.code, code, `${what}: ${wmq.ErrorCode[code]}`)
  }
  t.equal(await rows(), stored, 'no refused send stored a row')
  t.ok(a1.client.connected && b1.client.connected, 'both devices are still connected')
  t.equal(b1.received.filter(r => r.downlink.message).length, accepted.length, 'and bob received nothing of the refused ones')
})
