// Presence (issue 3 §10, DESIGN §Topics): a user is online while any of their devices is
// connected, on any node (the counts are in SharedState: Redis with several nodes); the broker
// publishes Presence{online, last_seen} retained at QoS 0 on `p/{user}`. Going offline waits a
// short grace and checks again, so a device that reconnects at once (a session taken over on a
// flaky link, perhaps on another node) does not make its user flap. Readable by 1:1 partners and
// group peers (acl.ts).
import type { Aedes } from 'aedes'
import { wmq } from '../../schema/generated/chat.js'
import type { Logger } from '../log.ts'
import type { SharedState } from '../shared-state.ts'
import { presenceTopic } from '../topics.ts'
import { publishBytes } from './reply.ts'

export const OFFLINE_GRACE_MS = 3000

export interface Presence {
  connected (user: number, device: number): void
  disconnected (user: number, device: number): void
  /**
   * Publishes the user's retained presence if this broker has not yet (after a start), resolving
   * once it is stored: the new reader's SUBSCRIBE is granted after, so aedes hands it over.
   */
  ensurePublished (user: number): Promise<void>
  close (): void
}

export function createPresence (broker: Aedes, state: SharedState, log: Logger, lastSeenOf: (user: number) => Promise<number>): Presence {
  const pendingOffline = new Map<number, NodeJS.Timeout>()
  const published = new Set<number>()
  const failed = (user: number) => (err: Error) => log.warn('presence update failed', { user, error: err.message })
  // A closing broker publishes no more presence: aedes closes after this, and its devices' users
  // are made offline by the other nodes (SharedState's orphans) or by the next start.
  let closed = false

  const publish = (user: number, presence: wmq.IPresence): Promise<void> => {
    if (closed) return Promise.resolve()
    published.add(user)
    const bytes = Buffer.from(wmq.Presence.encode(presence).finish())
    return publishBytes(broker, presenceTopic(user), bytes, { qos: 0, retain: true }).catch(failed(user))
  }
  const offline = (user: number) => publish(user, { online: false, lastSeen: Date.now() })
  state.onOrphans(users => users.forEach(offline))

  return {
    connected (user, device) {
      clearTimeout(pendingOffline.get(user))
      pendingOffline.delete(user)
      state.connect(user, device).then(cameOnline => {
        if (cameOnline) publish(user, { online: true }) // a new reader gets it from ensurePublished
      }).catch(failed(user))
    },
    disconnected (user, device) {
      state.disconnect(user, device).then(gone => {
        if (!gone || closed || pendingOffline.has(user)) return
        const timer = setTimeout(() => {
          pendingOffline.delete(user)
          state.isOnline(user).then(online => { if (!online) offline(user) }).catch(failed(user))
        }, OFFLINE_GRACE_MS)
        timer.unref()
        pendingOffline.set(user, timer)
      }).catch(failed(user))
    },
    async ensurePublished (user) {
      if (published.has(user)) return
      published.add(user)
      try {
        const online = await state.isOnline(user)
        await publish(user, online ? { online: true } : { online: false, lastSeen: await lastSeenOf(user) })
      } catch (err) {
        failed(user)(err as Error)
      }
    },
    close () {
      closed = true
      for (const timer of pendingOffline.values()) clearTimeout(timer)
      pendingOffline.clear()
    },
  }
}
