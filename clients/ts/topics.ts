// The topic grammar as a device sees it (PROTOCOL.md §Topics). The broker subscribes every device
// session to its inbox `u/{user}` and its downlink `d/{device}` itself (DESIGN 6): the SDK never
// subscribes to those, publishes every request on `s`, and subscribes only to presence `p/{user}`.
// Ids are base-36 in topics and in the MQTT client id (DESIGN 7).

export const UPLINK = 's'

/** 1 to 11 base-36 characters, no leading zero, no upper case: the broker's device id rule. */
const ID = /^[1-9a-z][0-9a-z]{0,10}$/

/** A base-36 id, or null when the text is not one (or is past 2^53, where JS numbers stop being exact). */
export function decodeId (text: string): number | null {
  if (!ID.test(text)) return null
  const id = parseInt(text, 36)
  return id > 0 && id <= Number.MAX_SAFE_INTEGER ? id : null
}

export const isDeviceId = (text: string): boolean => decodeId(text) !== null

export const presenceTopic = (user: number): string => `p/${user.toString(36)}`

export type Arrival =
  | { kind: 'inbox', user: number }
  | { kind: 'downlink', device: number }
  | { kind: 'presence', user: number }

/** Where a PUBLISH from the broker came from, or null for a topic outside the grammar. */
export function parseTopic (topic: string): Arrival | null {
  if (topic.length < 3 || topic[1] !== '/') return null
  const id = decodeId(topic.slice(2))
  if (id === null) return null
  switch (topic[0]) {
    case 'u': return { kind: 'inbox', user: id }
    case 'd': return { kind: 'downlink', device: id }
    case 'p': return { kind: 'presence', user: id }
    default: return null
  }
}

const MIN_RANDOM_ID = 36 ** 9 // 10 or 11 characters: short, and collisions are negligible

/**
 * A fresh random device id (10-11 base-36 characters, below 2^53). Make it once per installation
 * and keep it: the broker binds a device id to the first user that logs in with it (DESIGN 8).
 */
export function newDeviceId (): string {
  for (;;) {
    const [high, low] = globalThis.crypto.getRandomValues(new Uint32Array(2))
    const id = (high & 0x1fffff) * 2 ** 32 + low // 53 random bits
    if (id >= MIN_RANDOM_ID) return id.toString(36)
  }
}
