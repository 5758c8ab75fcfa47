// Issue 7 §3: search by the start of a login or display name, bounded, rate-limited per device,
// leaving out users hidden from search (but not from their contacts) and users who block the searcher.
import t from 'tap'
import { createSearchLimiter } from '../../broker/chat/search.ts'
import { ask, closeAtEnd, eachMode, startTestBroker } from '../harness.ts'
import { INVALID_ARGUMENT, RATE_LIMITED, addUsers, connectAll, contact, storedState } from './support.ts'

const logins = (reply: Awaited<ReturnType<typeof ask>>) => reply.search!.users!.map(u => u.login).sort()

eachMode(t, 'search by login or display name prefix', async (t, mode) => {
  const tb = await startTestBroker(t, mode, { searchLimit: 4 })
  const [zed, , , , , carol] = await addUsers(tb, ['zed', 'alice', 'alfred', 'al_x', 'alicia', 'carol', 'nina'])
  const users = await connectAll(tb, [['zed', 'z1'], ['alice', 'a1'], ['alicia', 'i1'], ['carol', 'c1'], ['nina', 'n1']])
  const [z1, a1, i1, c1, n1] = users
  closeAtEnd(t, ...users)
  await ask(a1, { profileUpdate: { displayName: 'Alice Liddell' } })
  await ask(c1, { profileUpdate: { displayName: 'Alba Carol' } })
  await ask(n1, { profileUpdate: { displayName: 'Nina Simone' } })

  t.same(logins(await ask(z1, { userSearch: { prefix: 'al' } })), ['al_x', 'alfred', 'alice', 'alicia'], '"al": logins that start with it, at most SEARCH_LIMIT (4)')
  t.same(logins(await ask(z1, { userSearch: { prefix: 'alb' } })), ['carol'], '"alb": a display name that starts with it')
  t.same(logins(await ask(z1, { userSearch: { prefix: ' ALIC ' } })), ['alice', 'alicia'], 'case and surrounding spaces do not matter')
  t.same(logins(await ask(z1, { userSearch: { prefix: 'al_' } })), ['al_x'], '"_" is a character, not a wildcard')
  t.same(logins(await ask(z1, { userSearch: { prefix: 'simone' } })), [], 'a name matches from its start only')
  t.same(logins(await ask(z1, { userSearch: { prefix: 'z' } })), [], 'the searcher is not found by himself')
  const one = await ask(z1, { userSearch: { prefix: 'ali', limit: 1 } })
  t.same(one.search!.users!.map(u => [u.login, u.displayName]), [['alice', 'Alice Liddell']], 'limit 1: the exact login first, with the display name')
  t.equal((await ask(z1, { userSearch: { prefix: 'al', limit: 50 } })).search!.users!.length, 4, 'a larger limit is bounded by SEARCH_LIMIT')

  await ask(i1, { privacy: { hiddenFromSearch: true } })
  await ask(c1, { privacy: { hiddenFromSearch: true } })
  await contact(z1, carol, { request: {} })
  await contact(c1, zed, { accept: true })
  t.same(logins(await ask(z1, { userSearch: { prefix: 'ali' } })), ['alice'], 'a user hidden from search is not found')
  t.same(logins(await ask(z1, { userSearch: { prefix: 'carol' } })), ['carol'], '...unless a contact of the searcher')
  t.same(logins(await ask(a1, { userSearch: { prefix: 'carol' } })), [], '(whom others do not find)')
  await contact(n1, zed, { block: true })
  t.same(logins(await ask(z1, { userSearch: { prefix: 'nina' } })), [], 'a user who blocks the searcher is not found')
  t.same(logins(await ask(a1, { userSearch: { prefix: 'nina' } })), ['nina'], '(others find her)')
})

eachMode(t, 'search is rate-limited per device; bad prefixes are refused', async (t, mode) => {
  const tb = await startTestBroker(t, mode, { searchRate: 3 })
  await addUsers(tb, ['zed', 'alice'])
  const [z1, z2] = await connectAll(tb, [['zed', 'z1'], ['zed', 'z2']])
  closeAtEnd(t, z1, z2)
  const before = await storedState(tb)
  t.equal((await ask(z1, { userSearch: { prefix: '' } })).error?.code, INVALID_ARGUMENT, 'an empty prefix: INVALID_ARGUMENT')
  t.equal((await ask(z1, { userSearch: { prefix: '   ' } })).error?.code, INVALID_ARGUMENT, 'blanks only: INVALID_ARGUMENT')
  t.equal((await ask(z1, { userSearch: { prefix: 'x'.repeat(33) } })).error?.code, INVALID_ARGUMENT, '33 characters: INVALID_ARGUMENT')
  // SEARCH_RATE=3 refills one search every 20 s: no test run spaces these out that much.
  for (let i = 1; i <= 3; i++) t.ok((await ask(z1, { userSearch: { prefix: 'ali' } })).search, `search ${i} of 3 passes`)
  t.equal((await ask(z1, { userSearch: { prefix: 'ali' } })).error?.code, RATE_LIMITED, 'the fourth: RATE_LIMITED')
  t.ok((await ask(z2, { userSearch: { prefix: 'ali' } })).search, 'another device of the same user has its own allowance')
  t.same(await storedState(tb), before, 'searching writes nothing')
})

t.test('the search limiter: a burst of SEARCH_RATE, then a steady refill', async t => {
  const limiter = createSearchLimiter(6) // one every 10 s
  const taken = (now: number) => limiter.take(1, now)
  t.same([taken(0), taken(0), taken(0), taken(0), taken(0), taken(0), taken(0)], [true, true, true, true, true, true, false], 'six at once, not seven')
  t.same([taken(9_999), taken(10_000), taken(10_001)], [false, true, false], 'one more after 10 s')
  t.same([taken(70_000), taken(70_000), taken(70_000), taken(70_000), taken(70_000), taken(70_000), taken(70_000)],
    [true, true, true, true, true, true, false], 'a long pause refills to six, not more')
  t.ok(limiter.take(2, 0), 'another device has its own bucket')
  const small = createSearchLimiter(6, 2)
  small.take(1, 0); small.take(2, 0); small.take(3, 0)
  t.equal(small.size, 2, 'it remembers a bounded number of devices')
})
