// What an SDK call can fail with. A refusal by the broker carries the code of the protocol's one
// ErrorCode enum (STYLE: errors as comparable constants); the rest say why no answer came.
import { wmq } from './wire.ts'

/** The broker refused the request: nothing changed (chat.proto ErrorCode). */
export class ChatError extends Error {
  override readonly name = 'ChatError'
  constructor (readonly code: wmq.ErrorCode, readonly detail: string) {
    super(`${wmq.ErrorCode[code] ?? code}: ${detail}`)
  }
}

/** No answer within the request's deadline (the link was retried meanwhile). */
export class TimeoutError extends Error {
  override readonly name = 'TimeoutError'
}

/**
 * The connection went down before the answer to a request that is not safe to repeat (a group
 * change): it may or may not have taken effect. Look (groups(), members()) before trying again.
 */
export class LinkLostError extends Error {
  override readonly name = 'LinkLostError'
}

/** The client was closed. A send's outbox entry stays in the store and goes out after the next connect. */
export class ClosedError extends Error {
  override readonly name = 'ClosedError'
}

/** The broker refused the CONNECT for good: no retry helps until the options change. */
export class ConnectRefusedError extends Error {
  override readonly name = 'ConnectRefusedError'
  constructor (readonly returnCode: number) {
    super(`connect refused (CONNACK ${returnCode}): ${connackMeaning(returnCode)}`)
  }
}

/** [MQTT-3.2.2.3] return codes, as this broker uses them (PROTOCOL.md §Connect). */
export function connackMeaning (returnCode: number): string {
  switch (returnCode) {
    case 1: return 'unacceptable protocol version: use MQTT 3.1.1 (protocol level 4)'
    case 2: return 'identifier rejected: the client id must be a base-36 device id'
    case 3: return 'server unavailable: retry later'
    case 4: return 'bad user name or password (or an expired token)'
    case 5: return 'not authorized: this device id is bound to another user'
    default: return 'unknown return code'
  }
}

/** Refusals that no retry will change (3, server unavailable, is worth retrying). */
export const isFatalConnack = (returnCode: number): boolean => returnCode === 1 || returnCode === 2 || returnCode === 4 || returnCode === 5
