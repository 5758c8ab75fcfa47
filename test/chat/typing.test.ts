// Issue 3 §10: typing goes at QoS 0 to the other members' devices, is not stored, and is limited to
// one event per device and conversation every TYPING_INTERVAL (a stop after a start always passes).
import t from 'tap'
import { typing, createTypingLimiter } from '../../broker/chat/typing.ts'
import { createChatContext } from '../../broker/chat/context.ts'
import { createMessageWriter } from '../../broker/chat/writer.ts'
import { closeAtEnd, connectAs, ask, eachMode, sendText, startTestBroker, wmq, type Device, type TestBroker } from '../harness.ts'

const { UNKNOWN_CONVERSATION, NOT_MEMBER, RATE_LIMITED } = wmq.ErrorCode

/** Typing with ref 0: no reply wanted (chat.proto), none comes unless it is refused. */
const type = (device: Device, conversation: number, active: boolean) => device.request({ ref: 0, typing: { conversation, active } })

const typingsOn = (device: Device) => device.received.filter(r => r.downlink.typing)
  .map(r => ({ user: Number(r.downlink.typing!.user), active: r.downlink.typing!.active }))

/** The QoS of every typing event the device's client received. */
function typingQos (device: Device): number[] {
  const seen: number[] = []
  device.client.on('message', (_topic, payload, packet) => { if (wmq.Downlink.decode(payload).typing) seen.push(packet.qos) })
  return seen
}

const storedState = (tb: TestBroker) => Promise.all(['messages', 'conversations', 'members', 'deletions']
  .map(table => tb.broker.db.query(`SELECT * FROM ${table} ORDER BY 1, 2`)))

eachMode(t, "typing reaches the other member's devices at QoS 0, is not stored, and excess is dropped", async (t, mode) => {
  // An interval no test run outlasts: whatever is dropped is dropped by the limit, not by timing.
  const tb = await startTestBroker(t, mode, { typingIntervalMs: 600_000 })
  const alice = await tb.addUser('alice')
  const bob = await tb.addUser('bob')
  const carol = await tb.addUser('carol')
  const [a1, a2, b1, b2, c1] = await Promise.all([['alice', 'a1'], ['alice', 'a2'], ['bob', 'b1'], ['bob', 'b2'], ['carol', 'c1']]
    .map(([login, id]) => connectAs(tb, login, id)))
  closeAtEnd(t, a1, a2, b1, b2, c1)
  const qos = typingQos(b1)
  const conversation = Number((await sendText(a1, { user: bob }, 'hi')).sendAck!.conversation)
  const withCarol = Number((await sendText(a1, { user: carol }, 'hi carol')).sendAck!.conversation)
  const before = await storedState(tb)

  await type(a1, conversation, true)
  t.same((await b1.next(d => Boolean(d.typing), 'typing on b1')).typing, { conversation, user: alice, active: true },
    'the partner gets TypingEvent{conversation, user, active}')
  await b2.next(d => Boolean(d.typing), 'typing on b2')
  t.pass("and so does the partner's other device")
  t.same(qos, [0], 'at QoS 0')

  await type(a1, conversation, true) // within the interval: dropped
  await type(a1, conversation, false) // a stop after a start: passes
  await type(a1, conversation, false) // a second stop: dropped
  await type(a1, withCarol, true) // another conversation: its own limit
  await b1.next(d => d.typing?.active === false, 'the stop on b1')
  await c1.next(d => Boolean(d.typing), 'typing on c1')
  t.same(await storedState(tb), before, 'nothing is stored: messages, conversations, members, deletions are as they were')

  // Markers: a message from a1 comes after everything a1 asked before it.
  await sendText(a1, { user: bob }, 'marker')
  await b1.next(d => d.message?.content?.text === 'marker', 'the marker on b1')
  await b2.next(d => d.message?.content?.text === 'marker', 'the marker on b2')
  await a2.next(d => d.message?.content?.text === 'marker', 'the marker on a2')
  const startStop = [{ user: alice, active: true }, { user: alice, active: false }]
  t.same(typingsOn(b1), startStop, 'b1 got the start and the stop; the repeated start and stop were dropped')
  t.same(typingsOn(b2), startStop, 'so did b2')
  t.same(typingsOn(a2), [], "the typist's own devices get nothing")

  // The limit is per device: a2 may type while a1's entry is fresh.
  await type(a2, conversation, true)
  await b1.next(d => typingsOn(b1).length === 3, 'the typing of a2 on b1')
  t.same(typingsOn(b1)[2], { user: alice, active: true }, 'another device of the same user has its own limit')
  await sendText(b1, { user: alice }, 'marker 2')
  await a1.next(d => d.message?.content?.text === 'marker 2', 'marker 2 on a1')
  t.same(typingsOn(a1), [], "a1 did not get a2's typing either")
  await sendText(a1, { user: carol }, 'marker 3')
  await c1.next(d => d.message?.content?.text === 'marker 3', 'marker 3 on c1')
  t.same(typingsOn(c1), [{ user: alice, active: true }], 'carol got only the typing in her own conversation')
  t.same(qos, [0, 0, 0], 'every typing event came at QoS 0')
})

