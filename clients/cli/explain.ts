// Expected failures in a person's words, one line each, never a stack trace: a refused login, a
// broker that is not there, a request the broker refused (by the protocol's ErrorCode), no answer.
import { ChatError, ClosedError, ConnectRefusedError, ErrorCode, TimeoutError, wmq } from '../ts/index.ts'
import { LinkLostError } from '../ts/errors.ts'

/** Why the broker refused the login (CONNACK return code), and what to do. */
export function refusalText (error: ConnectRefusedError, context: { device: string, token: boolean, login: string }): string {
  switch (error.returnCode) {
    case 4: return context.token
      ? `login refused: wrong login or token (a token expires: get a new one with npm run admin -- token ${context.login})`
      : 'login refused: wrong login or password'
    case 5: return `login refused: device ${context.device} belongs to another user; use another --device or --state-dir`
    case 2: return `login refused: the broker does not take "${context.device}" as a device id; give another with --device`
    case 1: return 'login refused: the broker does not speak MQTT 3.1.1'
    default: return `login refused: ${error.message}`
  }
}

/**
 * A first connection that failed in a way no retry will mend soon: nothing listens at the address,
 * or the host name is unknown. null when retrying is the right thing (a timeout, a reset: the
 * network may come back).
 */
export function unreachableText (reason: string, url: string): string | null {
  if (/ECONNREFUSED/.test(reason)) return `no broker at ${url}: start it with "npm start", or point --url at a running one`
  if (/ENOTFOUND/.test(reason)) return `cannot find the host of ${url}: check --url`
  return null
}

const CODE_WORDS: Partial<Record<wmq.ErrorCode, string>> = {
  [ErrorCode.UNKNOWN_USER]: 'no such user',
  [ErrorCode.UNKNOWN_GROUP]: 'no such group',
  [ErrorCode.UNKNOWN_CONVERSATION]: 'no such conversation',
  [ErrorCode.NOT_MEMBER]: 'you are not a member of that group',
  [ErrorCode.FORBIDDEN]: 'not allowed',
  [ErrorCode.RECALL_WINDOW_PASSED]: 'too late to recall that message',
  [ErrorCode.UNKNOWN_MESSAGE]: 'no such message',
  [ErrorCode.GROUP_FULL]: 'the group is full',
  [ErrorCode.TOO_LARGE]: 'too large',
  [ErrorCode.RATE_LIMITED]: 'too many requests: wait a minute',
  [ErrorCode.UNAVAILABLE]: 'the server cannot store anything right now: try again later',
  [ErrorCode.INTERNAL]: 'the server failed: try again later',
}

/** An error of a command, in words; the broker's detail is written for people (PROTOCOL §3). */
export function errorText (err: unknown): string {
  if (err instanceof ChatError) {
    const words = CODE_WORDS[err.code]
    if (words && err.detail) return `${words} (${err.detail})`
    return words ?? (err.detail || wmq.ErrorCode[err.code] || `error ${err.code}`)
  }
  if (err instanceof TimeoutError) return 'no answer from the server in time: is the connection up? try again'
  if (err instanceof LinkLostError) return 'the connection dropped before the answer: it may or may not have happened (look with /groups or /members)'
  if (err instanceof ClosedError) return 'the chat is closing'
  if (err instanceof Error) return err.message
  return String(err)
}
