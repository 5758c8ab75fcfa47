// The command line of the terminal chat: flags, their environment variables and the usage text.
// A secret given as a flag shows in `ps` to every user of the machine, so the environment
// (WMQ_PASSWORD, WMQ_TOKEN) and the no-echo prompt are the ways the usage text recommends.
import { parseArgs } from 'node:util'

export const DEFAULT_URL = 'mqtt://127.0.0.1:1883'

export interface CliOptions {
  login: string
  password?: string
  token?: string
  url: string
  /** This installation's device id; default: made once and kept in the state folder. */
  device?: string
  /** Where the device id, the outbox and the read positions live; default ~/.config/wmq/<login>. */
  stateDir?: string
}

/** The command line cannot be used as given: say why, then the usage. */
export class UsageError extends Error {
  override readonly name = 'UsageError'
}

export const USAGE = `usage: npm run chat -- --login <login> [--password <password> | --token <token>]
                        [--url ${DEFAULT_URL}] [--device <id>] [--state-dir <folder>]

  --login      your login (as made by: npm run admin -- user add <login>)
  --password   your password; better: WMQ_PASSWORD=... in the environment, or type it when asked
  --token      an access token (npm run admin -- token <login>); better: WMQ_TOKEN=...
  --url        the broker: mqtt://, mqtts://, ws:// or wss://  (env WMQ_URL; default ${DEFAULT_URL})
  --device     this device's id (1-11 characters 0-9 a-z); default: made once and kept in the state folder
  --state-dir  where the device id, unsent messages and read positions are kept
               (env WMQ_STATE_DIR; default ~/.config/wmq/<login>)

Inside the chat, /help lists the commands.`

const URL_SCHEMES = new Set(['mqtt:', 'mqtts:', 'tcp:', 'ssl:', 'tls:', 'ws:', 'wss:'])

/** The options, or 'help' when asked for the usage; throws UsageError for a command line that cannot work. */
export function parseCommandLine (argv: string[], env: NodeJS.ProcessEnv): CliOptions | 'help' {
  let values: Record<string, string | boolean | undefined>
  try {
    values = parseArgs({
      args: argv,
      strict: true,
      allowPositionals: false,
      options: {
        login: { type: 'string', short: 'l' },
        password: { type: 'string' },
        token: { type: 'string' },
        url: { type: 'string' },
        device: { type: 'string' },
        'state-dir': { type: 'string' },
        help: { type: 'boolean', short: 'h' },
      },
    }).values
  } catch (err) {
    throw new UsageError((err as Error).message.split('\n')[0])
  }
  if (values.help) return 'help'
  const text = (name: string): string | undefined => {
    const value = values[name]
    return typeof value === 'string' && value !== '' ? value : undefined
  }
  const login = text('login')?.trim()
  if (!login) throw new UsageError('--login is missing')
  if (text('password') && text('token')) throw new UsageError('give --password or --token, not both')
  const url = text('url') ?? (env.WMQ_URL || DEFAULT_URL)
  let scheme: string
  try {
    scheme = new URL(url).protocol
  } catch {
    throw new UsageError(`--url "${url}" is not a URL (for example ${DEFAULT_URL})`)
  }
  if (!URL_SCHEMES.has(scheme)) throw new UsageError(`--url "${url}": use mqtt://, mqtts://, ws:// or wss://`)
  // A flag wins over the environment; of two secrets from the environment, the token is the one meant for devices.
  const secret = text('password') ? { password: text('password') }
    : text('token') ? { token: text('token') }
      : env.WMQ_TOKEN ? { token: env.WMQ_TOKEN }
        : env.WMQ_PASSWORD ? { password: env.WMQ_PASSWORD } : {}
  return {
    login,
    ...secret,
    url,
    device: text('device'),
    stateDir: text('state-dir') ?? (env.WMQ_STATE_DIR || undefined),
  }
}
