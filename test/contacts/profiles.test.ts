// Issue 7 §1: display name, avatar reference and status; readable by oneself, contacts, 1:1
// partners, group peers and a user with a pending request to the reader, by no one else; a change
// reaches the user's other devices and the contacts' devices as an event, and nobody else's.
import t from 'tap'
import { ask, closeAtEnd, eachMode, sendText, startTestBroker } from '../harness.ts'
import { INVALID_ARGUMENT, addUsers, connectAll, contact, eventsOf, marker, storedState } from './support.ts'

eachMode(t, 'profiles: change, events, who may read', async (t, mode) => {
  const tb = await startTestBroker(t, mode)
  const [alice, bob, carol, dave, erin, frank] = await addUsers(tb, ['alice', 'bob', 'carol', 'dave', 'erin', 'frank'])
  const [a1, a2, b1, c1, d1, e1, f1] = await connectAll(tb,
    [['alice', 'a1'], ['alice', 'a2'], ['bob', 'b1'], ['carol', 'c1'], ['dave', 'd1'], ['erin', 'e1'], ['frank', 'f1']])
  closeAtEnd(t, a1, a2, b1, c1, d1, e1, f1)
  // bob: contact; carol: group peer; dave: 1:1 partner; erin: asked alice to be a contact; frank: stranger
  await contact(a1, bob, { request: {} })
  await contact(b1, alice, { accept: true })
  await ask(c1, { groupCreate: { name: 'book club', members: [alice] } })
  await sendText(d1, { user: alice }, 'hi alice')
  await contact(e1, alice, { request: { note: 'remember me?' } })

  const updated = await ask(a1, { profileUpdate: { displayName: '  Alice Liddell ', avatar: 'https://img.example/a.png', status: 'reading' } })
  t.match(updated.profile, { user: alice, login: 'alice', displayName: 'Alice Liddell', avatar: 'https://img.example/a.png', status: 'reading' },
    'the reply is the new profile, trimmed')
  t.ok(Number(updated.profile!.time) > 0, '  with the time of the change')
  t.same((await b1.next(d => Boolean(d.profile), 'the change on b1')).profile, updated.profile, 'bob, a contact, gets the change')
  t.same((await a2.next(d => Boolean(d.profile), 'the change on a2')).profile, updated.profile, "and alice's other device")

  const partial = await ask(a2, { profileUpdate: { status: '' } })
  t.match(partial.profile, { displayName: 'Alice Liddell', avatar: 'https://img.example/a.png', status: '' }, 'a field left out stays; an empty one clears')
  await b1.next(d => d.profile?.status === '', 'the second change on b1')
  t.same((await ask(a1, { profileUpdate: {} })).profile, partial.profile, 'an update with no field reads the profile')

  for (const [who, device] of [[carol, c1], [dave, d1], [erin, e1], [frank, f1]] as const) await marker(tb, who, device, 'after the changes')
  t.same([c1, d1, e1, f1].map(device => eventsOf(device, 'profile').length), [0, 0, 0, 0],
    'a group peer, a 1:1 partner, an asker and a stranger get no profile event (they read when they need it)')

  const read = async (device: typeof a1) => (await ask(device, { profileGet: { users: [alice] } })).profiles!.profiles!.map(p => p.displayName)
  t.same(await read(a1), ['Alice Liddell'], 'alice reads her own')
  t.same(await read(b1), ['Alice Liddell'], 'a contact reads it')
  t.same(await read(c1), ['Alice Liddell'], 'a group peer reads it')
  t.same(await read(d1), ['Alice Liddell'], 'a 1:1 partner reads it')
  t.same(await read(f1), [], 'a stranger gets nothing')
  t.same(await read(e1), [], 'erin, who asked alice, does not read hers...')
  t.same((await ask(a1, { profileGet: { users: [erin] } })).profiles!.profiles!.map(p => p.login), ['erin'], '...but alice reads erin\'s, to see who asks')
  const many = await ask(b1, { profileGet: { users: [alice, bob, frank, 424242, 2 ** 60] } })
  t.same(many.profiles!.profiles!.map(p => p.login), ['alice', 'bob'], 'several at once: the readable ones; a stranger, an unknown id and an impossible one left out alike')
  t.equal((await ask(b1, { profileGet: { users: Array.from({ length: 101 }, (_, i) => i + 1) } })).error?.code, INVALID_ARGUMENT,
    'more than 100 at once: INVALID_ARGUMENT')

  await ask(c1, { groupUpdate: { group: Number((await ask(c1, { groupList: {} })).groups!.groups![0].group), leave: true } })
  t.same(await read(c1), [], 'a former group peer reads it no more')
})

eachMode(t, 'bad profile updates change nothing', async (t, mode) => {
  const tb = await startTestBroker(t, mode)
  const [alice] = await addUsers(tb, ['alice'])
  const [a1, a2] = await connectAll(tb, [['alice', 'a1'], ['alice', 'a2']])
  closeAtEnd(t, a1, a2)
  const before = await storedState(tb)
  for (const [what, update] of [
    ['a display name of 65 characters', { displayName: 'x'.repeat(65) }],
    ['a display name on two lines', { displayName: 'Alice\nLiddell' }],
    ['an avatar reference over 512 bytes', { avatar: 'é'.repeat(257) }],
    ['a status of 141 characters', { status: 's'.repeat(141) }],
    ['a good name with a bad status', { displayName: 'Alice', status: 's'.repeat(141) }],
  ] as const) {
    t.equal((await ask(a1, { profileUpdate: update })).error?.code, INVALID_ARGUMENT, `${what}: INVALID_ARGUMENT`)
  }
  t.same(await storedState(tb), before, 'nothing changed')
  await marker(tb, alice, a2, 'after')
  t.same(eventsOf(a2, 'profile'), [], 'and no event went out')
  t.ok((await ask(a1, { profileUpdate: { displayName: '😀'.repeat(64) } })).profile, '64 characters are fine, counted as characters')
})
