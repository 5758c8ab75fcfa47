// Taking presence away (issue 7 §4-5). The ACL checks a SUBSCRIBE to p/{user} once (acl.ts), and a
// persistent session keeps the subscription across reconnects. When a change means that two users
// may no longer read each other's presence (a block, contacts removed with no conversation shared),
// their devices' subscriptions to each other's presence are removed: from a client connected to
// this node and from the session store. A device connected to another node keeps its live
// subscription until it reconnects (no cross-node signal exists yet).
import type { Aedes, Client, UnsubscribePacket } from 'aedes'
import type { Logger } from '../log.ts'
import type { Queryable } from '../storage/db.ts'
import { mayReadPresence } from '../storage/contacts.ts'
import { encodeId, presenceTopic } from '../topics.ts'

/** What aedes keeps but does not declare: its local clients and its session store. */
interface SessionInternals {
  clients: Record<string, Client | undefined>
  persistence: {
    subscriptionsByClient (client: { id: string }): Promise<Array<{ topic: string }>>
    removeSubscriptions (client: { id: string }, topics: string[]): Promise<unknown>
  }
}

async function unsubscribeDevices (broker: Aedes, db: Queryable, reader: number, user: number): Promise<void> {
  const internals = broker as unknown as SessionInternals
  const topic = presenceTopic(user)
  const devices = await db.query<{ id: number }>('SELECT id FROM devices WHERE user_id = $1', [reader])
  for (const { id } of devices) {
    const clientId = encodeId(id)
    const client = internals.clients[clientId]
    if (client) {
      // No messageId: aedes drops the live subscription and sends the device no UNSUBACK.
      const packet: UnsubscribePacket = { cmd: 'unsubscribe', unsubscriptions: [topic] }
      await new Promise<void>((resolve, reject) => client.unsubscribe(packet, err => err ? reject(err) : resolve()))
    }
    const stored = await internals.persistence.subscriptionsByClient({ id: clientId })
    if (stored.some(sub => sub.topic === topic)) await internals.persistence.removeSubscriptions({ id: clientId }, [topic])
  }
}

/** After a change between `a` and `b`: if they may no longer read each other's presence, they stop. */
export async function reconsiderPresence (broker: Aedes, db: Queryable, log: Logger, a: number, b: number): Promise<void> {
  try {
    if (await mayReadPresence(db, a, b)) return
    await unsubscribeDevices(broker, db, a, b)
    await unsubscribeDevices(broker, db, b, a)
  } catch (err) {
    log.error('presence revocation failed', { a, b, error: (err as Error).message })
  }
}
