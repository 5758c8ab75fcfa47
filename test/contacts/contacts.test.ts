// Issue 7 §2: request (with a note), accept, decline, cancel, remove; the list and pending
// requests; both sides' devices see each change in order, numbered per user; a device that was
// away syncs since the last version it applied; bad requests get their code and write nothing.
import t from 'tap'
import { ask, closeAtEnd, eachMode, startTestBroker } from '../harness.ts'
import {
  ALREADY_EXISTS, CONTACT, INVALID_ARGUMENT, NONE, NO_CONTACT, REQUEST_RECEIVED, REQUEST_SENT, UNKNOWN_USER,
  addUsers, connectAll, contact, contactEvents, marker, storedState,
} from './support.ts'

eachMode(t, 'request, accept, remove, decline, cancel: every device of both users, in order', async (t, mode) => {
  const tb = await startTestBroker(t, mode)
  const [alice, bob] = await addUsers(tb, ['alice', 'bob'])
  const [a1, a2, b1, b2] = await connectAll(tb, [['alice', 'a1'], ['alice', 'a2'], ['bob', 'b1'], ['bob', 'b2']])
  closeAtEnd(t, a1, a2, b1, b2)

  const asked = await contact(a1, bob, { request: { note: ' hi, it is alice from the hike ' } })
  t.match(asked.contact, { user: bob, state: REQUEST_SENT, note: 'hi, it is alice from the hike', version: 1, login: 'bob' },
    'the asker gets its view: request sent, with the note, version 1')
  const seen = await b2.next(d => Boolean(d.contact), 'the request on b2')
  t.match(seen.contact, { user: alice, state: REQUEST_RECEIVED, note: 'hi, it is alice from the hike', version: 1, login: 'alice' },
    "the other's devices get the request with its note")
  t.same((await contact(a2, bob, { request: { note: 'again' } })).contact?.version, 1, 'a repeated request changes nothing (version 1 still)')

  t.match((await contact(b1, alice, { accept: true })).contact, { state: CONTACT, version: 2, note: '' }, 'bob accepts: contacts, version 2')
  t.match((await contact(b2, alice, { accept: true })).contact, { state: CONTACT, version: 2 }, 'a repeated accept is the same answer')
  t.match((await contact(a2, bob, { request: {} })).error, { code: ALREADY_EXISTS }, 'asking a contact: ALREADY_EXISTS')
  t.match((await contact(a1, bob, { remove: true })).contact, { state: NONE, version: 3 }, 'alice removes bob')
  t.match((await contact(b1, alice, { request: { note: 'come back' } })).contact, { state: REQUEST_SENT, version: 4 }, 'bob asks alice')
  t.match((await contact(a2, bob, { decline: true })).contact, { state: NONE, version: 5 }, 'alice declines')
  t.match((await contact(a1, bob, { request: {} })).contact, { state: REQUEST_SENT, version: 6 }, 'alice asks bob')
  t.match((await contact(b2, alice, { request: {} })).contact, { state: CONTACT, version: 7 },
    'bob asks back: that accepts (bob\'s 7th change: he had one more, her request)')
  t.match((await contact(b2, alice, { remove: true })).contact, { state: NONE, version: 8 }, 'bob removes alice')
  t.match((await contact(b1, alice, { request: {} })).contact, { state: REQUEST_SENT, version: 9 }, 'bob asks alice again')
  t.match((await contact(b1, alice, { cancel: true })).contact, { state: NONE, version: 10 }, 'and cancels')

  // Markers after the last change: every event published before them has arrived.
  for (const [device, user] of [[a1, alice], [a2, alice], [b1, bob], [b2, bob]] as const) {
    await marker(tb, user, device, `end-${device.client.options.clientId}`)
  }
  // version:state of each user's view; the device that made a change gets the reply instead.
  //   alice: 1:SENT(a1) 2:CONTACT 3:NONE(a1) 4:RECEIVED 5:NONE(a2) 6:SENT(a1) 7:CONTACT 8:NONE 9:RECEIVED 10:NONE
  //   bob:   1:RECEIVED 2:CONTACT(b1) 3:NONE 4:SENT(b1) 5:NONE 6:RECEIVED 7:CONTACT(b2) 8:NONE(b2) 9:SENT(b1) 10:NONE(b1)
  const events = (device: typeof a1) => contactEvents(device).map(e => `${e.version}:${e.state}`)
  t.same(events(a1), ['2:1', '4:3', '5:0', '7:1', '8:0', '9:3', '10:0'], 'a1 gets every change of alice\'s list but its own, in order')
  t.same(events(a2), ['1:2', '2:1', '3:0', '4:3', '6:2', '7:1', '8:0', '9:3', '10:0'], 'so does a2')
  t.same(events(b1), ['1:3', '3:0', '5:0', '6:3', '7:1', '8:0'], 'b1 every change of bob\'s list but its own')
  t.same(events(b2), ['1:3', '2:1', '3:0', '4:2', '5:0', '6:3', '9:2', '10:0'], 'so does b2')
  t.same(contactEvents(b2).filter(e => e.state === REQUEST_RECEIVED).map(e => e.note), ['hi, it is alice from the hike', ''],
    'a received request carries its note')
})

