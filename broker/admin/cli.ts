// `npm run admin -- <command>`: provisioning from a shell (issue 2 §6).
//   user add <login> [--password <password>]    add a user (no password: token-only)
//   user list                                   list users
//   token <login> [--ttl 30d]                   print an access token
//   contacts list <login>                       list contacts, pending requests, blocked users
//   contacts add|remove <login> <other>         make them contacts | end contact and requests
//   block|unblock <login> <other>               <login> blocks or unblocks <other> (issue 7 §6)
// It reads the broker's settings (README §Settings). With an embedded database that a running
// broker holds (PGlite admits one process at a time), or with ADMIN_URL set, it goes through the
// broker's HTTP admin API; otherwise it opens the database itself.
import { parseArgs } from 'node:util'
import { ConfigError, StartError, loadConfig, parseDuration, type Config } from '../config.ts'
import { migrate } from '../storage/migrate.ts'
import { brokerSecret } from '../storage/users.ts'
import { localAdminKey, openHistory, readRunningFile } from '../server.ts'
import {
  AdminError, addUser, allUsers, changeContactAsAdmin, contactList, tokenFor,
  type AdminContactChange, type ContactChangeView, type ContactView, type IssuedToken, type UserView,
} from './accounts.ts'

const USAGE = `usage: npm run admin -- <command>
  user add <login> [--password <password>]   add a user
  user list                                  list users
  token <login> [--ttl 30d]                  print an access token for a user
  contacts list <login>                      list a user's contacts, pending requests and blocked users
  contacts add <login> <other>               make two users contacts
  contacts remove <login> <other>            end their contact (or a pending request)
  block <login> <other>                      <login> blocks <other>
  unblock <login> <other>                    <login> no longer blocks <other>`

interface Operations {
  addUser (login: string, password?: string): Promise<UserView>
  listUsers (): Promise<UserView[]>
  token (login: string, ttlMs: number): Promise<IssuedToken>
  contacts (login: string): Promise<ContactView[]>
  changeContact (login: string, other: string, change: AdminContactChange): Promise<ContactChangeView>
  close (): Promise<void>
}

async function direct (config: Config): Promise<Operations> {
  const db = await openHistory(config)
  await migrate(db)
  return {
    addUser: (login, password) => addUser(db, login, password),
    listUsers: () => allUsers(db),
    token: async (login, ttlMs) => tokenFor(db, config.tokenSecret ? Buffer.from(config.tokenSecret) : await brokerSecret(db, 'token'), login, ttlMs),
    contacts: login => contactList(db, login),
    // No broker here to deliver the change: the users' devices find it at their next contact sync.
    changeContact: async (login, other, change) => (await changeContactAsAdmin(db, login, other, change)).view,
    close: () => db.close(),
  }
}

function viaApi (base: string, adminKey: string): Operations {
  const call = async <T>(method: string, path: string, body?: unknown): Promise<T> => {
    let res: Response
    try {
      res = await fetch(new URL(path, base), {
        method,
        headers: { authorization: `Bearer ${adminKey}`, 'content-type': 'application/json' },
        body: body === undefined ? undefined : JSON.stringify(body),
      })
    } catch (err) {
      throw new StartError(`cannot reach the broker's admin API at ${base}: ${(err as Error).message}`)
    }
    let json: T & { error?: string }
    try {
      json = await res.json() as T & { error?: string }
    } catch {
      throw new StartError(`${base} answered HTTP ${res.status} without JSON: it is not the broker's admin API (HTTP_PORT)`)
    }
    if (!res.ok) throw new AdminError(res.status === 404 ? 404 : res.status === 409 ? 409 : 400, json.error ?? `HTTP ${res.status}`)
    return json
  }
  return {
    addUser: (login, password) => call('POST', '/api/users', { login, password }),
    listUsers: async () => (await call<{ users: UserView[] }>('GET', '/api/users')).users,
    token: (login, ttlMs) => call('POST', `/api/users/${encodeURIComponent(login)}/token`, { ttl: `${ttlMs}ms` }),
    contacts: async login => (await call<{ contacts: ContactView[] }>('GET', `/api/users/${encodeURIComponent(login)}/contacts`)).contacts,
    changeContact: (login, other, change) => {
      const [method, what] = ({ connect: ['PUT', 'contacts'], disconnect: ['DELETE', 'contacts'], block: ['PUT', 'blocks'], unblock: ['DELETE', 'blocks'] } as const)[change]
      return call(method, `/api/users/${encodeURIComponent(login)}/${what}/${encodeURIComponent(other)}`)
    },
    close: async () => {},
  }
}

