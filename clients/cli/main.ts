// npm run chat -- --login alice [--password P | --token T] [--url mqtt://127.0.0.1:1883] [--device ID] [--state-dir DIR]
//
// The terminal chat client on the TypeScript SDK (clients/ts). Expected failures (a wrong
// password, no broker at the address, a bad flag) are one line and a non-zero exit code; a stack
// trace means a bug, and is shown only with WMQ_DEBUG=1.
import { parseCommandLine, USAGE, UsageError, type CliOptions } from './args.ts'
import { startChat } from './chat.ts'
import { promptSecret } from './secret-prompt.ts'
import { defaultStateDir, openDeviceState, StateDirError } from './state-dir.ts'

const EXIT_FAILURE = 1
const EXIT_USAGE = 2
const EXIT_BUG = 70 // EX_SOFTWARE

function exitWith (code: number, line?: string): never {
  if (line) process.stderr.write(line + '\n')
  process.exit(code)
}

function reportBug (err: unknown): never {
  const error = err instanceof Error ? err : new Error(String(err))
  exitWith(EXIT_BUG, process.env.WMQ_DEBUG ? `internal error: ${error.stack}` : `internal error: ${error.message} (WMQ_DEBUG=1 shows where)`)
}

/** The password or token: from the command line or the environment, else asked for without echo. */
async function secretOf (options: CliOptions): Promise<{ password?: string, token?: string }> {
  if (options.token) return { token: options.token }
  if (options.password) return { password: options.password }
  if (!process.stdin.isTTY) {
    exitWith(EXIT_USAGE, 'error: no password: set WMQ_PASSWORD or WMQ_TOKEN, or give --password or --token (there is no terminal to ask on)')
  }
  const password = await promptSecret(`password for ${options.login}: `)
  if (password === null) exitWith(EXIT_FAILURE)
  if (password === '') exitWith(EXIT_USAGE, 'error: no password given')
  return { password }
}

async function main (): Promise<number> {
  let options: CliOptions | 'help'
  try {
    options = parseCommandLine(process.argv.slice(2), process.env)
    if (options === 'help') {
      process.stdout.write(USAGE + '\n')
      return 0
    }
    const secret = await secretOf(options)
    const stateDir = options.stateDir ?? defaultStateDir(options.login, process.env)
    const state = await openDeviceState(stateDir, options.device)
    const chat = startChat({ url: options.url, login: options.login, ...secret, device: state.device, store: state.store, stateDir, newDevice: state.made })
    process.on('SIGTERM', () => chat.stop())
    process.on('SIGINT', () => chat.stop()) // a terminal's Ctrl-C goes to readline; this is for a signal from outside
    return await chat.exited
  } catch (err) {
    if (err instanceof UsageError) exitWith(EXIT_USAGE, `error: ${err.message}\n\n${USAGE}`)
    if (err instanceof StateDirError) exitWith(EXIT_FAILURE, err.message)
    throw err
  }
}

process.on('uncaughtException', reportBug)
process.on('unhandledRejection', reportBug)
main().then(code => process.exit(code), reportBug)
