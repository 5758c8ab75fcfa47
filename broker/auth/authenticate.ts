// The CONNECT hooks (issue 2 §5): username = login, password = an access token or the user's
// password, client id = the device id, bound to its user at first login (DESIGN 8).
// Refusals: CONNACK 4 for wrong credentials (the same for an unknown login, so logins cannot be
// probed), 5 for a device bound to another user, 2 for a client id that is not a device id.
import type { Aedes, AuthenticateError, Client } from 'aedes'
import type { Logger } from '../log.ts'
import type { Db } from '../storage/db.ts'
import { bindDevice, findUserByLogin } from '../storage/users.ts'
import { decodeId } from '../topics.ts'
import { verifyPassword } from './passwords.ts'
import type { Throttle } from './throttle.ts'
import { looksLikeToken, verifyToken } from './tokens.ts'

export interface Identity { user: number, device: number, login: string }

const identities = new WeakMap<Client, Identity>()

/** Who an authenticated client is; null before (or without) a successful CONNECT. */
export function identityOf (client: Client | null): Identity | null {
  return client ? identities.get(client) ?? null : null
}

// aedes' return codes ([MQTT-3.2.2.3] Table 3.1)
const IDENTIFIER_REJECTED = 2
const SERVER_UNAVAILABLE = 3
const BAD_USERNAME_OR_PASSWORD = 4
const NOT_AUTHORIZED = 5

function refusal (returnCode: number, message: string): AuthenticateError {
  return Object.assign(new Error(message), { returnCode }) as AuthenticateError
}

export function addressOf (client: Client): string {
  const socket = client.conn as { remoteAddress?: string }
  return client.req?.socket.remoteAddress ?? socket.remoteAddress ?? 'unknown'
}

const sleep = (ms: number) => new Promise(resolve => setTimeout(resolve, ms))

interface Deps {
  db: Db
  tokenSecret: Uint8Array
  throttle: Throttle
  log: Logger
}

export type Verdict =
  | { ok: true, identity: Identity }
  | { ok: false, returnCode: number, reason: string }

/** Checks one CONNECT's credentials. Never logs or returns the password or token. */
export async function checkConnect (deps: Deps, clientId: string, login: string | undefined,
  password: Buffer | undefined): Promise<Verdict> {
  const device = decodeId(clientId)
  if (device === null) {
    return { ok: false, returnCode: IDENTIFIER_REJECTED, reason: 'client id is not a base-36 device id' }
  }
  if (!login || !password) return { ok: false, returnCode: BAD_USERNAME_OR_PASSWORD, reason: 'no username or password' }
  const user = await findUserByLogin(deps.db, login)
  if (!user) return { ok: false, returnCode: BAD_USERNAME_OR_PASSWORD, reason: 'unknown login' }
  const secret = password.toString('utf8')
  if (looksLikeToken(secret)) {
    const token = verifyToken(deps.tokenSecret, secret)
    if (!token.ok) return { ok: false, returnCode: BAD_USERNAME_OR_PASSWORD, reason: `token ${token.reason}` }
    if (token.user !== user.id) return { ok: false, returnCode: BAD_USERNAME_OR_PASSWORD, reason: 'token of another user' }
  } else if (!user.passwordHash || !await verifyPassword(secret, user.passwordHash)) {
    return { ok: false, returnCode: BAD_USERNAME_OR_PASSWORD, reason: 'wrong password' }
  }
  const owner = await bindDevice(deps.db, device, user.id)
  if (owner !== user.id) return { ok: false, returnCode: NOT_AUTHORIZED, reason: 'device is bound to another user' }
  return { ok: true, identity: { user: user.id, device, login: user.login } }
}

/** aedes' `authenticate` hook, with the failed-login slow-down around checkConnect. */
export function authenticateHook (deps: Deps): Aedes['authenticate'] {
  return (client, username, password, done) => {
    const address = addressOf(client)
    const attempt = { login: username ?? '', address }
    const fields = { login: username, device: client.id, address }
    const check = async () => {
      const delay = await deps.throttle.delayFor(attempt)
      if (delay > 0) {
        deps.log.warn('login slowed down after repeated failures', { ...fields, delayMs: delay })
        await sleep(delay)
      }
      return checkConnect(deps, client.id, username, password)
    }
    check().then(async verdict => {
      if (verdict.ok) {
        await deps.throttle.succeed(attempt)
        identities.set(client, verdict.identity)
        deps.log.info('device connected', { ...fields, user: verdict.identity.user, clean: client.clean })
        done(null, true)
      } else {
        await deps.throttle.fail(attempt)
        deps.log.warn('connect refused', { ...fields, returnCode: verdict.returnCode, reason: verdict.reason })
        done(refusal(verdict.returnCode, verdict.reason), false)
      }
    }, (err: Error) => {
      deps.log.error('connect failed: storage error', { ...fields, error: err.message })
      done(refusal(SERVER_UNAVAILABLE, 'server unavailable'), false)
    })
  }
}

/**
 * aedes' `preConnect` hook. aedes 1.2 speaks MQTT 3.1 and 3.1.1 only (DESIGN pitfalls): an MQTT 5
 * CONNECT is refused by aedes with return code 1; this says why in the log. Wills are dropped:
 * presence is the broker's to publish (DESIGN §Topics), and a will on `s` would be a request
 * nobody sent.
 */
export function preConnectHook (log: Logger): Aedes['preConnect'] {
  return (client, packet, done) => {
    if (packet.protocolVersion !== 4 && packet.protocolVersion !== 3) {
      log.warn('connect refused: this broker speaks MQTT 3.1.1 (protocol level 4) only',
        { protocolVersion: packet.protocolVersion, device: packet.clientId, address: addressOf(client) })
    }
    if (packet.will) {
      log.debug('will dropped: presence is published by the broker', { device: packet.clientId })
      delete packet.will
    }
    done(null, true)
  }
}
