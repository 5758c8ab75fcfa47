// The HTTP listener: `/healthz` for load balancers and the admin API under `/api`, guarded by the
// admin key (`Authorization: Bearer <ADMIN_KEY>`).
//   GET  /api/users                    list users
//   POST /api/users                    {login, password?}       add a user
//   POST /api/users/{login}/token      {ttl?: "30d"}            issue an access token
//   GET  /api/users/{login}/contacts                            list contacts, requests, blocked users
//   PUT|DELETE /api/users/{login}/contacts/{other}              make them contacts | end it (issue 7 §6)
//   PUT|DELETE /api/users/{login}/blocks/{other}                block | unblock
import { timingSafeEqual, createHash } from 'node:crypto'
import type { IncomingMessage, RequestListener, ServerResponse } from 'node:http'
import type { Aedes } from 'aedes'
import { parseDuration, ConfigError } from './config.ts'
import { AdminError, addUser, allUsers, changeContactAsAdmin, contactList, tokenFor, type AdminContactChange } from './admin/accounts.ts'
import { announceContactChange } from './chat/contacts.ts'
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

export function httpHandler (ctx: HttpContext): RequestListener {
  return (req, res) => {
    const url = new URL(req.url ?? '/', 'http://localhost')
    if (url.pathname === '/healthz') return send(res, 200, ctx.health())
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
