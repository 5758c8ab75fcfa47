// Receipts (issue 3 §8). To be written.
import { wmq } from '../../schema/generated/chat.js'
import type { Identity } from '../auth/authenticate.ts'
import type { ChatContext } from './context.ts'
import { RequestError } from './errors.ts'
import type { DownlinkEvent } from './reply.ts'

export async function markReceipt (ctx: ChatContext, who: Identity, request: wmq.IMarkReceipt): Promise<DownlinkEvent | null> {
  throw new RequestError(wmq.ErrorCode.UNKNOWN_REQUEST, 'receipts are not served yet')
}
