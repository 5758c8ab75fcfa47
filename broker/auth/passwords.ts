// Passwords are stored as scrypt hashes: `scrypt$N$r$p$salt$hash`, salt and hash base64.
import { randomBytes, scrypt, timingSafeEqual, type ScryptOptions } from 'node:crypto'

const COST: ScryptOptions = { N: 16384, r: 8, p: 1 }
const KEY_BYTES = 32

function derive (password: string, salt: Buffer, options: ScryptOptions): Promise<Buffer> {
  return new Promise((resolve, reject) =>
    scrypt(password, salt, KEY_BYTES, options, (err, key) => err ? reject(err) : resolve(key)))
}

export async function hashPassword (password: string): Promise<string> {
  const salt = randomBytes(16)
  const key = await derive(password, salt, COST)
  return ['scrypt', COST.N, COST.r, COST.p, salt.toString('base64'), key.toString('base64')].join('$')
}

export async function verifyPassword (password: string, stored: string): Promise<boolean> {
  const [scheme, N, r, p, salt, hash] = stored.split('$')
  if (scheme !== 'scrypt' || !hash) return false
  const expected = Buffer.from(hash, 'base64')
  const key = await derive(password, Buffer.from(salt, 'base64'), { N: Number(N), r: Number(r), p: Number(p) })
  return key.length === expected.length && timingSafeEqual(key, expected)
}

const COMMON = new Set(['password', 'passw0rd', '123456', '1234567', '12345678', '123456789', 'qwerty',
  'abc123', 'letmein', '111111', '000000', 'iloveyou', 'admin', 'welcome', 'secret', 'changeme'])

/** Why a password is refused, or null when it will do. */
export function weakPasswordReason (password: string, login: string): string | null {
  if (password.length < 6) return 'weak password: use at least 6 characters'
  if (password.length > 200) return 'password too long: use at most 200 characters'
  if (COMMON.has(password.toLowerCase())) return 'weak password: that one is on every list of common passwords'
  if (password.toLowerCase() === login.toLowerCase()) return 'weak password: it must differ from the login'
  if (/^(.)\1*$/.test(password)) return 'weak password: one character repeated'
  return null
}
