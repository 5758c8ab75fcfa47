// Presence through the SDK (retained on p/{user}, QoS 0, subscribed again after every connect) and
// a refused CONNECT (no retries for wrong credentials).
import t from 'tap'
import { ConnectRefusedError, ErrorCode, type Presence } from '../../../clients/ts/index.ts'
import { eachMode, startTestBroker } from '../../harness.ts'
import { sdkClient, waitFor } from './sdk.ts'

eachMode(t, 'presence and refusals', async (t, mode) => {
  const tb = await startTestBroker(t, mode)
  await tb.addUser('alice')
  const bob = await tb.addUser('bob')
  const carol = await tb.addUser('carol')
  const a1 = await sdkClient(t, tb, 'alice', 'a1')
  await a1.client.whenSynced()
  await a1.client.send({ user: bob }, 'hi')
  const b1 = await sdkClient(t, tb, 'bob', 'b1')
  await b1.client.whenSynced()
  const seen: Presence[] = []
  a1.client.on('presence', p => seen.push(p))
  await a1.client.subscribePresence(bob)
  await waitFor(() => seen.length > 0, "bob's retained presence")
  t.match(seen[0], { user: bob, online: true }, 'bob is online (the retained state)')
  await b1.client.close()
  await waitFor(() => seen.at(-1)?.online === false, 'bob offline')
  t.ok(seen.at(-1)!.lastSeen > 0, 'with last seen')
  // Presence is QoS 0, never queued: after a reconnect the SDK subscribes again for the current state.
  const before = seen.length
  const connects = a1.client.stats().connects
  a1.client.reconnectNow()
  await waitFor(() => a1.client.stats().connects > connects && seen.length > before, 'the retained state again after the reconnect')
  t.match(seen.at(-1), { user: bob, online: false }, 'bob still offline')
  await t.rejects(a1.client.subscribePresence(carol), { code: ErrorCode.FORBIDDEN }, 'a stranger\'s presence is refused')

  const wrong = await sdkClient(t, tb, 'alice', 'a9', { token: undefined, password: 'not the password' })
  await waitFor(() => wrong.errors.length > 0, 'the refusal')
  t.match(wrong.errors[0], ConnectRefusedError, 'wrong credentials: ConnectRefusedError')
  t.match(wrong.errors[0], { returnCode: 4 })
  t.equal(wrong.client.state, 'offline', 'and no retry')
})
