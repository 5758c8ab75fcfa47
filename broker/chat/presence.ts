// Presence (issue 3 §10, DESIGN §Topics): a user is online while any of their devices is
// connected; the broker publishes Presence{online, last_seen} retained at QoS 0 on `p/{user}`.
// Going offline waits a short grace, so a device that reconnects at once (a session taken over on
// a flaky link) does not make its user flap. Readable by 1:1 partners and group peers (acl.ts).
import type { Aedes } from 'aedes'
import { wmq } from '../../schema/generated/chat.js'
import type { Logger } from '../log.ts'
import { presenceTopic } from '../topics.ts'
import { publishBytes } from './reply.ts'

export const OFFLINE_GRACE_MS = 3000

export interface Presence {
  connected (user: number, device: number): void
  disconnected (user: number, device: number): void
  /** Publishes the user's presence if this broker has not yet (after a start): for a new reader. */
  ensurePublished (user: number): void
  close (): void
}

export function createPresence (broker: Aedes, log: Logger, lastSeenOf: (user: number) => Promise<number>): Presence {
  const online = new Map<number, Map<number, number>>() // user -> device -> connections
  const pendingOffline = new Map<number, NodeJS.Timeout>()
  const published = new Set<number>()

  const publish = (user: number, presence: wmq.IPresence) => {
    published.add(user)
    const bytes = Buffer.from(wmq.Presence.encode(presence).finish())
    publishBytes(broker, presenceTopic(user), bytes, { qos: 0, retain: true })
      .catch(err => log.warn('presence publish failed', { user, error: (err as Error).message }))
  }

  return {
    connected (user, device) {
      const devices = online.get(user) ?? new Map<number, number>()
      const wasOnline = devices.size > 0 || pendingOffline.has(user)
      devices.set(device, (devices.get(device) ?? 0) + 1)
      online.set(user, devices)
      clearTimeout(pendingOffline.get(user))
      pendingOffline.delete(user)
      if (!wasOnline || !published.has(user)) publish(user, { online: true })
    },
    disconnected (user, device) {
      const devices = online.get(user)
      const count = devices?.get(device) ?? 0
      if (!devices || count === 0) return
      if (count > 1) devices.set(device, count - 1)
      else devices.delete(device)
      if (devices.size > 0) return
      online.delete(user)
      const timer = setTimeout(() => {
        pendingOffline.delete(user)
        if (!online.has(user)) publish(user, { online: false, lastSeen: Date.now() })
      }, OFFLINE_GRACE_MS)
      timer.unref()
      pendingOffline.set(user, timer)
    },
    ensurePublished (user) {
      if (published.has(user)) return
      published.add(user)
      if (online.has(user)) return publish(user, { online: true })
      lastSeenOf(user).then(lastSeen => { if (!online.has(user)) publish(user, { online: false, lastSeen }) },
        err => log.warn('presence lookup failed', { user, error: (err as Error).message }))
    },
    close () {
      for (const timer of pendingOffline.values()) clearTimeout(timer)
      pendingOffline.clear()
    },
  }
}
