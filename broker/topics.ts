// The topic grammar of DESIGN.md §Topics, built and parsed here and nowhere else.
//   s            device -> broker: every request (one protobuf Uplink)
//   u/{user}     broker -> every device of a user
//   d/{device}   broker -> one device: replies to its requests
//   p/{user}     presence, retained, published by the broker
// Ids are base-36 in topics (DESIGN 7): user 1295 is `u/zz`.

export const UPLINK = 's'

/** The largest id a topic may carry: ids are JS numbers, exact up to 2^53. */
const MAX_ID = Number.MAX_SAFE_INTEGER
const ID = /^[1-9a-z][0-9a-z]{0,10}$/

export function encodeId (id: number): string {
  return id.toString(36)
}

/** A base-36 id, or null when the text is not one (no leading zeros, no upper case, > 0). */
export function decodeId (text: string): number | null {
  if (!ID.test(text)) return null
  const id = parseInt(text, 36)
  return id > 0 && id <= MAX_ID ? id : null
}

export const inboxTopic = (user: number): string => `u/${encodeId(user)}`
export const downlinkTopic = (device: number): string => `d/${encodeId(device)}`
export const presenceTopic = (user: number): string => `p/${encodeId(user)}`

export type Topic =
  | { kind: 'uplink' }
  | { kind: 'inbox', user: number }
  | { kind: 'downlink', device: number }
  | { kind: 'presence', user: number }

/** What a topic is, or null for anything outside the grammar (wildcards, `$SYS`, unknown). */
export function parseTopic (topic: string): Topic | null {
  if (topic === UPLINK) return { kind: 'uplink' }
  const slash = topic.indexOf('/')
  if (slash !== 1) return null
  const id = decodeId(topic.slice(2))
  if (id === null) return null
  switch (topic[0]) {
    case 'u': return { kind: 'inbox', user: id }
    case 'd': return { kind: 'downlink', device: id }
    case 'p': return { kind: 'presence', user: id }
    default: return null
  }
}
