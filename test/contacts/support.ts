// What the issue 7 tests share: users, contact changes from a device, the events a device got, and
// a snapshot of everything a refusal must leave as it was.
import { ask, connectAs, sendToUser, wmq, type Device, type TestBroker } from '../harness.ts'

export const { FORBIDDEN, NO_CONTACT, ALREADY_EXISTS, INVALID_ARGUMENT, UNKNOWN_USER, RATE_LIMITED } = wmq.ErrorCode
export const { NONE, CONTACT, REQUEST_SENT, REQUEST_RECEIVED } = wmq.ContactState
export const { ANYONE, CONTACTS } = wmq.Audience

export async function addUsers (tb: TestBroker, logins: string[]): Promise<number[]> {
  const ids: number[] = []
  for (const login of logins) ids.push(await tb.addUser(login))
  return ids
}

export async function connectAll (tb: TestBroker, devices: Array<[login: string, device: string]>): Promise<Device[]> {
  return Promise.all(devices.map(([login, device]) => connectAs(tb, login, device)))
}

type Change = Omit<wmq.IContactUpdate, 'user'>

/** A contact change from `device` about `user`; resolves with the reply. */
export const contact = (device: Device, user: number, change: Change): Promise<wmq.Downlink> =>
  ask(device, { contactUpdate: { user, ...change } })

/** The contact events (not replies) a device received, in arrival order. */
export const contactEvents = (device: Device): Array<{ user: number, state: number, version: number, note: string, blocked: boolean }> =>
  device.received.filter(r => r.downlink.contact && r.topic.startsWith('u/')).map(r => {
    const c = r.downlink.contact!
    return { user: Number(c.user), state: c.state ?? NONE, version: Number(c.version), note: c.note ?? '', blocked: Boolean(c.blocked) }
  })

/** The events of one kind a device received on its user's inbox. */
export const eventsOf = <K extends keyof wmq.IDownlink>(device: Device, kind: K) =>
  device.received.filter(r => r.topic.startsWith('u/') && r.downlink[kind]).map(r => r.downlink[kind]!)

/**
 * Publishes a marker to the user's inbox and waits until `device` has it: whatever the broker
 * published to that inbox before has arrived by then (one topic, one order).
 */
export async function marker (tb: TestBroker, user: number, device: Device, text: string): Promise<void> {
  await sendToUser(tb.broker.aedes, user, { message: { conversation: 999_999, seq: 1, content: { text } } })
  await device.next(d => d.message?.content?.text === text, `marker "${text}"`)
}

/** Every table issue 3 and issue 7 write, to show a refusal left them as they were. */
export async function storedState (tb: TestBroker): Promise<unknown[]> {
  const db = tb.broker.db
  return Promise.all([
    db.query('SELECT * FROM contacts ORDER BY owner_id, other_id'),
    db.query(`SELECT id, display_name, avatar, status, profile_time, hidden_from_search, start_chat, add_to_group,
      contact_version FROM users ORDER BY id`),
    db.query('SELECT * FROM conversations ORDER BY id'),
    db.query('SELECT * FROM members ORDER BY conversation_id, user_id'),
    db.query('SELECT conversation_id, seq, sender_id FROM messages ORDER BY conversation_id, seq'),
  ])
}
