// clients/ts/ordering.ts on its own: exactly once and in seq order whatever order copies arrive in
// (DESIGN 5), gaps pulled after a wait, a complete pull skipping what the user will never get.
// The history it pulls from is a list in the test; the SDK tests against a broker are beside this.
import t from 'tap'
import { ChatError } from '../../../clients/ts/errors.ts'
import { Ordering, type Fetched } from '../../../clients/ts/ordering.ts'
import { wmq, type ChatMessage } from '../../../clients/ts/wire.ts'
import { waitFor } from './sdk.ts'

const message = (conversation: number, seq: number): ChatMessage => ({
  conversation, seq, sender: 2, mine: false, time: seq, content: { text: `m${seq}` }, group: false, peer: 2, recalled: false, clientMsgId: '',
})

interface Setup {
  ordering: Ordering
  delivered: Array<[number, number]>
  messages: ChatMessage[]
  pulls: Array<[number, number]>
  advanced: Map<number, number>
}

/** An Ordering over a history of `stored` seqs per conversation (all of them, unless a seq is missing). */
function setup (stored: Record<number, number[]>, options: { ready?: boolean, applied?: Record<string, number>, pageSize?: number } = {}): Setup {
  const delivered: Array<[number, number]> = []
  const messages: ChatMessage[] = []
  const pulls: Array<[number, number]> = []
  const advanced = new Map<number, number>()
  const ordering = new Ordering({
    gapWaitMs: 20,
    async fetchAfter (conversation, afterSeq): Promise<Fetched> {
      pulls.push([conversation, afterSeq])
      const seqs = stored[conversation]
      if (!seqs) throw new ChatError(wmq.ErrorCode.UNKNOWN_CONVERSATION, 'no such conversation')
      const after = seqs.filter(seq => seq > afterSeq)
      const page = after.slice(0, options.pageSize ?? 100)
      return { messages: page.map(seq => message(conversation, seq)), more: after.length > page.length, lastSeq: Math.max(0, ...seqs) }
    },
    deliver: m => { delivered.push([m.conversation, m.seq]); messages.push(m) },
    advanced: (conversation, seq) => advanced.set(conversation, seq),
    failed: () => {},
  }, options.applied ?? {}, options.ready ?? true)
  t.teardown(() => ordering.close())
  return { ordering, delivered, messages, pulls, advanced }
}

t.test('duplicates are dropped and early arrivals wait for their turn', async t => {
  const { ordering, delivered, pulls } = setup({ 1: [1, 2, 3, 4] }, { applied: { 1: 0 } })
  for (const seq of [1, 1, 3, 2, 3, 4, 2]) ordering.receive(message(1, seq))
  t.same(delivered, [[1, 1], [1, 2], [1, 3], [1, 4]], 'each seq once, in order')
  t.equal(ordering.duplicates, 3, 'three copies dropped')
  t.same(pulls, [], 'a gap closed by the missing message itself needs no pull')
})

t.test('a gap that stays is pulled after the wait, page by page, and applied in order', async t => {
  const { ordering, delivered, pulls, advanced } = setup({ 1: [1, 2, 3, 4, 5, 6, 7] }, { applied: { 1: 1 }, pageSize: 2 })
  ordering.receive(message(1, 7))
  t.same(delivered, [], 'seq 7 is held back behind 2..6')
  await waitFor(() => delivered.length === 6, 'the gap filled')
  t.same(delivered.map(([, seq]) => seq), [2, 3, 4, 5, 6, 7], 'applied in seq order, 7 once')
  t.same(pulls, [[1, 1], [1, 3], [1, 5]], 'pulled after the last applied seq, then after each page while `more`')
  t.equal(advanced.get(1), 7, 'the last applied seq is reported for the store')
})

t.test('a complete pull skips seqs the user will never get (deleted for them)', async t => {
  const { ordering, delivered } = setup({ 1: [1, 2, 4, 6] }, { applied: { 1: 0 } }) // 3 and 5 deleted for this user
  ordering.receive(message(1, 1))
  ordering.receive(message(1, 6))
  await waitFor(() => delivered.length === 4, 'the gap filled')
  t.same(delivered.map(([, seq]) => seq), [1, 2, 4, 6])
  ordering.receive(message(1, 7))
  t.same(delivered.at(-1), [1, 7], 'and the next one follows at once')
})

t.test('a new device holds unknown conversations until its first catch-up sets where each starts', async t => {
  const { ordering, delivered, pulls } = setup({ 1: [1, 2, 3, 4, 5, 6], 2: [1, 2, 3] }, { ready: false })
  ordering.receive(message(1, 6))
  ordering.receive(message(2, 3))
  t.same(delivered, [], 'nothing is applied before the catch-up')
  ordering.setBaseline(1, 5) // conversation 1 was at seq 5 when listed: 6 is new
  t.same(delivered, [[1, 6]], 'conversation 1 starts after its listed last seq')
  ordering.markReady() // conversation 2 was not listed: it is new, from seq 0
  await waitFor(() => delivered.length === 4, 'conversation 2 pulled')
  t.same(delivered.slice(1), [[2, 1], [2, 2], [2, 3]], 'a conversation new to the device starts at seq 0')
  t.same(pulls, [[2, 0]], 'pulled at once, with no gap wait')
  ordering.receive(message(3, 1))
  t.same(delivered.at(-1), [3, 1], 'a new conversation whose first message is seq 1 needs no pull')
})

t.test('a pull the broker refuses releases what is held', async t => {
  const { ordering, delivered } = setup({}, { applied: { 9: 3 } })
  ordering.receive(message(9, 6))
  ordering.receive(message(9, 5))
  await waitFor(() => delivered.length === 2, 'held messages released')
  t.same(delivered, [[9, 5], [9, 6]], 'in order, rather than held forever')
})

t.test('a recall of a held message applies it as recalled', async t => {
  const { ordering, delivered, messages } = setup({ 1: [1, 2, 3] }, { applied: { 1: 1 } })
  ordering.receive(message(1, 3))
  ordering.markRecalled(1, 3)
  ordering.receive(message(1, 2))
  t.same(delivered, [[1, 2], [1, 3]])
  t.same(messages.map(m => [m.recalled, m.content]), [[false, { text: 'm2' }], [true, null]], 'seq 3 arrives recalled, without its content')
})
