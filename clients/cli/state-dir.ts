// The state folder of one login on this machine: the device id, made once and kept (the broker
// binds a device id to the first user that logs in with it, DESIGN 8), and the SDK's file store
// (outbox, read positions, conversation cursor) of that device, one file per device id so that a
// --device given once never meets the state of another.
import { mkdir, readFile, writeFile } from 'node:fs/promises'
import { homedir } from 'node:os'
import { join } from 'node:path'
import { isDeviceId, newDeviceId, type Store } from '../ts/index.ts'
import { fileStore } from '../ts/store-file.ts'

/** ~/.config/wmq/<login> (or under $XDG_CONFIG_HOME): one folder per login, private to its owner. */
export function defaultStateDir (login: string, env: NodeJS.ProcessEnv): string {
  const config = env.XDG_CONFIG_HOME || join(homedir(), '.config')
  return join(config, 'wmq', encodeURIComponent(login))
}

/** A state folder that cannot be used (read-only, not a folder): said in one line. */
export class StateDirError extends Error {
  override readonly name = 'StateDirError'
}

export interface DeviceState {
  device: string
  /** True when the id was made now: the first start of this login on this machine. */
  made: boolean
  store: Store
}

/**
 * The device id of this folder: `given` (checked, and kept when the folder has none yet), else the
 * one kept in `<dir>/device`, else a new one, kept from now on.
 */
export async function openDeviceState (dir: string, given?: string): Promise<DeviceState> {
  if (given !== undefined && !isDeviceId(given)) {
    throw new StateDirError(`--device "${given}" is not a device id: 1-11 characters 0-9 a-z, not starting with 0`)
  }
  const file = join(dir, 'device')
  try {
    await mkdir(dir, { recursive: true, mode: 0o700 })
    const kept = await readKept(file)
    if (kept !== null && !isDeviceId(kept)) throw new StateDirError(`${file} holds "${kept}", which is not a device id: remove the file to make a new one`)
    const device = given ?? kept ?? newDeviceId()
    const made = given === undefined && kept === null
    if (kept === null) await writeFile(file, device + '\n', { mode: 0o600 })
    return { device, made, store: fileStore(join(dir, `${device}.json`)) }
  } catch (err) {
    if (err instanceof StateDirError) throw err
    const code = (err as NodeJS.ErrnoException).code ?? (err as Error).message
    throw new StateDirError(`cannot use the state folder ${dir} (${code}): give another with --state-dir`)
  }
}

async function readKept (file: string): Promise<string | null> {
  try {
    return (await readFile(file, 'utf8')).trim()
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return null
    throw err
  }
}