eachMode(t, 'the list, pending requests, and sync since a version', async (t, mode) => {
  const tb = await startTestBroker(t, mode)
  const [alice, bob, carol, , erin] = await addUsers(tb, ['alice', 'bob', 'carol', 'dave', 'erin'])
  const [a1, b1, c1, d1] = await connectAll(tb, [['alice', 'a1'], ['bob', 'b1'], ['carol', 'c1'], ['dave', 'd1']])
  closeAtEnd(t, a1, b1, c1, d1)
  await contact(b1, alice, { request: {} }) // alice 1: request received
  await contact(a1, bob, { accept: true }) // alice 2: bob is a contact
  await contact(a1, carol, { request: { note: 'hello carol' } }) // alice 3: request sent
  await contact(d1, alice, { request: { note: 'dave here' } }) // alice 4: request received
  await contact(a1, erin, { block: true }) // alice 5: erin blocked
  await contact(a1, carol, { cancel: true }) // alice 6: carol gone

  const list = await ask(a1, { contactSync: { since: 0 } })
  t.same(list.contacts!.contacts!.map(c => [c.login, c.state, c.note, c.blocked]), [
    ['bob', CONTACT, '', false], ['dave', REQUEST_RECEIVED, 'dave here', false], ['erin', NONE, '', true],
  ], 'from 0: contacts, pending requests and blocked users, in version order, without what ended')
  t.same([Number(list.contacts!.cursor), list.contacts!.more], [6, false], 'the cursor is alice\'s version')

  const paged = await ask(a1, { contactSync: { since: 0, limit: 2 } })
  t.same([paged.contacts!.contacts!.length, Number(paged.contacts!.cursor), paged.contacts!.more], [2, 4, true], 'a page of 2: more, cursor 4')
  const rest = await ask(a1, { contactSync: { since: Number(paged.contacts!.cursor), limit: 2 } })
  t.same(rest.contacts!.contacts!.map(c => [c.login, Number(c.version)]), [['erin', 5], ['carol', 6]],
    'since 4: what changed after it, the ended request to carol included (state NONE)')
  t.same([Number(rest.contacts!.cursor), rest.contacts!.more], [6, false], 'up to date')

  // A device that was away: it applied up to version 3 and asks for what it missed.
  const missed = await ask(a1, { contactSync: { since: 3 } })
  t.same(missed.contacts!.contacts!.map(c => [c.login, c.state, c.blocked, Number(c.version)]),
    [['dave', REQUEST_RECEIVED, false, 4], ['erin', NONE, true, 5], ['carol', NONE, false, 6]], 'since 3: versions 4, 5 and 6')
  t.same((await ask(a1, { contactSync: { since: 6 } })).contacts, { contacts: [], cursor: 6, more: false }, 'since 6: nothing')
  t.same((await ask(c1, { contactSync: { since: 0 } })).contacts!.contacts, [], "carol's list is empty after the cancel")
})

eachMode(t, 'bad contact requests get their code and write nothing', async (t, mode) => {
  const tb = await startTestBroker(t, mode)
  const [alice, bob] = await addUsers(tb, ['alice', 'bob'])
  const [a1] = await connectAll(tb, [['alice', 'a1']])
  closeAtEnd(t, a1)
  const before = await storedState(tb)
  const cases: Array<[string, Parameters<typeof contact>[2], number, number]> = [
    ['accept without a request', { accept: true }, bob, NO_CONTACT],
    ['decline without a request', { decline: true }, bob, NO_CONTACT],
    ['cancel without a request', { cancel: true }, bob, NO_CONTACT],
    ['remove a non-contact', { remove: true }, bob, NO_CONTACT],
    ['a note over 140 characters', { request: { note: 'x'.repeat(141) } }, bob, INVALID_ARGUMENT],
    ['oneself', { request: {} }, alice, INVALID_ARGUMENT],
    ['no change', {}, bob, INVALID_ARGUMENT],
    ['an unknown user', { request: {} }, 424242, UNKNOWN_USER],
    ['a user id past 2^53', { request: {} }, 2 ** 60, UNKNOWN_USER],
  ]
  for (const [what, change, user, code] of cases) {
    t.equal((await contact(a1, user, change)).error?.code, code, `${what}: ${code}`)
  }
  t.same(await storedState(tb), before, 'nothing was written')
  t.ok((await contact(a1, bob, { request: { note: 'x'.repeat(140) } })).contact, 'a note of 140 characters is fine')
  t.notMatch(tb.logs.join('\n'), / ERROR /, 'no refusal was an internal error')
})

eachMode(t, 'two users asking each other at once become contacts', async (t, mode) => {
  const tb = await startTestBroker(t, mode)
  const [alice, bob] = await addUsers(tb, ['alice', 'bob'])
  const [a1, b1] = await connectAll(tb, [['alice', 'a1'], ['bob', 'b1']])
  closeAtEnd(t, a1, b1)
  const [fromAlice, fromBob] = await Promise.all([contact(a1, bob, { request: {} }), contact(b1, alice, { request: {} })])
  t.same([fromAlice.contact?.state, fromBob.contact?.state].sort(), [CONTACT, REQUEST_SENT],
    'one request is taken first (a row lock per user), the other accepts it')
  const rows = await tb.broker.db.query<{ state: number, version: number }>('SELECT state, version FROM contacts ORDER BY owner_id')
  t.same(rows, [{ state: CONTACT, version: 2 }, { state: CONTACT, version: 2 }], 'both views: contact, version 2')
})
