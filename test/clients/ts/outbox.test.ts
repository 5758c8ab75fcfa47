// Issue 4 "Shown by": an outbox entry written before a process restart is sent after it, and the
// server stores one copy (DESIGN 3), whether or not the first publish reached the broker.
import t, { type Test } from 'tap'
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { ClosedError, wmq, type SendResult } from '../../../clients/ts/index.ts'
import { fromBase64 } from '../../../clients/ts/wire.ts'
import { fileStore } from '../../../clients/ts/store-file.ts'
import { eachMode, startTestBroker, type TestBroker } from '../../harness.ts'
import { linkTo, sdkClient, seqTexts, urlOf, waitFor } from './sdk.ts'

const rowCount = async (tb: TestBroker) =>
  (await tb.broker.db.query<{ n: number }>('SELECT count(*)::int AS n FROM messages'))[0].n

function storePath (t: Test): string {
  const folder = mkdtempSync(join(tmpdir(), 'wmq-sdk-'))
  t.teardown(() => rmSync(folder, { recursive: true, force: true }))
  return join(folder, 'a1.json')
}

eachMode(t, 'an outbox entry survives a process restart and is stored once', async (t, mode) => {
  const tb = await startTestBroker(t, mode)
  await tb.addUser('alice')
  const bob = await tb.addUser('bob')
  const link = await linkTo(t, tb)
  const path = storePath(t)
  const b1 = await sdkClient(t, tb, 'bob', 'b1')
  const first = await sdkClient(t, tb, 'alice', 'a1', { url: urlOf(link), store: fileStore(path) })
  await Promise.all([first.client.whenSynced(), b1.client.whenSynced()])

  // 1. The publish leaves, the process dies before the SendAck: the broker stores it meanwhile.
  link.stallAll(3000)
  const lost = first.client.send({ user: bob }, 'reached the broker').then(() => null, (err: Error) => err)
  await waitFor(() => first.client.pendingSends()[0]?.attempts === 1, 'published into the stalled link')
  t.equal((await fileStore(path).load())?.outbox.length, 1, 'the entry was in the file before it was published')
  await first.client.close() // "the process ends": nothing waits for the acknowledgement
  t.type(await lost, ClosedError, 'the send of the old process never resolves')
  await waitFor(async () => await rowCount(tb) === 1, 'the stalled publish reaches the broker after the process is gone')

  // 2. The publish never leaves the device: the link resets with it inside.
  const second = await sdkClient(t, tb, 'alice', 'a1', { url: urlOf(link), store: fileStore(path) })
  const sentAfterRestart: SendResult[] = []
  second.client.on('sent', result => sentAfterRestart.push(result))
  await waitFor(() => sentAfterRestart.length === 1, 'the first message acknowledged to the second process')
  await second.client.whenSynced()
  link.stallAll(60_000)
  const neverSent = second.client.send({ user: bob }, 'never left the phone')
  neverSent.catch(() => {})
  await waitFor(() => second.client.pendingSends()[0]?.attempts === 1, 'the second message published into the stalled link')
  await second.client.close()
  link.resetAll() // what was in the link is gone
  t.equal(await rowCount(tb), 1, 'the second message never reached the broker')
  const left = (await fileStore(path).load())?.outbox ?? []
  t.same(left.map(s => wmq.Content.decode(fromBase64(s.content)).text), ['never left the phone'], 'only it is left in the file')

  // 3. A third process: the entry goes out after the restart, once.
  const third = await sdkClient(t, tb, 'alice', 'a1', { url: urlOf(link), store: fileStore(path) })
  const sent: SendResult[] = []
  third.client.on('sent', result => sent.push(result))
  await waitFor(() => sent.length === 1 && third.client.pendingSends().length === 0, 'the entry sent after the restart')
  await waitFor(async () => (await fileStore(path).load())?.outbox.length === 0, 'the outbox file emptied')
  await waitFor(() => b1.messages.length === 2, 'both messages on the receiver')
  await b1.client.ping()

  t.same(sentAfterRestart.map(r => r.seq), [1], 'the message of the first process was acknowledged to the second: seq 1')
  t.same(sent.map(r => r.seq), [2], 'the message of the second process to the third: seq 2')
  t.equal(await rowCount(tb), 2, 'the broker stored each message once')
  t.same(seqTexts(b1.messages), [[1, 'reached the broker'], [2, 'never left the phone']], 'the receiver saw each once, in order')
  t.same(seqTexts(second.messages), [[1, 'reached the broker']], "the sender's timeline in the second process: its message, once")
  t.same(seqTexts(third.messages), [[2, 'never left the phone']], 'in the third: the new one; seq 1 was applied before and is not replayed')
})
