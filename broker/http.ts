// The HTTP listener: `/healthz` for load balancers and the admin API under `/api`, guarded by the
// admin key (`Authorization: Bearer <ADMIN_KEY>`).
//   GET  /api/users                    list users
//   POST /api/users                    {login, password?}       add a user
//   POST /api/users/{login}/token      {ttl?: "30d"}            issue an access token
//   GET  /api/users/{login}/contacts                            list contacts, requests, blocked users
//   PUT|DELETE /api/users/{login}/contacts/{other}              make them contacts | end it (issue 7 §6)
//   PUT|DELETE /api/users/{login}/blocks/{other}                block | unblock
// And the browser client (clients/web/), open to anyone:
//   GET  /, /app.js, /app.css          the page; app.js is bundled by esbuild on first request
//   GET  /config.json                  where MQTT over WebSocket listens: {ws?, wss?, path}
//   POST /login                        {login, password, device?}  ->  {user, login, token, expiresAt, device}
import { timingSafeEqual, createHash, randomBytes } from 'node:crypto'
import type { IncomingMessage, RequestListener, ServerResponse } from 'node:http'
import type { Aedes } from 'aedes'
import { parseDuration, ConfigError } from './config.ts'
import { AdminError, addUser, allUsers, changeContactAsAdmin, contactList, tokenFor, type AdminContactChange } from './admin/accounts.ts'
import { checkConnect, type Verdict } from './auth/authenticate.ts'
import type { Throttle } from './auth/throttle.ts'
import { issueToken, looksLikeToken } from './auth/tokens.ts'
import { announceContactChange } from './chat/contacts.ts'
import { WS_PATH } from './listeners.ts'
import { decodeId } from './topics.ts'
import { webAsset } from '../clients/web/bundle.ts'
import type { Logger } from './log.ts'
import type { Db } from './storage/db.ts'

export interface HttpContext {
  db: Db
  adminKey: string
  tokenSecret: Uint8Array
  tokenTtlMs: number
  log: Logger
  health: () => Record<string, unknown>
  /** The broker, to deliver contact changes to the users' devices; without it they sync later. */
  broker?: Aedes
  /** Bound ports by listener name (WebSocket, WSS), for the browser client's /config.json. */
  ports?: () => Record<string, number>
  /** The failed-login slow-down the MQTT authenticate hook uses; without it /login is not slowed down. */
  throttle?: Throttle
}

const MAX_BODY = 16 * 1024

function send (res: ServerResponse, status: number, body: unknown): void {
  res.writeHead(status, { 'content-type': 'application/json' })
  res.end(JSON.stringify(body) + '\n')
}

async function readJson (req: IncomingMessage): Promise<Record<string, unknown>> {
  let size = 0
  const chunks: Buffer[] = []
  for await (const chunk of req) {
    size += (chunk as Buffer).length
    if (size > MAX_BODY) throw new AdminError(400, 'request body too large')
    chunks.push(chunk as Buffer)
  }
  if (size === 0) return {}
  try {
    const body: unknown = JSON.parse(Buffer.concat(chunks).toString('utf8'))
    if (typeof body === 'object' && body !== null && !Array.isArray(body)) return body as Record<string, unknown>
  } catch {}
  throw new AdminError(400, 'the body must be a JSON object')
}

const digest = (text: string) => createHash('sha256').update(text).digest()

function authorized (req: IncomingMessage, adminKey: string): boolean {
  const header = req.headers.authorization ?? ''
  const given = header.startsWith('Bearer ') ? header.slice(7) : ''
  return given !== '' && timingSafeEqual(digest(given), digest(adminKey))
}

function optionalString (body: Record<string, unknown>, key: string): string | undefined {
  const value = body[key]
  if (value === undefined) return undefined
  if (typeof value !== 'string') throw new AdminError(400, `"${key}" must be a string`)
  return value
}

/** A client's bad percent-encoding is a 400, not an internal error. */
function loginInPath (segment: string): string {
  try {
    return decodeURIComponent(segment)
  } catch {
    throw new AdminError(400, `"${segment}" is not a login: bad percent-encoding`)
  }
}

