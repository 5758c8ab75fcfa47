// Issue 7 §5: who may start a 1:1 conversation (anyone / contacts only) and who may add a user to a
// group (anyone / contacts only), set by the Privacy request; refusals store nothing.
import t from 'tap'
import { ask, closeAtEnd, eachMode, sendText, startTestBroker, wmq } from '../harness.ts'
import {
  ANYONE, CONTACTS, FORBIDDEN, INVALID_ARGUMENT, addUsers, connectAll, contact, eventsOf, marker, storedState,
} from './support.ts'

eachMode(t, 'start_chat: contacts only', async (t, mode) => {
  const tb = await startTestBroker(t, mode)
  const [carol, bob, dave, erin] = await addUsers(tb, ['carol', 'bob', 'dave', 'erin'])
  const [c1, c2, b1, d1, e1] = await connectAll(tb, [['carol', 'c1'], ['carol', 'c2'], ['bob', 'b1'], ['dave', 'd1'], ['erin', 'e1']])
  closeAtEnd(t, c1, c2, b1, d1, e1)
  await contact(b1, carol, { request: {} })
  await contact(c1, bob, { accept: true })
  t.ok((await sendText(e1, { user: carol }, 'buy my stuff')).sendAck, 'under ANYONE (the default) a stranger may write')

  const set = await ask(c1, { privacy: { startChat: CONTACTS } })
  t.same(set.privacy, { hiddenFromSearch: false, startChat: CONTACTS, addToGroup: ANYONE }, 'carol takes 1:1 chats from contacts only; the reply has every setting')
  t.same((await c2.next(d => Boolean(d.privacy), 'the change on c2')).privacy, set.privacy, "carol's other device gets the change")

  const before = await storedState(tb)
  const stranger = await sendText(d1, { user: carol }, 'hi, we have not met')
  t.equal(stranger.error?.code, FORBIDDEN, 'a stranger starting a conversation: FORBIDDEN')
  t.same(await storedState(tb), before, '  nothing stored: no conversation, no member, no message')
  t.equal((await sendText(e1, { user: carol }, 'buy my stuff, again')).error?.code, FORBIDDEN,
    "the stranger whose earlier messages carol never answered: FORBIDDEN (they keep nothing open)")
  t.same(await storedState(tb), before, '  nothing stored')
  t.ok((await sendText(b1, { user: carol }, 'hi carol')).sendAck, 'a contact may write')

  t.ok((await sendText(c1, { user: dave }, 'hello dave')).sendAck, 'carol writes to dave herself')
  t.ok((await sendText(d1, { user: carol }, 'hello carol')).sendAck, 'now dave may answer: carol took part in their conversation')

  await contact(e1, carol, { request: { note: 'sorry about the spam' } })
  await contact(c2, erin, { accept: true })
  t.ok((await sendText(e1, { user: carol }, 'thanks')).sendAck, 'once contacts, erin may write')
  await contact(c1, erin, { remove: true })
  t.equal((await sendText(e1, { user: carol }, 'hello?')).error?.code, FORBIDDEN, 'removed from contacts, erin may not any more')

  await ask(c1, { privacy: { startChat: ANYONE } })
  t.ok((await sendText(e1, { user: carol }, 'hello again')).sendAck, 'back to ANYONE: everyone may write')
  t.ok((await sendText(c1, { user: carol }, 'a note to myself')).sendAck, 'a note to oneself is never refused')
})

eachMode(t, 'add_to_group: contacts only', async (t, mode) => {
  const tb = await startTestBroker(t, mode)
  const [carol, bob, dave, erin] = await addUsers(tb, ['carol', 'bob', 'dave', 'erin'])
  const [c1, b1, d1] = await connectAll(tb, [['carol', 'c1'], ['bob', 'b1'], ['dave', 'd1']])
  closeAtEnd(t, c1, b1, d1)
  await contact(b1, carol, { request: {} })
  await contact(c1, bob, { accept: true })
  t.match((await ask(c1, { privacy: { addToGroup: CONTACTS } })).privacy, { startChat: ANYONE, addToGroup: CONTACTS },
    'carol may be added to groups by contacts only (start_chat stays as it was)')

  const davesGroup = Number((await ask(d1, { groupCreate: { name: 'dave and erin', members: [erin] } })).group!.group)
  const before = await storedState(tb)
  const created = await ask(d1, { groupCreate: { name: 'with carol', members: [erin, carol] } })
  t.match(created.error, { code: FORBIDDEN, detail: `user ${carol} does not accept this from you` }, 'a stranger may not create a group with carol in it')
  const added = await ask(d1, { groupUpdate: { group: davesGroup, add: { users: [carol] } } })
  t.equal(added.error?.code, FORBIDDEN, 'nor add her to his group')
  t.same(await storedState(tb), before, 'nothing stored: no group, no member, no system message')

  await ask(d1, { privacy: { addToGroup: CONTACTS } }) // the refusal names everyone who refuses
  const both = await ask(b1, { groupCreate: { name: 'b', members: [carol, dave] } })
  t.match(both.error, { code: FORBIDDEN, detail: `user ${dave} does not accept this from you` }, 'bob (carol\'s contact, not dave\'s): only dave refuses')
  const created2 = await ask(b1, { groupCreate: { name: 'friends', members: [carol] } })
  t.equal(created2.group?.members, 2, "carol's contact may make a group with her")
  const group = Number(created2.group!.group)
  await ask(b1, { groupUpdate: { group, role: { user: carol, role: 1 } } })
  await ask(b1, { groupUpdate: { group, add: { users: [erin] } } })
  t.equal((await ask(c1, { groupUpdate: { group, add: { users: [dave] } } })).error?.code, FORBIDDEN,
    'carol, now an admin, may not add dave, who takes additions from contacts only')
})

eachMode(t, 'privacy requests: read, bad values write nothing', async (t, mode) => {
  const tb = await startTestBroker(t, mode)
  const [alice] = await addUsers(tb, ['alice'])
  const [a1, a2] = await connectAll(tb, [['alice', 'a1'], ['alice', 'a2']])
  closeAtEnd(t, a1, a2)
  t.same((await ask(a1, { privacy: {} })).privacy, { hiddenFromSearch: false, startChat: ANYONE, addToGroup: ANYONE }, 'an empty request reads the settings')
  const before = await storedState(tb)
  t.equal((await ask(a1, { privacy: { startChat: 7 as wmq.Audience } })).error?.code, INVALID_ARGUMENT, 'an audience that does not exist: INVALID_ARGUMENT')
  t.equal((await ask(a1, { privacy: { hiddenFromSearch: true, addToGroup: 2 as wmq.Audience } })).error?.code, INVALID_ARGUMENT,
    'one bad field refuses the whole request')
  t.same(await storedState(tb), before, 'nothing changed')
  await marker(tb, alice, a2, 'after')
  t.same(eventsOf(a2, 'privacy'), [], 'a read and refusals reach no other device')
})
