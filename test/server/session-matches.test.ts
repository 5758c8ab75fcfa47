// The memory session store keeps which sessions each topic reaches until its subscriptions change
// (session-backends.ts, rememberMatches): asked on every QoS 1 publish and every send, the answer
// must never be older than the last subscribe, unsubscribe or clean session.
import { createRequire } from 'node:module'
import t from 'tap'
import { rememberMatches } from '../../broker/session-backends.ts'

interface Store {
  subscriptionsByTopic (topic: string): Promise<Array<{ clientId: string }>>
  addSubscriptions (client: { id: string }, subs: Array<{ topic: string, qos: number }>): Promise<void>
  removeSubscriptions (client: { id: string }, topics: string[]): Promise<void>
  cleanSubscriptions (client: { id: string }): Promise<void>
}

const memoryPersistence = createRequire(import.meta.url)('aedes-persistence') as () => Store
const reached = async (store: Store, topic: string) => (await store.subscriptionsByTopic(topic)).map(s => s.clientId).sort()

t.test('a topic\'s sessions are remembered until the subscriptions change, and found again after', async (t) => {
  const store = rememberMatches(memoryPersistence())
  t.same(await reached(store, 'u/1'), [], 'nobody at first')
  const first = await store.subscriptionsByTopic('u/1')
  t.equal(await store.subscriptionsByTopic('u/1'), first, 'asked again with nothing changed: the same answer, not a new walk')

  await store.addSubscriptions({ id: 'a1' }, [{ topic: 'u/1', qos: 1 }])
  t.same(await reached(store, 'u/1'), ['a1'], 'a subscribe is seen at once')
  await store.addSubscriptions({ id: 'a2' }, [{ topic: 'u/1', qos: 1 }, { topic: 'd/a2', qos: 1 }])
  t.same(await reached(store, 'u/1'), ['a1', 'a2'], 'a second session of the user too')
  t.same(await reached(store, 'd/a2'), ['a2'])

  await store.removeSubscriptions({ id: 'a1' }, ['u/1'])
  t.same(await reached(store, 'u/1'), ['a2'], 'an unsubscribe is seen at once')
  await store.cleanSubscriptions({ id: 'a2' })
  t.same(await reached(store, 'u/1'), [], 'a cleaned session is gone from every topic')
  t.same(await reached(store, 'd/a2'), [])
})

t.test('an answer found while a change was under way is not kept', async (t) => {
  const store = rememberMatches(memoryPersistence())
  const asked = store.subscriptionsByTopic('u/1') // begins before the subscribe, ends after it began
  const subscribing = store.addSubscriptions({ id: 'a1' }, [{ topic: 'u/1', qos: 1 }])
  await asked
  await subscribing
  t.same(await reached(store, 'u/1'), ['a1'], 'the next question sees the subscribe')
})

t.test('a change asked for with a callback still calls back, and is seen after', async (t) => {
  const store = rememberMatches(memoryPersistence()) as Store & { addSubscriptions (client: object, subs: object[], cb: () => void): void }
  const ready = new Promise<void>(resolve => (store as unknown as { once (event: string, f: () => void): void }).once('ready', resolve))
  Object.assign(store, { broker: { id: 'test' } }) // as aedes does; callbacks wait for it
  await ready
  t.same(await reached(store, 'u/1'), [])
  await new Promise<void>(resolve => store.addSubscriptions({ id: 'a1' }, [{ topic: 'u/1', qos: 1 }], resolve))
  t.same(await reached(store, 'u/1'), ['a1'])
})
