// Access tokens: `t1.{user}.{expires}.{mac}`, user id and expiry (seconds) in base-36, mac the first
// 16 bytes of HMAC-SHA256 over the rest, base64url. About 40 bytes, so a CONNECT over 2G stays
// small. A token names a user, not a device: any device of that user may present it.
import { createHmac, timingSafeEqual } from 'node:crypto'

const PREFIX = 't1'
const MAC_BYTES = 16

function mac (secret: Uint8Array, body: string): Buffer {
  return createHmac('sha256', secret).update(body).digest().subarray(0, MAC_BYTES)
}

export function issueToken (secret: Uint8Array, user: number, expiresAtMs: number): string {
  const body = `${PREFIX}.${user.toString(36)}.${Math.floor(expiresAtMs / 1000).toString(36)}`
  return `${body}.${mac(secret, body).toString('base64url')}`
}

/** True when the text has the shape of a token (so it is not tried as a password). */
export function looksLikeToken (text: string): boolean {
  return text.startsWith(PREFIX + '.') && text.split('.').length === 4
}

export type TokenCheck =
  | { ok: true, user: number, expiresAtMs: number }
  | { ok: false, reason: 'malformed' | 'bad signature' | 'expired' }

export function verifyToken (secret: Uint8Array, token: string, nowMs = Date.now()): TokenCheck {
  const parts = token.split('.')
  if (parts.length !== 4 || parts[0] !== PREFIX) return { ok: false, reason: 'malformed' }
  const [, userText, expiresText, macText] = parts
  const user = parseInt(userText, 36)
  const expiresAtMs = parseInt(expiresText, 36) * 1000
  if (!(user > 0) || !(expiresAtMs > 0) || !/^[\w-]+$/.test(macText)) return { ok: false, reason: 'malformed' }
  const given = Buffer.from(macText, 'base64url')
  const expected = mac(secret, parts.slice(0, 3).join('.'))
  if (given.length !== expected.length || !timingSafeEqual(given, expected)) return { ok: false, reason: 'bad signature' }
  if (expiresAtMs <= nowMs) return { ok: false, reason: 'expired' }
  return { ok: true, user, expiresAtMs }
}
