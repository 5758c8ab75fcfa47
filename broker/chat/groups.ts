// Groups (issue 3 §4). To be written.
import { wmq } from '../../schema/generated/chat.js'
import type { Identity } from '../auth/authenticate.ts'
import type { ChatContext } from './context.ts'
import { RequestError } from './errors.ts'
import type { DownlinkEvent } from './reply.ts'

const notYet = () => new RequestError(wmq.ErrorCode.UNKNOWN_REQUEST, 'groups are not served yet')
export async function createGroup (ctx: ChatContext, who: Identity, request: wmq.IGroupCreate): Promise<DownlinkEvent> { throw notYet() }
export async function updateGroup (ctx: ChatContext, who: Identity, request: wmq.IGroupUpdate): Promise<DownlinkEvent> { throw notYet() }
export async function listGroups (ctx: ChatContext, who: Identity): Promise<DownlinkEvent> { throw notYet() }
export async function groupMembers (ctx: ChatContext, who: Identity, request: wmq.IGroupMembers): Promise<DownlinkEvent> { throw notYet() }
