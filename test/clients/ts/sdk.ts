// Helpers of the SDK tests: SDK clients against a test broker, directly or through a FlakyLink
// (bench/lab/flaky-link.ts), and waiting for conditions with a bound (never a timed assertion).
import type { Test } from 'tap'
import { FlakyLink } from '../../../bench/lab/flaky-link.ts'
import { connect, type ChatClient, type ChatMessage, type ConnectOptions } from '../../../clients/ts/index.ts'
import type { TestBroker } from '../../harness.ts'

/** Long enough for a slow CI machine, short enough that a broken test fails instead of hanging. */
export const WAIT_LIMIT_MS = 20_000

/** Resolves once `condition` holds (checked every 10 ms); rejects after the limit, naming `what`. */
export async function waitFor (condition: () => boolean | Promise<boolean>, what: string, limitMs = WAIT_LIMIT_MS): Promise<void> {
  const deadline = Date.now() + limitMs
  while (!await condition()) {
    if (Date.now() > deadline) throw new Error(`${what}: not within ${limitMs} ms`)
    await new Promise(resolve => setTimeout(resolve, 10))
  }
}

/** A FlakyLink (loopback profile) in front of the broker's MQTT port; `target` is read at each new connection. */
export async function linkTo (t: Test, tb: TestBroker): Promise<FlakyLink> {
  const link = new FlakyLink({ target: { host: '127.0.0.1', port: tb.broker.ports.MQTT } })
  await link.listen()
  t.teardown(() => link.close())
  return link
}

export interface Recorded {
  client: ChatClient
  /** Every message the application got, in the order it got them. */
  messages: ChatMessage[]
  states: string[]
  errors: Error[]
}

/** An SDK client of `login` on `device`, closed when the test ends; options override the test defaults. */
export async function sdkClient (t: Test, tb: TestBroker, login: string, device: string,
  options: Partial<ConnectOptions> = {}): Promise<Recorded> {
  const client = connect({
    url: () => tb.mqttUrl,
    login,
    token: await tb.token(login),
    device,
    deliveryReceipts: false,
    ...options,
  })
  return record(t, client)
}

export function record (t: Test, client: ChatClient): Recorded {
  const recorded: Recorded = { client, messages: [], states: [], errors: [] }
  client.on('message', m => recorded.messages.push(m))
  client.on('state', state => recorded.states.push(state))
  client.on('error', err => recorded.errors.push(err))
  t.teardown(() => client.close())
  return recorded
}

/** (seq, text) of each message, as the application saw them. */
export const seqTexts = (messages: ChatMessage[]) =>
  messages.map(m => [m.seq, m.content && 'text' in m.content ? m.content.text : null] as const)

export const urlOf = (link: FlakyLink) => `mqtt://127.0.0.1:${link.port}`
