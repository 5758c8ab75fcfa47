// Privacy settings (issue 7 §3, §5): hidden from search; who may start a 1:1 conversation and who
// may add the user to a group (anyone, or contacts only; enforced in policy.ts). The reply carries
// every setting; a change also reaches the user's other devices, so all of them show the same.
import { wmq } from '../../schema/generated/chat.js'
import type { Identity } from '../auth/authenticate.ts'
import { ANYONE, CONTACTS } from '../storage/contacts.ts'
import { setPrivacy, type PrivacyRow } from '../storage/profiles.ts'
import type { ChatContext } from './context.ts'
import { RequestError } from './errors.ts'
import { sendToUser, type DownlinkEvent } from './reply.ts'

const { INVALID_ARGUMENT, UNKNOWN_USER } = wmq.ErrorCode

function audienceOf (value: number | null | undefined, what: string): number | undefined {
  if (value == null) return undefined
  if (value !== ANYONE && value !== CONTACTS) throw new RequestError(INVALID_ARGUMENT, `${what} is ANYONE or CONTACTS, not ${value}`)
  return value
}

export async function updatePrivacy (ctx: ChatContext, who: Identity, request: wmq.IPrivacy): Promise<DownlinkEvent> {
  const fields: Partial<PrivacyRow> = {}
  if (request.hiddenFromSearch != null) fields.hiddenFromSearch = request.hiddenFromSearch
  const startChat = audienceOf(request.startChat, 'start_chat')
  if (startChat !== undefined) fields.startChat = startChat
  const addToGroup = audienceOf(request.addToGroup, 'add_to_group')
  if (addToGroup !== undefined) fields.addToGroup = addToGroup
  const row = await setPrivacy(ctx.db, who.user, fields) // no field: reads them
  if (!row) throw new RequestError(UNKNOWN_USER, `no user ${who.user}`)
  const event: DownlinkEvent = { privacy: row }
  if (Object.keys(fields).length > 0) {
    await sendToUser(ctx.broker, who.user, event, { notTo: who.device })
      .catch(err => ctx.log.error('privacy event delivery failed', { user: who.user, error: (err as Error).message }))
  }
  return event
}
