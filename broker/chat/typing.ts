// Typing (issue 3 §10). To be written.
import { wmq } from '../../schema/generated/chat.js'
import type { Identity } from '../auth/authenticate.ts'
import type { ChatContext } from './context.ts'
import { RequestError } from './errors.ts'
import type { DownlinkEvent } from './reply.ts'

export async function typing (ctx: ChatContext, who: Identity, request: wmq.ITyping): Promise<DownlinkEvent | null> {
  throw new RequestError(wmq.ErrorCode.UNKNOWN_REQUEST, 'typing is not served yet')
}