async function operations (config: Config): Promise<Operations> {
  if (config.adminUrl) return viaApi(config.adminUrl, localAdminKey(config))
  if (!config.databaseUrl) {
    const running = readRunningFile(config.dataDir)
    if (running) {
      if (running.httpPort === null) {
        throw new StartError(`the broker (pid ${running.pid}) holds the database and has no HTTP listener: stop it, or start it with HTTP_PORT set`)
      }
      return viaApi(`http://127.0.0.1:${running.httpPort}`, localAdminKey(config))
    }
  }
  return direct(config)
}

/** The commands that change a relationship, with what they print. */
const CONTACT_COMMANDS: Record<string, { change: AdminContactChange, usage: string, words: (login: string, other: string, changed: boolean) => string }> = {
  'contacts add': {
    change: 'connect',
    usage: 'contacts add <login> <other>',
    words: (a, b, changed) => changed ? `${a} and ${b} are contacts now` : `${a} and ${b} were contacts already`,
  },
  'contacts remove': {
    change: 'disconnect',
    usage: 'contacts remove <login> <other>',
    words: (a, b, changed) => changed ? `${a} and ${b} are not contacts now` : `${a} and ${b} were not contacts`,
  },
  block: {
    change: 'block',
    usage: 'block <login> <other>',
    words: (a, b, changed) => changed ? `${a} blocks ${b} now` : `${a} blocked ${b} already`,
  },
  unblock: {
    change: 'unblock',
    usage: 'unblock <login> <other>',
    words: (a, b, changed) => changed ? `${a} no longer blocks ${b}` : `${a} did not block ${b}`,
  },
}

export async function runAdmin (argv: string[], print: (line: string) => void, env = process.env): Promise<void> {
  const { values, positionals } = parseArgs({
    args: argv,
    options: { password: { type: 'string' }, ttl: { type: 'string' }, json: { type: 'boolean' } },
    allowPositionals: true,
    strict: true,
  })
  const config = loadConfig([], env)
  const [command, ...rest] = positionals
  const key = [command, command === 'user' || command === 'contacts' ? rest[0] : undefined].filter(Boolean).join(' ')
  if (!['user add', 'user list', 'token', ...Object.keys(CONTACT_COMMANDS), 'contacts list'].includes(key)) throw new ConfigError(USAGE)
  const ops = await operations(config)
  try {
    if (key === 'user add') {
      const login = rest[1]
      if (!login) throw new ConfigError('usage: npm run admin -- user add <login> [--password <password>]')
      const user = await ops.addUser(login, values.password)
      print(values.json ? JSON.stringify(user) : `added user ${user.login} (id ${user.id})`)
    } else if (key === 'contacts list') {
      const login = rest[1]
      if (!login) throw new ConfigError('usage: npm run admin -- contacts list <login>')
      const contacts = await ops.contacts(login)
      if (values.json) print(JSON.stringify(contacts))
      else if (contacts.length === 0) print(`${login} has no contacts, requests or blocked users`)
      else for (const c of contacts) print(`${String(c.user).padStart(6)}  ${c.login.padEnd(32)} ${[c.state === 'none' ? '' : c.state, c.blocked ? 'blocked' : ''].filter(Boolean).join(', ')}  since ${c.since.slice(0, 10)}`)
    } else if (key in CONTACT_COMMANDS) {
      const { change, words, usage } = CONTACT_COMMANDS[key]
      const [login, other] = command === 'contacts' ? rest.slice(1) : rest
      if (!login || !other) throw new ConfigError(`usage: npm run admin -- ${usage}`)
      const result = await ops.changeContact(login, other, change)
      print(values.json ? JSON.stringify(result) : words(login, other, result.changed))
    } else if (key === 'user list') {
      const users = await ops.listUsers()
      if (values.json) print(JSON.stringify(users))
      else if (users.length === 0) print('no users yet: npm run admin -- user add <login> --password <password>')
      else for (const u of users) print(`${String(u.id).padStart(6)}  ${u.login.padEnd(32)} ${u.devices ?? 0} device(s)  since ${u.createdAt.slice(0, 10)}`)
    } else {
      const login = rest[0]
      if (!login) throw new ConfigError('usage: npm run admin -- token <login> [--ttl 30d]')
      const issued = await ops.token(login, values.ttl ? parseDuration(values.ttl) : config.tokenTtlMs)
      print(values.json ? JSON.stringify(issued) : issued.token)
    }
  } finally {
    await ops.close()
  }
}

const isMain = process.argv[1] && import.meta.url.endsWith(process.argv[1].replace(/^.*\/broker\//, '/broker/'))
if (isMain) {
  runAdmin(process.argv.slice(2), line => process.stdout.write(line + '\n')).catch((err: Error) => {
    const expected = err instanceof AdminError || err instanceof ConfigError || err instanceof StartError || (err as { code?: string }).code?.startsWith('ERR_PARSE_ARGS')
    process.stderr.write(`error: ${expected ? err.message : err.stack ?? err.message}\n`)
    process.exit(1)
  })
}
