// DESIGN 3 / issue 3 §2: a repeat of (sender, client_msg_id) returns the first SendAck and stores
// and delivers nothing new, also across a reconnect.
import t from 'tap'
import { closeAtEnd, connectDevice, eachMode, newClientMsgId, sendText, startTestBroker, textsOf } from '../harness.ts'

eachMode(t, 'the same client_msg_id three times, once across a reconnect', async (t, mode) => {
  const tb = await startTestBroker(t, mode)
  await tb.addUser('alice')
  const bob = await tb.addUser('bob')
  const connect = async (login: string, device: string) =>
    connectDevice(tb.mqttUrl, { clientId: device, username: login, password: await tb.token(login) })
  const b1 = await connect('bob', 'b1')
  closeAtEnd(t, b1)
  let a1 = await connect('alice', 'a1')
  const id = newClientMsgId()
  const first = await sendText(a1, { user: bob }, 'once', id)
  const second = await sendText(a1, { user: bob }, 'once', id)
  await a1.end()
  a1 = await connect('alice', 'a1')
  closeAtEnd(t, a1)
  const third = await sendText(a1, { user: bob }, 'once', id)
  t.ok(first.sendAck, 'the first send is acknowledged')
  t.same([second.sendAck, third.sendAck], [first.sendAck, first.sendAck], 'three identical acknowledgements')

  const marker = await sendText(a1, { user: bob }, 'marker')
  t.equal(Number(marker.sendAck!.seq), 2, 'the next message is seq 2: the repeats took no seq')
  await b1.next(d => d.message?.content?.text === 'marker', 'the marker')
  t.same(textsOf(b1), ['once', 'marker'], 'bob got the message once')
  const rows = await tb.broker.db.query<{ n: number }>('SELECT count(*)::int AS n FROM messages')
  t.equal(rows[0].n, 2, 'one row for the repeated message')

  // Repeats inside one batch: sent back to back, answered from the same commit.
  const again = newClientMsgId()
  const burst = await Promise.all([1, 2, 3].map(() => sendText(a1, { user: bob }, 'burst', again)))
  t.same(new Set(burst.map(r => Number(r.sendAck?.seq))).size, 1, 'three sends in flight together get one seq')
})
