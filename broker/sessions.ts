// DESIGN 6: the broker subscribes each device session itself, so a device needs no SUBSCRIBE round
// trip and never builds a topic. For a persistent session (clean=false) the subscriptions are
// written to the session store during CONNECT, before aedes restores the session's subscriptions:
// they are live when the CONNACK leaves, and the store keeps queueing for the device while it is
// away. A clean session is subscribed in memory once it is ready.
import type { Aedes, Client, Subscription } from 'aedes'
import type { Identity } from './auth/authenticate.ts'
import type { Logger } from './log.ts'
import { downlinkTopic, inboxTopic } from './topics.ts'

/** The part of an aedes persistence (memory or Redis) this module uses. */
export interface SessionStore {
  subscriptionsByClient (client: { id: string }): Promise<Subscription[]>
  addSubscriptions (client: Client, subs: Subscription[]): Promise<void>
  subscriptionsByTopic (topic: string): Promise<Array<{ clientId: string }>>
}

/**
 * True when a persistent session other than `device`'s is subscribed to `user`'s inbox (connected
 * or away). Clean sessions are not in the store: the caller asks who is connected for those.
 */
export async function otherSessionSubscribed (store: SessionStore, user: number, device: number): Promise<boolean> {
  const self = device.toString(36)
  return (await store.subscriptionsByTopic(inboxTopic(user))).some(sub => sub.clientId !== self)
}

export function sessionTopics (who: Identity): string[] {
  return [inboxTopic(who.user), downlinkTopic(who.device)]
}

export async function prepareSession (store: SessionStore, client: Client, who: Identity): Promise<void> {
  if (client.clean) return
  const existing = new Set((await store.subscriptionsByClient(client)).map(sub => sub.topic))
  for (const topic of sessionTopics(who)) {
    // One topic per call: several at once can hang on Redis persistence (DESIGN pitfalls).
    if (!existing.has(topic)) await store.addSubscriptions(client, [{ topic, qos: 1 }])
  }
}

/**
 * Subscribes clean sessions once aedes reports them ready, and tells when that is done. A device
 * may send a request as soon as it has its CONNACK, which can be before 'clientReady' (with Redis
 * sessions aedes still reads the session's queue then): a reply published before the subscription
 * would be lost. The returned function gives, for a clean session, a promise that settles once its
 * topics are subscribed (null for a persistent one, subscribed before its CONNACK).
 */
export function subscribeCleanSessions (broker: Aedes, identityOf: (client: Client) => Identity | null, log: Logger):
  (client: Client) => Promise<void> | null {
  const subscribed = new WeakMap<Client, { promise: Promise<void>, resolve (): void }>()
  const entry = (client: Client) => {
    let found = subscribed.get(client)
    if (!found) {
      let resolve = () => {}
      const promise = new Promise<void>(settle => { resolve = settle })
      found = { promise, resolve }
      subscribed.set(client, found)
    }
    return found
  }
  broker.on('clientReady', client => {
    const who = identityOf(client)
    if (!client.clean || !who) return
    client.subscribe(sessionTopics(who).map(topic => ({ topic, qos: 1 as const })), err => {
      if (err) log.error('clean session subscribe failed', { device: client.id, error: err.message })
      entry(client).resolve() // a failed subscribe: the requests are served, their replies lost
    })
  })
  return client => client.clean ? entry(client).promise : null
}
