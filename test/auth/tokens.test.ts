import t from 'tap'
import { issueToken, looksLikeToken, verifyToken } from '../../broker/auth/tokens.ts'
import { createThrottle } from '../../broker/auth/throttle.ts'
import { memoryState } from '../../broker/shared-state.ts'
import { hashPassword, verifyPassword, weakPasswordReason } from '../../broker/auth/passwords.ts'

const secret = Buffer.from('0123456789abcdef0123456789abcdef')

t.test('tokens', async t => {
  const now = 1_800_000_000_000
  const token = issueToken(secret, 42, now + 60_000)
  t.ok(looksLikeToken(token), 'a token looks like one')
  t.ok(token.length < 48, `a token is short for 2G CONNECTs (${token.length} bytes)`)
  t.same(verifyToken(secret, token, now), { ok: true, user: 42, expiresAtMs: now + 60_000 })
  t.same(verifyToken(secret, token, now + 60_000), { ok: false, reason: 'expired' })
  const [p, user, expires, mac] = token.split('.')
  t.same(verifyToken(secret, [p, '43', expires, mac].join('.'), now), { ok: false, reason: 'bad signature' }, 'another user id')
  t.same(verifyToken(secret, [p, user, 'zzzzzz', mac].join('.'), now), { ok: false, reason: 'bad signature' }, 'a later expiry')
  t.same(verifyToken(Buffer.from('other'), token, now), { ok: false, reason: 'bad signature' }, 'another key')
  t.same(verifyToken(secret, 't1.1.2', now), { ok: false, reason: 'malformed' })
  t.same(verifyToken(secret, 't1.1.2.!!', now), { ok: false, reason: 'malformed' })
  t.notOk(looksLikeToken('S3cret'), 'a password is not taken for a token')
})

t.test('passwords', async t => {
  const hash = await hashPassword('S3cret')
  t.match(hash, /^scrypt\$16384\$8\$1\$/)
  t.ok(await verifyPassword('S3cret', hash))
  t.notOk(await verifyPassword('s3cret', hash))
  t.notOk(await verifyPassword('S3cret', 'plain'), 'a hash of an unknown scheme verifies nothing')
  t.equal(weakPasswordReason('S3cret', 'alice'), null, 'the README example is accepted')
  t.match(weakPasswordReason('abc', 'alice'), /at least 6/)
  t.match(weakPasswordReason('password', 'alice'), /common/)
  t.match(weakPasswordReason('alice1', 'alice1'), /differ from the login/)
  t.match(weakPasswordReason('aaaaaaaa', 'bob'), /repeated/)
})

t.test('throttle', async t => {
  let clock = 0
  const throttle = createThrottle(memoryState(() => clock), 3, 10_000)
  const alice = { login: 'alice', address: '10.0.0.1' }
  const bobSameNat = { login: 'bob', address: '10.0.0.1' }
  for (let i = 0; i < 3; i++) await throttle.fail(alice)
  t.equal(await throttle.delayFor(alice), 1000, 'after the free failures: 1 s')
  await throttle.fail(alice)
  t.equal(await throttle.delayFor(alice), 2000, 'then doubling')
  t.equal(await throttle.delayFor(bobSameNat), 0, "alice's failures do not slow bob behind the same NAT address")
  for (let i = 0; i < 28; i++) await throttle.fail(alice) // 32 failures: the address is 2 past its 30
  t.equal(await throttle.delayFor(alice), 10_000, 'up to the maximum')
  t.equal(await throttle.delayFor(bobSameNat), 4000, 'past ten times the free failures the address is slowed for every login')
  await throttle.succeed(alice)
  t.equal(await throttle.delayFor({ login: 'alice', address: '10.9.9.9' }), 0, 'a success clears the login')
  clock += 16 * 60_000
  t.equal(await throttle.delayFor(bobSameNat), 0, 'forgotten after a quiet 15 minutes')
})
