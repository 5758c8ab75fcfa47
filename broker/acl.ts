// Who may publish and subscribe to what (issue 2 §7, DESIGN §Topics). Every refusal is logged with
// the user and device (server.ts).
//   publish:   only the uplink `s`
//   subscribe: the device's own inbox `u/{user}` and downlink `d/{device}`, and the presence
//              `p/{user}` of its own user and of those the predicate allows: contacts, 1:1
//              partners and group peers, never across a block (issue 7 §5; mayReadPresence in
//              storage/contacts.ts). A grant is taken back when the relationship ends
//              (chat/presence-access.ts).
// Wildcards, `#`, `$SYS` and anything outside the grammar are refused.
import type { Identity } from './auth/authenticate.ts'
import { parseTopic } from './topics.ts'

export function mayPublish (who: Identity, topic: string): boolean {
  return parseTopic(topic)?.kind === 'uplink'
}

export async function maySubscribe (who: Identity, topic: string,
  mayReadPresence: (reader: number, user: number) => Promise<boolean>): Promise<boolean> {
  const parsed = parseTopic(topic)
  switch (parsed?.kind) {
    case 'inbox': return parsed.user === who.user
    case 'downlink': return parsed.device === who.device
    case 'presence': return parsed.user === who.user || mayReadPresence(who.user, parsed.user)
    default: return false
  }
}
