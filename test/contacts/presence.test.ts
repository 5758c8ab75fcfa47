// Issue 7 §5: presence p/{user} is readable by contacts, 1:1 partners and group peers, never
// across a block (mayReadPresence, the ACL's predicate once server.ts passes it); a block or an
// ended relationship takes a reader's existing subscriptions away, in the session store too.
import t from 'tap'
import type { MqttClient } from 'mqtt'
import { mayReadPresence } from '../../broker/storage/contacts.ts'
import { ask, closeAtEnd, connectAs, eachMode, sendText, startTestBroker, type Device } from '../harness.ts'
import { addUsers, connectAll, contact } from './support.ts'

function subscribe (client: MqttClient, topic: string): Promise<'granted' | 'refused'> {
  return new Promise(resolve => client.subscribe(topic, { qos: 0 }, (err, granted) =>
    resolve(err || granted?.[0]?.qos === 128 ? 'refused' : 'granted')))
}

const states = (device: Device, user: number) => device.presence
  .filter(p => p.topic === `p/${user.toString(36)}`).map(p => p.presence.online ? 'online' : 'offline')

eachMode(t, 'mayReadPresence: contacts, partners and peers; never across a block', async (t, mode) => {
  const tb = await startTestBroker(t, mode)
  const [alice, bob, carol, dave, erin, frank, gina] = await addUsers(tb, ['alice', 'bob', 'carol', 'dave', 'erin', 'frank', 'gina'])
  const devices = await connectAll(tb, [['alice', 'a1'], ['bob', 'b1'], ['carol', 'c1'], ['dave', 'd1'], ['frank', 'f1'], ['gina', 'g1']])
  const [a1, b1, c1, d1, f1, g1] = devices
  closeAtEnd(t, ...devices)
  const db = tb.broker.db
  const may = (reader: number, user: number) => mayReadPresence(db, reader, user)

  await contact(a1, bob, { request: {} })
  t.same([await may(bob, alice), await may(alice, bob)], [false, false], 'a pending request is not enough')
  await contact(b1, alice, { accept: true }) // bob: contact, no conversation
  await sendText(c1, { user: alice }, 'hi') // carol: 1:1 partner
  const group = Number((await ask(d1, { groupCreate: { name: 'g', members: [alice] } })).group!.group) // dave: group peer
  await contact(a1, frank, { request: {} }) // frank: contact whom alice blocks
  await contact(f1, alice, { accept: true })
  await contact(a1, frank, { block: true })
  await sendText(g1, { user: alice }, 'hi') // gina: 1:1 partner who blocks alice
  await contact(g1, alice, { block: true })

  t.same(await Promise.all([bob, carol, dave, erin, frank, gina].map(reader => may(reader, alice))),
    [true, true, true, false, false, false], 'of alice: contact, partner, peer yes; stranger, blocked, blocker no')
  t.same(await Promise.all([bob, carol, dave, erin, frank, gina].map(user => may(alice, user))),
    [true, true, true, false, false, false], 'and the other way round: the same')
  t.ok(await may(alice, alice), 'oneself, always')

  await contact(a1, bob, { remove: true })
  t.notOk(await may(bob, alice), 'contacts removed, no conversation: no more')
  await ask(d1, { groupUpdate: { group, leave: true } })
  t.notOk(await may(dave, alice), 'a peer who left the group: no more')
  await contact(a1, frank, { unblock: true })
  t.ok(await may(frank, alice), 'unblocked: back')
})

eachMode(t, 'a block takes presence away from a reader already subscribed', async (t, mode) => {
  const tb = await startTestBroker(t, mode)
  const [alice, bob, carol, dave] = await addUsers(tb, ['alice', 'bob', 'carol', 'dave'])
  const [a1, b1, c1, d1] = await connectAll(tb, [['alice', 'a1'], ['bob', 'b1'], ['carol', 'c1'], ['dave', 'd1']])
  closeAtEnd(t, b1, d1)
  await sendText(b1, { user: alice }, 'hi alice') // partners: bob may read alice's presence today
  await sendText(b1, { user: carol }, 'hi carol') // and carol's
  await sendText(d1, { user: alice }, 'hi') // dave watches alice, to know when her change is out
  t.equal(await subscribe(b1.client, `p/${alice.toString(36)}`), 'granted', "bob subscribes to alice's presence")
  t.equal(await subscribe(b1.client, `p/${carol.toString(36)}`), 'granted', "and to carol's")
  t.equal(await subscribe(d1.client, `p/${alice.toString(36)}`), 'granted', "dave to alice's")
  await b1.until(() => states(b1, alice).length > 0 && states(b1, carol).length > 0, 'the retained states on b1')

  await contact(a1, bob, { block: true })
  const persistence = (tb.broker.aedes as unknown as { persistence: { subscriptionsByClient (c: { id: string }): Promise<Array<{ topic: string }>> } }).persistence
  const stored = (await persistence.subscriptionsByClient({ id: 'b1' })).map(s => s.topic).sort()
  t.same(stored, [`d/b1`, `p/${carol.toString(36)}`, `u/${bob.toString(36)}`], "bob's session store no longer holds alice's presence")

  await a1.end() // alice goes offline...
  await d1.until(() => states(d1, alice).includes('offline'), 'alice offline on d1')
  await c1.end() // ...and then carol: her change is the marker
  await b1.until(() => states(b1, carol).includes('offline'), 'carol offline on b1')
  t.same(states(b1, alice), ['online'], "bob saw carol go offline, but not alice, who went before")
  t.same(states(b1, carol), ['online', 'offline'], '(carol, whom he may read, he saw)')

  // The same device back on a new connection: its restored session does not bring alice back.
  await b1.end()
  const again = await connectAs(tb, 'bob', 'b1')
  closeAtEnd(t, again)
  const a2 = await connectAs(tb, 'alice', 'a2')
  closeAtEnd(t, a2)
  await d1.until(() => states(d1, alice).at(-1) === 'online', 'alice online again on d1')
  const c2 = await connectAs(tb, 'carol', 'c2')
  closeAtEnd(t, c2)
  await again.until(() => states(again, carol).includes('online'), 'carol online on the reconnected b1')
  t.same(states(again, alice), [], "after reconnecting, bob's device gets nothing of alice")
})

// Needs the presence predicate in server.ts (see the issue 7 report): until then the ACL still
// asks sharesConversation, which grants a blocked 1:1 partner and refuses a contact.
t.test('the ACL asks mayReadPresence: a stranger vs a contact', async t => {
  const tb = await startTestBroker(t, 'embedded')
  const [alice, bob, , dave] = await addUsers(tb, ['alice', 'bob', 'carol', 'dave'])
  const [a1, b1, c1, d1] = await connectAll(tb, [['alice', 'a1'], ['bob', 'b1'], ['carol', 'c1'], ['dave', 'd1']])
  closeAtEnd(t, a1, b1, c1, d1)
  await contact(a1, bob, { request: {} })
  await contact(b1, alice, { accept: true })
  await sendText(d1, { user: alice }, 'hi')
  await contact(a1, dave, { block: true })
  const topic = `p/${alice.toString(36)}`
  t.equal(await subscribe(c1.client, topic), 'refused', 'a stranger may not subscribe')
  t.equal(await subscribe(b1.client, topic), 'granted', 'a contact with no conversation may')
  t.equal(await subscribe(d1.client, topic), 'refused', 'a 1:1 partner alice blocks may not')
})
