// Profiles (issue 7 §1): display name, avatar reference and status text. Readable by oneself,
// contacts, 1:1 partners and group peers, and by a user one has asked to be a contact, never
// across a block (storage/contacts.ts). A change reaches the user's other devices and the devices
// of the user's contacts as a Profile event; group peers read it when they need it (ProfileGet),
// so a change costs one event per contact, not one per member of every group.
import { wmq } from '../../schema/generated/chat.js'
import type { Identity } from '../auth/authenticate.ts'
import { contactsToTell } from '../storage/contacts.ts'
import { profileOf, readableProfiles, setProfile, type ProfileFields, type ProfileRow } from '../storage/profiles.ts'
import type { ChatContext } from './context.ts'
import { RequestError } from './errors.ts'
import { sendToUser, type DownlinkEvent } from './reply.ts'

const { INVALID_ARGUMENT, UNKNOWN_USER } = wmq.ErrorCode
const MAX_DISPLAY_NAME = 64
const MAX_STATUS = 140
const MAX_AVATAR_BYTES = 512
const MAX_PROFILES = 100

const view = (row: ProfileRow): wmq.IProfile => ({ ...row })

function fieldsOf (request: wmq.IProfileUpdate): ProfileFields {
  const fields: ProfileFields = {}
  if (request.displayName != null) {
    const name = request.displayName.trim()
    if ([...name].length > MAX_DISPLAY_NAME || /\p{Cc}/u.test(name)) {
      throw new RequestError(INVALID_ARGUMENT, `a display name has at most ${MAX_DISPLAY_NAME} characters, on one line`)
    }
    fields.displayName = name
  }
  if (request.avatar != null) {
    if (Buffer.byteLength(request.avatar) > MAX_AVATAR_BYTES) throw new RequestError(INVALID_ARGUMENT, `an avatar reference has at most ${MAX_AVATAR_BYTES} bytes`)
    fields.avatar = request.avatar
  }
  if (request.status != null) {
    const status = request.status.trim()
    if ([...status].length > MAX_STATUS) throw new RequestError(INVALID_ARGUMENT, `a status has at most ${MAX_STATUS} characters`)
    fields.status = status
  }
  return fields
}

export async function updateProfile (ctx: ChatContext, who: Identity, request: wmq.IProfileUpdate): Promise<DownlinkEvent> {
  const fields = fieldsOf(request)
  if (Object.keys(fields).length === 0) { // an update with no field reads the profile
    const row = await profileOf(ctx.db, who.user)
    if (!row) throw new RequestError(UNKNOWN_USER, `no user ${who.user}`)
    return { profile: view(row) }
  }
  const row = await setProfile(ctx.db, who.user, fields, Date.now())
  if (!row) throw new RequestError(UNKNOWN_USER, `no user ${who.user}`)
  const event: DownlinkEvent = { profile: view(row) }
  const audience = [who.user, ...await contactsToTell(ctx.db, who.user)]
  // After the commit: a failed delivery is logged; the devices read the profile when they need it.
  await Promise.all(audience.map(user => sendToUser(ctx.broker, user, event, user === who.user ? { notTo: who.device } : {})
    .catch(err => ctx.log.error('profile event delivery failed', { user, error: (err as Error).message }))))
  return event
}

/**
 * The readable profiles among those asked for. The others, unknown users included, are left out
 * without a reason: a stranger and a blocked user learn the same, nothing.
 */
export async function getProfiles (ctx: ChatContext, who: Identity, request: wmq.IProfileGet): Promise<DownlinkEvent> {
  const asked = [...new Set((request.users ?? []).map(Number))]
  if (asked.length > MAX_PROFILES) throw new RequestError(INVALID_ARGUMENT, `at most ${MAX_PROFILES} profiles per request, not ${asked.length}`)
  const users = asked.filter(id => Number.isSafeInteger(id) && id > 0)
  const rows = users.length > 0 ? await readableProfiles(ctx.db, who.user, users) : []
  return { profiles: { profiles: rows.map(view) } }
}
