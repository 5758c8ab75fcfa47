// Issue 7 §4: a blocked user cannot write to the blocker, ask them to be a contact, add them to a
// group, see their profile or its changes, or find them; the block is silent: the blocked user's
// refusals read like a refusal by settings, and nothing of the block reaches their devices.
// Refusals store nothing.
import t from 'tap'
import { ask, closeAtEnd, eachMode, sendText, startTestBroker, textsOf } from '../harness.ts'
import {
  CONTACT, CONTACTS, FORBIDDEN, addUsers, connectAll, contact, contactEvents, eventsOf, marker, storedState,
} from './support.ts'

eachMode(t, 'a block is silent and refuses what the issue lists', async (t, mode) => {
  const tb = await startTestBroker(t, mode)
  const [alice, bob, carol, erin] = await addUsers(tb, ['alice', 'bob', 'carol', 'erin'])
  const [a1, a2, b1, c1, e1] = await connectAll(tb, [['alice', 'a1'], ['alice', 'a2'], ['bob', 'b1'], ['carol', 'c1'], ['erin', 'e1']])
  closeAtEnd(t, a1, a2, b1, c1, e1)

  // bob and carol are alice's contacts; bob and alice talk; carol takes chats from contacts only.
  for (const [device, user] of [[b1, bob], [c1, carol]] as const) {
    await contact(a1, user, { request: {} })
    await contact(device, alice, { accept: true })
  }
  t.ok((await sendText(b1, { user: alice }, 'before the block')).sendAck, 'bob writes to alice')
  await ask(c1, { privacy: { startChat: CONTACTS } })
  const group = Number((await ask(c1, { groupCreate: { name: 'hikers', members: [alice, bob] } })).group!.group)
  const bobsGroup = Number((await ask(b1, { groupCreate: { name: 'bob and carol', members: [carol] } })).group!.group)
  await marker(tb, bob, b1, 'set up')
  const bobsEventsBefore = b1.received.length

  const blocked = await contact(a1, bob, { block: true })
  t.match(blocked.contact, { user: bob, state: CONTACT, blocked: true }, 'alice blocks bob: her view says so')
  await a2.next(d => d.contact?.blocked === true, 'the block on a2')
  t.pass("alice's other device learns it")
  t.match((await contact(a2, bob, { block: true })).contact, { blocked: true, version: blocked.contact!.version }, 'blocking again changes nothing')

  // What bob may no longer do, each refused as settings refuse it, storing nothing.
  const before = await storedState(tb)
  const toAlice = await sendText(b1, { user: alice }, 'hello?')
  t.equal(toAlice.error?.code, FORBIDDEN, "bob's send to alice: FORBIDDEN")
  const byCarolsSetting = await sendText(e1, { user: carol }, 'hi carol')
  t.equal(byCarolsSetting.error?.code, FORBIDDEN, "erin's send to carol (contacts only): FORBIDDEN")
  t.equal(toAlice.error!.detail!.replace(String(alice), 'X'), byCarolsSetting.error!.detail!.replace(String(carol), 'X'),
    '  in the same words: a block reads like a setting')
  t.notMatch(toAlice.error!.detail!, /block/i, '  which do not mention a block')
  t.equal((await ask(b1, { groupCreate: { name: 'with alice', members: [alice] } })).error?.code, FORBIDDEN, 'bob may not put alice in a new group')
  const addRefused = await ask(b1, { groupUpdate: { group: bobsGroup, add: { users: [alice] } } })
  t.equal(addRefused.error?.code, FORBIDDEN, 'nor add her to the group he owns')
  t.same(await storedState(tb), before, 'the refused send, group create and group add stored nothing')

  // A stranger alice blocks cannot ask her to be a contact.
  await contact(a2, erin, { block: true })
  const beforeRequest = await storedState(tb)
  const request = await contact(e1, alice, { request: { note: 'hi' } })
  t.equal(request.error?.code, FORBIDDEN, "erin's contact request to alice, who blocks her: FORBIDDEN")
  t.notMatch(request.error!.detail!, /block/i, '  with no word of a block')
  t.same(await storedState(tb), beforeRequest, '  and nothing stored')

  // Profile changes, reads and search.
  await ask(a1, { profileUpdate: { displayName: 'Alice Liddell', status: 'down the rabbit hole' } })
  await c1.next(d => d.profile?.displayName === 'Alice Liddell', "alice's profile change on carol's device")
  t.pass("carol, alice's contact, gets alice's profile change")
  t.same((await ask(b1, { profileGet: { users: [alice] } })).profiles?.profiles, [], "bob's read of alice's profile: left out")
  t.same((await ask(c1, { profileGet: { users: [alice] } })).profiles?.profiles?.map(p => p.displayName), ['Alice Liddell'], 'carol reads it')
  t.same((await ask(b1, { userSearch: { prefix: 'ali' } })).search?.users, [], 'bob does not find alice')
  t.same((await ask(c1, { userSearch: { prefix: 'ali' } })).search?.users?.map(u => u.login), ['alice'], 'carol does')

  // Group conversations are not affected: both may still write in the group they share.
  t.ok((await sendText(b1, { group }, 'in the group')).sendAck, 'bob writes in the group alice is in')
  await a1.next(d => d.message?.content?.text === 'in the group', 'the group message on a1')

  // Alice may not write to bob while she blocks him; she is told why.
  const aliceToBob = await sendText(a1, { user: bob }, 'psst')
  t.match(aliceToBob.error, { code: FORBIDDEN, detail: /you block user/ }, 'alice may not write to bob while she blocks him, and is told why')

  // Nothing of it reached bob: no contact event, no profile event, no message from alice.
  await marker(tb, bob, b1, 'after the block')
  const sinceBlock = b1.received.slice(bobsEventsBefore).filter(r => r.topic.startsWith('u/') && (r.downlink.contact || r.downlink.profile))
  t.same(sinceBlock, [], 'bob got no contact or profile event since the block')
  t.same(textsOf(b1).filter(text => text === 'psst'), [], 'and no message from alice')
  t.ok(contactEvents(b1).length > 0 && eventsOf(c1, 'profile').length > 0, '(bob did get contact events before it; carol a profile event)')
  const bobsList = await ask(b1, { contactSync: { since: 0 } })
  t.match(bobsList.contacts!.contacts, [{ user: alice, state: CONTACT, blocked: false }], "bob's list shows alice as a contact, as before")

  // Unblocking restores what the block refused.
  t.match((await contact(a1, bob, { unblock: true })).contact, { blocked: false }, 'alice unblocks bob')
  t.ok((await sendText(b1, { user: alice }, 'hello again')).sendAck, 'bob may write to alice again')
  t.same((await ask(b1, { profileGet: { users: [alice] } })).profiles?.profiles?.map(p => p.displayName), ['Alice Liddell'],
    'and read her profile')
})
