// The aedes hooks: who may connect, publish, subscribe and receive (issue 2 §5, §7), the routing of
// device publishes, and the connection events presence counts. server.ts builds the parts; this
// file is where aedes meets them.
import type { Aedes, Client, PublishPacket } from 'aedes'
import { wmq } from '../schema/generated/chat.js'
import { mayPublish, maySubscribe } from './acl.ts'
import { authenticateHook, identityOf, preConnectHook, type Identity } from './auth/authenticate.ts'
import type { Throttle } from './auth/throttle.ts'
import type { Presence } from './chat/presence.ts'
import { errorReply, replyTo } from './chat/reply.ts'
import type { Logger } from './log.ts'
import { prepareSession, subscribeCleanSessions, type SessionStore } from './sessions.ts'
import type { Db } from './storage/db.ts'
import { touchDevice } from './storage/users.ts'
import { parseTopic } from './topics.ts'

export interface HookParts {
  db: Db
  log: Logger
  tokenSecret: Uint8Array
  throttle: Throttle
  sessions: SessionStore
  presence: Presence
  /** Serves one uplink request (the chat service). */
  handleRequest (who: Identity, payload: Buffer): Promise<void>
  /** May `reader` read the presence of `user`? */
  mayReadPresence (reader: number, user: number): Promise<boolean>
}

/**
 * aedes#994 and aedes#955: aedes drops a packet for a client as a duplicate once that client got a
 * packet the broker numbered later. Publishes overtake each other on their way to the devices (a
 * QoS 0 one skips the offline queue's step; with Redis sessions each step is a round trip), so a
 * presence update or a typing event could cost a device a reply or a message on its connection,
 * and aedes then cleared that packet from the session's queue too: lost until a sync. The check
 * is for overlapping subscriptions (`a/#` and `a/b` both matching), which no device here has: the
 * ACL grants no wildcard, and a topic is one subscription. So no packet is taken for a duplicate.
 */
const NOTHING_SEEN: object = new Proxy({}, { get: () => undefined, set: () => true, deleteProperty: () => true })

export function installHooks (aedes: Aedes, parts: HookParts): void {
  const { log } = parts
  const authenticate = authenticateHook({ db: parts.db, tokenSecret: parts.tokenSecret, throttle: parts.throttle, log })
  const preConnect = preConnectHook(log)
  aedes.preConnect = (client, packet, done) => {
    (client as unknown as { duplicates: object }).duplicates = NOTHING_SEEN
    preConnect(client, packet, done)
  }
  aedes.authenticate = (client, username, password, done) => authenticate(client, username, password, (err, ok) => {
    const who = identityOf(client)
    if (err || !ok || !who) return done(err, ok)
    prepareSession(parts.sessions, client, who).then(() => done(null, true), (error: Error) => {
      log.error('session setup failed', { device: client.id, error: error.message })
      done(Object.assign(new Error('server unavailable'), { returnCode: 3 as const }), false)
    })
  })
  const downlinkReady = subscribeCleanSessions(aedes, identityOf, log)
  /** Runs `work` (which replies) once the device's downlink is subscribed: at once on a persistent session. */
  const onceSubscribed = (client: Client, work: () => Promise<unknown>) => {
    const ready = downlinkReady(client)
    void (ready ? ready.then(work) : work())
  }

  // Device publishes are never routed: the uplink goes to the chat service, anything else is
  // refused with an Error on the device's downlink. MQTT 3.1.1 lets a server acknowledge a
  // PUBLISH it does not authorize [MQTT-3.3.5-2]; the device keeps its connection.
  const notRouted = new WeakSet<PublishPacket>()
  aedes.authorizePublish = (client, packet, done) => {
    if (!client) return done(null) // broker-internal
    const who = identityOf(client)
    if (!who) return done(new Error('publish before authentication'))
    notRouted.add(packet)
    if (mayPublish(who, packet.topic)) {
      // Done at once: aedes writes a QoS 1 request's PUBACK then, in the order the requests came
      // [MQTT-4.6.0-2], and reads the device's next packets once every packet of the last read is
      // done. Waiting for the answer here held back a device's pings and PUBACKs behind two sends
      // waiting for Postgres (send.test.ts, "hold back neither"), and let a quick reply's PUBACK
      // overtake a send's. The reply is the acknowledgement that counts (DESIGN 4).
      const payload = packet.payload as Buffer
      onceSubscribed(client, () => parts.handleRequest(who, payload))
      return done(null)
    }
    log.warn('publish refused', { user: who.user, device: who.device, topic: packet.topic })
    onceSubscribed(client, () => replyTo(aedes, who.device, errorReply(0, wmq.ErrorCode.TOPIC_FORBIDDEN,
      `publish to "${packet.topic}" refused: requests go to "s"`)).catch(() => {}))
    done(null)
  }
  const route = aedes.publish.bind(aedes) as unknown as (packet: PublishPacket, client: Client | null, done: (err?: Error) => void) => void
  Object.assign(aedes, {
    publish (packet: PublishPacket, client: Client | null | ((err?: Error) => void), done?: (err?: Error) => void) {
      if (typeof client === 'function') return route(packet, null, client)
      if (notRouted.has(packet)) return done?.()
      route(packet, client ?? null, done ?? (() => {}))
    },
  })

  // DESIGN 7, no echo: a packet the broker publishes with a `clientId` goes to every subscriber but
  // that device (aedes keeps `clientId` on a packet through fan-out and the offline queue; its
  // MQTT 5 no-local flag is per subscription and cannot serve). Device publishes are never
  // routed, so no other packet carries a `clientId`.
  aedes.authorizeForward = (client, packet) => (packet as { clientId?: string }).clientId === client.id ? null : packet

  aedes.authorizeSubscribe = (client, sub, done) => {
    const who = identityOf(client)
    const verdict = who ? maySubscribe(who, sub.topic, parts.mayReadPresence) : Promise.resolve(false)
    verdict.then(async allowed => {
      if (allowed) {
        const topic = parseTopic(sub.topic)
        if (topic?.kind === 'presence') await parts.presence.ensurePublished(topic.user)
        return done(null, sub)
      }
      log.warn('subscribe refused', { user: who?.user, device: client.id, topic: sub.topic })
      done(null, null) // SUBACK 0x80 for this topic; the connection stays up
    }, (err: Error) => {
      log.error('subscribe check failed', { device: client.id, error: err.message })
      done(null, null)
    })
  }

  // 'client' (registration) pairs with 'clientDisconnect'; 'clientReady' can come after the
  // disconnect of a connection that ends while its queue is being sent.
  aedes.on('client', (client: Client) => {
    const who = identityOf(client)
    if (who) parts.presence.connected(who.user, who.device)
  })
  aedes.on('clientDisconnect', (client: Client) => {
    const who = identityOf(client)
    log.info('device disconnected', { user: who?.user, device: client.id })
    if (!who) return
    parts.presence.disconnected(who.user, who.device)
    touchDevice(parts.db, who.device).catch(() => {})
  })
  aedes.on('clientError', (client: Client, err: Error) => log.debug('client error', { device: client.id, error: err.message }))
  aedes.on('connectionError', (client: Client, err: Error) => log.debug('connection error', { error: err.message }))
}
