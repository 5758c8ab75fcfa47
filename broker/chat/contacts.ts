// Contacts (issue 7 §2, §4): request (with a note), accept, decline, cancel, remove, block and
// unblock; the contact list since a version. Validate, store (one transaction), reply, deliver:
// each view the change altered goes to every device of its owner, the asking device excepted (it
// gets the reply), stamped with the owner's contact version, so both sides' devices see each change
// in order and a device that was away syncs from the last version it applied.
import { wmq } from '../../schema/generated/chat.js'
import type { Identity } from '../auth/authenticate.ts'
import { changeContact, contactsSince, type ContactRefusal, type ContactRow } from '../storage/contacts.ts'
import type { ChatContext } from './context.ts'
import { RequestError } from './errors.ts'
import { refusal, userOf } from './policy.ts'
import { reconsiderPresence } from './presence-access.ts'
import { sendToUser, type DownlinkEvent } from './reply.ts'

const { INVALID_ARGUMENT, UNKNOWN_USER, ALREADY_EXISTS, NO_CONTACT } = wmq.ErrorCode
const MAX_NOTE = 140
const PAGE = 100
const PAGE_MAX = 200

/** What delivering a change needs: the admin API has these too. */
export type Announcer = Pick<ChatContext, 'broker' | 'db' | 'log'>

export const contactView = (row: ContactRow): wmq.IContact => ({
  user: row.other, state: row.state, note: row.note, blocked: row.blocked, version: row.version, time: row.time, login: row.login,
})

/**
 * Delivers each changed view to its owner's devices (not to `fromDevice`, which gets the reply),
 * after the commit, then takes presence away if the change ended the pair's right to it. A failed
 * delivery is logged: the change has taken effect and the devices catch up by version.
 */
export async function announceContactChange (ctx: Announcer, changed: ContactRow[], fromDevice: number | null): Promise<void> {
  for (const row of changed) {
    await sendToUser(ctx.broker, row.owner, { contact: contactView(row) }, fromDevice === null ? {} : { notTo: fromDevice })
      .catch(err => ctx.log.error('contact event delivery failed', { user: row.owner, error: (err as Error).message }))
  }
  if (changed.length > 0) await reconsiderPresence(ctx.broker, ctx.db, ctx.log, changed[0].owner, changed[0].other)
}

function noteOf (note: string | null | undefined): string {
  const trimmed = (note ?? '').trim()
  if ([...trimmed].length > MAX_NOTE) throw new RequestError(INVALID_ARGUMENT, `a request's note has at most ${MAX_NOTE} characters`)
  return trimmed
}

function refusalOf (reason: ContactRefusal, other: number): RequestError {
  switch (reason) {
    case 'unknown user': return new RequestError(UNKNOWN_USER, `no user ${other}`)
    case 'blocked': return refusal([other]) // the words of any other refusal: no hint of the block
    case 'already contacts': return new RequestError(ALREADY_EXISTS, `user ${other} is a contact already`)
    case 'no contact': return new RequestError(NO_CONTACT, `no contact or pending request with user ${other} for this change`)
  }
}

export async function updateContact (ctx: ChatContext, who: Identity, request: wmq.IContactUpdate): Promise<DownlinkEvent> {
  const other = userOf(request.user)
  if (other === who.user) throw new RequestError(INVALID_ARGUMENT, 'a contact is another user')
  const change = request.change
  if (!change) throw new RequestError(INVALID_ARGUMENT, 'a contact update needs a change: request, accept, decline, cancel, remove, block or unblock')
  const note = change === 'request' ? noteOf(request.request?.note) : ''
  const outcome = await ctx.db.transaction(tx => changeContact(tx, who.user, other, change, note, Date.now()))
  if (!outcome.ok) throw refusalOf(outcome.reason, other)
  await announceContactChange(ctx, outcome.changed, who.device)
  return { contact: contactView(outcome.mine) }
}

export async function syncContacts (ctx: ChatContext, who: Identity, request: wmq.IContactSync): Promise<DownlinkEvent> {
  const since = Number(request.since ?? 0)
  if (!Number.isSafeInteger(since)) throw new RequestError(INVALID_ARGUMENT, `no contact version ${request.since}`)
  const limit = Math.min(request.limit || PAGE, PAGE_MAX)
  const { rows, version } = await contactsSince(ctx.db, who.user, since, limit + 1)
  const more = rows.length > limit
  const page = rows.slice(0, limit)
  return { contacts: { contacts: page.map(contactView), cursor: more ? page.at(-1)!.version : version, more } }
}