async function admin (ctx: HttpContext, req: IncomingMessage, path: string[]): Promise<[number, unknown]> {
  if (path.length === 1 && path[0] === 'users') {
    if (req.method === 'GET') return [200, { users: await allUsers(ctx.db) }]
    if (req.method === 'POST') {
      const body = await readJson(req)
      const login = optionalString(body, 'login')
      if (!login) throw new AdminError(400, '"login" is required')
      return [201, await addUser(ctx.db, login, optionalString(body, 'password'))]
    }
  }
  if (path.length === 3 && path[0] === 'users' && path[2] === 'token' && req.method === 'POST') {
    const body = await readJson(req)
    const ttl = optionalString(body, 'ttl')
    let ttlMs = ctx.tokenTtlMs
    if (ttl !== undefined) {
      try { ttlMs = parseDuration(ttl) } catch (err) { throw new AdminError(400, (err as ConfigError).message) }
    }
    return [201, await tokenFor(ctx.db, ctx.tokenSecret, loginInPath(path[1]), ttlMs)]
  }
  if (path.length === 3 && path[0] === 'users' && path[2] === 'contacts' && req.method === 'GET') {
    return [200, { contacts: await contactList(ctx.db, loginInPath(path[1])) }]
  }
  if (path.length === 4 && path[0] === 'users' && (path[2] === 'contacts' || path[2] === 'blocks') &&
    (req.method === 'PUT' || req.method === 'DELETE')) {
    const change: AdminContactChange = path[2] === 'contacts'
      ? (req.method === 'PUT' ? 'connect' : 'disconnect')
      : (req.method === 'PUT' ? 'block' : 'unblock')
    const { view, rows } = await changeContactAsAdmin(ctx.db, loginInPath(path[1]), loginInPath(path[3]), change)
    if (ctx.broker) await announceContactChange({ broker: ctx.broker, db: ctx.db, log: ctx.log }, rows, null)
    return [200, view]
  }
  return [404, { error: `no admin endpoint ${req.method} /api/${path.join('/')}` }]
}

// ---- the browser client ----

// checkConnect's verdicts are CONNACK return codes ([MQTT-3.2.2.3])
const BAD_USERNAME_OR_PASSWORD = 4
const NOT_AUTHORIZED = 5 // the device is bound to another user
const noThrottle: Throttle = { delayFor: async () => 0, fail: async () => {}, succeed: async () => {} }
const sleep = (ms: number) => new Promise(resolve => setTimeout(resolve, ms))

/** A random device id of 10-11 base-36 characters below 2^53, as the SDK's newDeviceId() makes them. */
function freshDevice (): string {
  for (;;) {
    const id = Number(randomBytes(8).readBigUInt64BE() >> 11n) // 53 random bits
    if (id >= 36 ** 9) return id.toString(36)
  }
}

/**
 * POST /login: the password is checked by checkConnect, the code of the MQTT authenticate hook,
 * behind the same failed-login slow-down (same counts, keyed by login and address), and traded for
 * an access token, so the page keeps a token and never the password. The device is the browser's
 * own id when it is free or already this user's; a device bound to another user (a shared browser)
 * is replaced by a fresh one. The password is never logged.
 */
async function login (ctx: HttpContext, req: IncomingMessage): Promise<[number, unknown]> {
  const body = await readJson(req)
  const login = optionalString(body, 'login') ?? ''
  const password = optionalString(body, 'password') ?? ''
  const asked = optionalString(body, 'device') ?? ''
  if (!login || !password) throw new AdminError(400, '"login" and "password" are required')
  const throttle = ctx.throttle ?? noThrottle
  const attempt = { login, address: req.socket.remoteAddress ?? 'unknown' }
  const fields = { login, address: attempt.address }
  const delay = await throttle.delayFor(attempt)
  if (delay > 0) {
    ctx.log.warn('web login slowed down after repeated failures', { ...fields, delayMs: delay })
    await sleep(delay)
  }
  const deps = { db: ctx.db, tokenSecret: ctx.tokenSecret, throttle, log: ctx.log }
  const secret = Buffer.from(password, 'utf8')
  let device = decodeId(asked) === null ? freshDevice() : asked
  // A token is no password here: trading it for a fresh one would let a stolen token live forever.
  let verdict: Verdict = looksLikeToken(password)
    ? { ok: false, returnCode: BAD_USERNAME_OR_PASSWORD, reason: 'a token given as the password' }
    : await checkConnect(deps, device, login, secret)
  if (!verdict.ok && verdict.returnCode === NOT_AUTHORIZED) verdict = await checkConnect(deps, device = freshDevice(), login, secret)
  if (!verdict.ok) {
    await throttle.fail(attempt)
    ctx.log.warn('web login refused', { ...fields, reason: verdict.reason })
    return [401, { error: 'wrong login or password' }]
  }
  await throttle.succeed(attempt)
  const user = verdict.identity.user
  const expiresAtMs = Date.now() + ctx.tokenTtlMs
  ctx.log.info('web login', { ...fields, user, device })
  return [200, { user, login: verdict.identity.login, token: issueToken(ctx.tokenSecret, user, expiresAtMs), expiresAt: new Date(expiresAtMs).toISOString(), device }]
}

