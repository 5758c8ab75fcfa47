import type { wmq } from '../../schema/generated/chat.js'

/** A request that cannot be served: the device gets `code`, nothing was changed. */
export class RequestError extends Error {
  constructor (readonly code: wmq.ErrorCode, detail: string) {
    super(detail)
  }
}