eachMode(t, 'refused typing: an error reply, nothing delivered, nothing remembered', async (t, mode) => {
  const tb = await startTestBroker(t, mode, { typingIntervalMs: 600_000 })
  const alice = await tb.addUser('alice')
  const bob = await tb.addUser('bob')
  await tb.addUser('carol')
  const [a1, b1, c1] = await Promise.all([['alice', 'a1'], ['bob', 'b1'], ['carol', 'c1']].map(([login, id]) => connectAs(tb, login, id)))
  closeAtEnd(t, a1, b1, c1)
  const conversation = Number((await sendText(a1, { user: bob }, 'hi')).sendAck!.conversation)

  const code = async (device: Device, conversation: number) => (await ask(device, { typing: { conversation, active: true } })).error?.code
  t.equal(await code(a1, 999), UNKNOWN_CONVERSATION, 'a conversation that does not exist: UNKNOWN_CONVERSATION')
  t.equal(await code(a1, 0), UNKNOWN_CONVERSATION, 'conversation 0: UNKNOWN_CONVERSATION')
  t.equal(await code(c1, conversation), NOT_MEMBER, "someone else's conversation: NOT_MEMBER")
  t.equal(await code(c1, conversation), NOT_MEMBER, '  again NOT_MEMBER: a refused event does not count against the limit')

  // Marker: alice's typing reaches bob after anything carol's could have sent.
  await type(a1, conversation, true)
  await b1.next(d => Boolean(d.typing), 'typing on b1')
  t.same(typingsOn(b1), [{ user: alice, active: true }], "bob got alice's typing only")
  t.ok(c1.client.connected, 'the refused device keeps its connection')
})

eachMode(t, 'with an interval of 0 every typing event passes', async (t, mode) => {
  const tb = await startTestBroker(t, mode, { typingIntervalMs: 0 })
  await tb.addUser('alice')
  const bob = await tb.addUser('bob')
  const [a1, b1] = await Promise.all([['alice', 'a1'], ['bob', 'b1']].map(([login, id]) => connectAs(tb, login, id)))
  closeAtEnd(t, a1, b1)
  const conversation = Number((await sendText(a1, { user: bob }, 'hi')).sendAck!.conversation)
  for (let i = 0; i < 3; i++) await type(a1, conversation, true)
  await b1.next(() => typingsOn(b1).length === 3, 'three typing events on b1')
  t.equal(typingsOn(b1).length, 3, 'three starts, three events')
})

eachMode(t, 'a device that sets a ref gets the event as delivered, or RATE_LIMITED', async (t, mode) => {
  // requests.ts does not hand the ref to the typing handler yet: the handler is called directly,
  // with a chat service of its own on the test broker.
  const tb = await startTestBroker(t, mode, { typingIntervalMs: 600_000 })
  const alice = await tb.addUser('alice')
  const bob = await tb.addUser('bob')
  const [a1, b1] = await Promise.all([['alice', 'a1'], ['bob', 'b1']].map(([login, id]) => connectAs(tb, login, id)))
  closeAtEnd(t, a1, b1)
  const conversation = Number((await sendText(a1, { user: bob }, 'hi')).sendAck!.conversation)
  const { aedes, db, log } = tb.broker
  const ctx = createChatContext({ broker: aedes, db, log, writer: createMessageWriter(db, log, 1), limits: tb.config })
  const who = { user: alice, device: parseInt('a1', 36), login: 'alice' }

  t.same(await typing(ctx, who, { conversation, active: true }, 7), { typing: { conversation, user: alice, active: true } },
    'a delivered event is the reply')
  await b1.next(d => Boolean(d.typing), 'typing on b1')
  await t.rejects(typing(ctx, who, { conversation, active: true }, 8), { code: RATE_LIMITED }, 'an excess one is RATE_LIMITED')
  t.equal(await typing(ctx, who, { conversation, active: true }, 0), null, 'and with ref 0 silently dropped')
})

t.test('the rate-limit map stays bounded', async t => {
  const limiter = createTypingLimiter(1000, 2)
  for (const device of [1, 2, 3]) {
    t.ok(limiter.allows(device, 9, true, 0), `device ${device} may type`)
    limiter.record(device, 9, true, 0)
  }
  t.equal(limiter.size, 2, 'past its bound the oldest entry is forgotten')
  t.notOk(limiter.allows(3, 9, true, 999), 'a start within the interval is dropped')
  t.ok(limiter.allows(3, 9, false, 999), 'a stop after a start passes')
  limiter.record(3, 9, false, 999)
  t.notOk(limiter.allows(3, 9, false, 999), 'a second stop is dropped')
  t.notOk(limiter.allows(3, 9, true, 999), 'so is a start right after the stop')
  t.ok(limiter.allows(3, 9, true, 1999), 'once the interval has passed, it passes')
  t.equal(limiter.size, 0, 'and expired entries are gone')
})

eachMode(t, 'in a group typing reaches every other member; a member who left may not type', async (t, mode) => {
  const tb = await startTestBroker(t, mode, { typingIntervalMs: 600_000 })
  const alice = await tb.addUser('alice')
  const bob = await tb.addUser('bob')
  const carol = await tb.addUser('carol')
  const [a1, b1, c1] = await Promise.all([['alice', 'a1'], ['bob', 'b1'], ['carol', 'c1']].map(([login, id]) => connectAs(tb, login, id)))
  closeAtEnd(t, a1, b1, c1)
  const group = Number((await ask(a1, { groupCreate: { name: 'g', members: [bob, carol] } })).group!.group)

  await type(a1, group, true)
  for (const [name, device] of [['bob', b1], ['carol', c1]] as const) {
    await device.next(d => Boolean(d.typing), `typing on ${name}`)
    t.same(typingsOn(device), [{ user: alice, active: true }], `${name} sees alice typing`)
  }
  t.ok((await ask(c1, { groupUpdate: { group, leave: true } })).group, 'carol leaves')
  t.equal((await ask(c1, { typing: { conversation: group, active: true } })).error?.code, NOT_MEMBER, 'then her typing is NOT_MEMBER')
  // Marker: bob's typing reaches alice after anything carol's could have sent.
  await type(b1, group, true)
  await a1.next(d => Boolean(d.typing), 'typing on alice')
  t.same(typingsOn(a1), [{ user: bob, active: true }], "alice got bob's typing, not carol's")
})