/** Where the page connects: the bound WebSocket ports (the browser adds its own host name). */
function webConfig (ctx: HttpContext): Record<string, unknown> {
  const ports = ctx.ports?.() ?? {}
  return { ws: ports.WebSocket ?? null, wss: ports.WSS ?? null, path: WS_PATH }
}

// The page's scripts and styles come from this origin only; it talks MQTT over ws:/wss: on the
// broker's other ports, which 'self' does not cover, and mqtt.js runs its timers in a blob: worker
// (a background tab's own timers are throttled to once a minute, too slow for the keepalive).
const PAGE_HEADERS = {
  'content-security-policy': "default-src 'self'; connect-src 'self' ws: wss:; worker-src blob:; img-src 'self' data:; base-uri 'none'; form-action 'self'",
  'x-content-type-options': 'nosniff',
  'cache-control': 'no-cache',
}

function serveAsset (ctx: HttpContext, req: IncomingMessage, path: string, res: ServerResponse): boolean {
  const asset = webAsset(path)
  if (!asset) return false
  asset.then(({ type, body, gzipped }) => {
    const gzip = /\bgzip\b/.test(String(req.headers['accept-encoding'] ?? ''))
    res.writeHead(200, { 'content-type': type, vary: 'accept-encoding', ...(gzip ? { 'content-encoding': 'gzip' } : {}), ...PAGE_HEADERS })
    res.end(gzip ? gzipped : body)
  }, (err: Error) => {
    ctx.log.error('web client build failed', { path, error: err.message })
    send(res, 500, { error: 'the web client could not be built; see the broker log' })
  })
  return true
}

export function httpHandler (ctx: HttpContext): RequestListener {
  return (req, res) => {
    const url = new URL(req.url ?? '/', 'http://localhost')
    if (url.pathname === '/healthz') return send(res, 200, ctx.health())
    if (req.method === 'GET' && url.pathname === '/config.json') return send(res, 200, webConfig(ctx))
    if (req.method === 'GET' && serveAsset(ctx, req, url.pathname, res)) return
    if (url.pathname === '/login') {
      if (req.method !== 'POST') return send(res, 405, { error: 'POST /login {login, password, device?}' })
      login(ctx, req).then(([status, body]) => send(res, status, body), (err: Error) => {
        if (err instanceof AdminError) return send(res, err.status, { error: err.message })
        ctx.log.error('web login failed', { error: err.message })
        send(res, 500, { error: 'internal error' })
      })
      return
    }
    if (!url.pathname.startsWith('/api/')) return send(res, 404, { error: 'not found' })
    if (!authorized(req, ctx.adminKey)) {
      ctx.log.warn('admin API refused: missing or wrong admin key', { path: url.pathname, address: req.socket.remoteAddress })
      return send(res, 401, { error: 'admin key required: Authorization: Bearer <ADMIN_KEY>' })
    }
    admin(ctx, req, url.pathname.slice(5).split('/').filter(Boolean)).then(([status, body]) => {
      if (status < 300) ctx.log.info('admin API', { method: req.method, path: url.pathname, status })
      send(res, status, body)
    }, (err: Error) => {
      if (err instanceof AdminError) return send(res, err.status, { error: err.message })
      ctx.log.error('admin API failed', { path: url.pathname, error: err.message })
      send(res, 500, { error: 'internal error' })
    })
  }
}
