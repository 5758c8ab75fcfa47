// Recall and delete for me (issue 3 §9). To be written.
import { wmq } from '../../schema/generated/chat.js'
import type { Identity } from '../auth/authenticate.ts'
import type { ChatContext } from './context.ts'
import { RequestError } from './errors.ts'
import type { DownlinkEvent } from './reply.ts'

export async function recall (ctx: ChatContext, who: Identity, request: wmq.IRecall): Promise<DownlinkEvent | null> {
  throw new RequestError(wmq.ErrorCode.UNKNOWN_REQUEST, 'recall is not served yet')
}

export async function deleteForMe (ctx: ChatContext, who: Identity, request: wmq.IDeleteForMe): Promise<DownlinkEvent | null> {
  throw new RequestError(wmq.ErrorCode.UNKNOWN_REQUEST, 'delete for me is not served yet')
}
