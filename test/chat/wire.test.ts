// broker/chat/wire.ts assembles messages from stored content bytes by hand; the generated codec
// must read back exactly what a plain encode would give.
import t from 'tap'
import { conversationPageBytes, deliveryBytes, historyBytes, messageBytes } from '../../broker/chat/wire.ts'
import type { StoredMessage } from '../../broker/storage/messages.ts'
import { wmq } from '../../schema/generated/chat.js'

const content = wmq.Content.encode({ text: 'twenty characters!!!' }).finish()
const stored: StoredMessage = { conversation: 7, seq: 300, sender: 42, clientMsgId: new Uint8Array([1, 2, 3, 4, 5, 6, 7, 8]), time: 1_763_700_000_000, content, recalled: false, isGroup: false }

t.test('a delivery decodes to the message with its content', async t => {
  const downlink = wmq.Downlink.decode(deliveryBytes(messageBytes(stored)))
  t.same(wmq.Downlink.toObject(downlink, { longs: Number, bytes: Array }), {
    message: { conversation: 7, seq: 300, sender: 42, time: 1_763_700_000_000, content: { text: 'twenty characters!!!' } },
  })
  const own = wmq.Downlink.decode(deliveryBytes(messageBytes(stored, { peer: 9, withClientMsgId: true }))).message!
  t.same([Number(own.peer), [...own.clientMsgId!]], [9, [1, 2, 3, 4, 5, 6, 7, 8]], 'the sender\'s copy adds peer and client_msg_id')
  const recalled = wmq.Downlink.decode(deliveryBytes(messageBytes({ ...stored, content: new Uint8Array(0), recalled: true }))).message!
  t.same([recalled.recalled, recalled.content], [true, null], 'a recalled message has no content')
  t.ok(deliveryBytes(messageBytes(stored)).length < 50, 'a 20-character text delivery is compact')
})

t.test('pages', async t => {
  const history = wmq.Downlink.decode(historyBytes(5, { conversation: 7, more: true, lastSeq: 301 }, [messageBytes(stored), messageBytes({ ...stored, seq: 301 })]))
  t.same([history.ref, Number(history.history!.conversation), history.history!.more, history.history!.messages!.map(m => Number(m.seq)),
    history.history!.messages![1].content!.text], [5, 7, true, [300, 301], 'twenty characters!!!'])
  const page = wmq.Downlink.decode(conversationPageBytes(6, { cursor: Uint8Array.of(1, 2, 3), more: false }, [
    { summary: { conversation: 7, lastSeq: 300, unread: 2, peer: 42 }, last: messageBytes(stored) },
    { summary: { conversation: 8, lastSeq: 0 }, last: null },
  ]))
  const [first, second] = page.conversations!.conversations!
  t.same([page.ref, [...page.conversations!.cursor!], Number(first.unread), first.last!.content!.text, second.last],
    [6, [1, 2, 3], 2, 'twenty characters!!!', null])
})
