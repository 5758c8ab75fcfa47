// The uplink: every request a device publishes on `s`, one protobuf Uplink (DESIGN §Topics).
// One switch on the request kind; each kind has its own handler file (STYLE). Requests of one
// device are handled one after another, in the order it sent them (issue 3 §2); devices run in
// parallel. Every request gets its reply or an Error with a code from the enum.
import type { Aedes } from 'aedes'
import { wmq } from '../../schema/generated/chat.js'
import type { Identity } from '../auth/authenticate.ts'
import type { Logger } from '../log.ts'
import { errorReply, replyTo, type DownlinkEvent } from './reply.ts'

export interface ChatContext {
  broker: Aedes
  log: Logger
  maxPayload: number
}

/** A request that cannot be served: the device gets `code`, nothing was changed. */
export class RequestError extends Error {
  constructor (readonly code: wmq.ErrorCode, detail: string) {
    super(detail)
  }
}

type Handler = (ctx: ChatContext, who: Identity, request: wmq.Uplink) => Promise<DownlinkEvent | null>

async function dispatch (ctx: ChatContext, who: Identity, request: wmq.Uplink): Promise<DownlinkEvent | null> {
  switch (request.request) {
    case 'ping': return { pong: { time: Date.now() } }
    default: throw new RequestError(wmq.ErrorCode.UNKNOWN_REQUEST, `request "${request.request ?? 'none'}" is not served`)
  }
}

function decode (payload: Buffer, maxPayload: number): wmq.Uplink {
  if (payload.length > maxPayload) {
    throw new RequestError(wmq.ErrorCode.TOO_LARGE, `request of ${payload.length} bytes is over the limit of ${maxPayload}`)
  }
  try {
    return wmq.Uplink.decode(payload)
  } catch (err) {
    throw new RequestError(wmq.ErrorCode.MALFORMED, `not an Uplink: ${(err as Error).message}`)
  }
}

export function createRequestHandler (ctx: ChatContext): (who: Identity, payload: Buffer) => Promise<void> {
  const queues = new Map<number, Promise<void>>()

  async function serve (who: Identity, payload: Buffer): Promise<void> {
    let ref = 0
    let reply: DownlinkEvent | null
    try {
      const request = decode(payload, ctx.maxPayload)
      ref = request.ref
      const answer = await dispatch(ctx, who, request)
      reply = answer && { ...answer, ref }
    } catch (err) {
      if (err instanceof RequestError) {
        ctx.log.info('request refused', { user: who.user, device: who.device, code: wmq.ErrorCode[err.code], detail: err.message })
        reply = errorReply(ref, err.code, err.message)
      } else {
        ctx.log.error('request failed', { user: who.user, device: who.device, error: (err as Error).message })
        reply = errorReply(ref, wmq.ErrorCode.INTERNAL, 'internal error: the request had no effect')
      }
    }
    if (reply) await replyTo(ctx.broker, who.device, reply)
  }

  return (who, payload) => {
    const previous = queues.get(who.device) ?? Promise.resolve()
    const next = previous.then(() => serve(who, payload)).catch(err => {
      ctx.log.error('reply failed', { device: who.device, error: (err as Error).message })
    })
    queues.set(who.device, next)
    next.finally(() => { if (queues.get(who.device) === next) queues.delete(who.device) })
    return next
  }
}
