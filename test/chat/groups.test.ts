// Issue 3 §4: groups, roles, and membership changes as system messages in the group's sequence.
import t from 'tap'
import { ask, closeAtEnd, connectDevice, eachMode, sendText, startTestBroker, wmq, type Device, type TestBroker } from '../harness.ts'

async function users (tb: TestBroker, logins: string[]): Promise<number[]> {
  const ids: number[] = []
  for (const login of logins) ids.push(await tb.addUser(login))
  return ids
}

const connect = async (tb: TestBroker, login: string, device: string) =>
  connectDevice(tb.mqttUrl, { clientId: device, username: login, password: await tb.token(login) })

/** The system events a device received for a group, in arrival order, as `kind:detail`. */
const systemLog = (device: Device, group: number) => device.received
  .map(r => r.downlink.message)
  .filter(m => m && Number(m.conversation) === group && m.content?.system)
  .map(m => {
    const s = m!.content!.system!
    return `${m!.seq}:${s.event}${s.event === 'renamed' ? `=${s.renamed}` : ''}`
  })

eachMode(t, 'create, roles, add, remove, leave, rename', async (t, mode) => {
  const tb = await startTestBroker(t, mode, { maxGroupSize: 4 })
  const [alice, bob, carol, dave, erin] = await users(tb, ['alice', 'bob', 'carol', 'dave', 'erin'])
  const [a1, b1, c1, d1] = [await connect(tb, 'alice', 'a1'), await connect(tb, 'bob', 'b1'), await connect(tb, 'carol', 'c1'), await connect(tb, 'dave', 'd1')]
  closeAtEnd(t, a1, b1, c1, d1)

  const created = await ask(a1, { groupCreate: { name: ' Hikers ', members: [bob, carol] } })
  const group = Number(created.group!.group)
  t.same({ name: created.group!.name, members: created.group!.members, role: created.group!.role },
    { name: 'Hikers', members: 3, role: wmq.Role.OWNER }, 'the creator owns a group of three')
  const hello = await b1.next(d => d.message?.content?.system?.event === 'created', 'the created event on b1')
  t.same({ seq: Number(hello.message!.seq), group: hello.message!.group, members: hello.message!.content!.system!.created!.members!.map(Number) },
    { seq: 1, group: true, members: [alice, bob, carol] }, 'members get the creation as seq 1 of the group')

  t.equal((await ask(b1, { groupUpdate: { group, add: { users: [dave] } } })).error?.code, wmq.ErrorCode.FORBIDDEN, 'a member may not add')
  t.equal((await ask(a1, { groupUpdate: { group, role: { user: bob, role: wmq.Role.ADMIN } } })).group?.role, wmq.Role.OWNER, 'the owner makes bob an admin')
  t.equal((await ask(b1, { groupUpdate: { group, add: { users: [dave] } } })).group?.members, 4, 'the admin adds dave')
  t.equal((await ask(b1, { groupUpdate: { group, add: { users: [erin] } } })).error?.code, wmq.ErrorCode.GROUP_FULL, 'a fifth member is over MAX_GROUP_SIZE')
  t.equal((await ask(b1, { groupUpdate: { group, remove: { users: [alice] } } })).error?.code, wmq.ErrorCode.FORBIDDEN, 'nobody removes the owner')
  t.equal((await ask(b1, { groupUpdate: { group, remove: { users: [carol] } } })).group?.members, 3, 'the admin removes carol')
  t.equal((await ask(b1, { groupUpdate: { group, add: { users: [999] } } })).error?.code, wmq.ErrorCode.UNKNOWN_USER, 'only users can be added')
  t.equal((await ask(c1, { groupUpdate: { group, rename: 'Mine' } })).error?.code, wmq.ErrorCode.NOT_MEMBER, 'carol is out')
  t.equal((await sendText(c1, { group }, 'still here?')).error?.code, wmq.ErrorCode.NOT_MEMBER, 'and may not send')
  t.equal((await ask(b1, { groupUpdate: { group, rename: 'Summit' } })).group?.name, 'Summit', 'the admin renames it')
  t.equal((await ask(d1, { groupUpdate: { group, rename: '' } })).error?.code, wmq.ErrorCode.FORBIDDEN, 'a member may not rename')
  t.equal((await ask(a1, { groupUpdate: { group, leave: true } })).group?.members, 2, 'the owner leaves')

  const members = await ask(d1, { groupMembers: { group } })
  t.same(members.members!.members!.map(m => [Number(m.user), m.role, m.login]), [[bob, wmq.Role.OWNER, 'bob'], [dave, wmq.Role.MEMBER, 'dave']],
    'the admin inherits the ownership')
  t.equal((await ask(c1, { groupMembers: { group } })).error?.code, wmq.ErrorCode.NOT_MEMBER, 'a former member cannot list members')
  t.same((await ask(d1, { groupList: {} })).groups!.groups!.map(g => [Number(g.group), g.name, g.members]), [[group, 'Summit', 2]], 'dave lists his groups')
  t.same((await ask(c1, { groupList: {} })).groups!.groups, [], 'carol has none now')
  t.equal((await ask(a1, { groupUpdate: { group: 999, leave: true } })).error?.code, wmq.ErrorCode.UNKNOWN_GROUP, 'an unknown group')
  t.equal((await ask(a1, { groupCreate: { name: '', members: [] } })).error?.code, wmq.ErrorCode.INVALID_ARGUMENT, 'a group needs a name')
  t.equal((await ask(a1, { groupCreate: { name: 'x', members: [12345] } })).error?.code, wmq.ErrorCode.UNKNOWN_USER, 'members must exist')

  // Everyone saw the changes that concern them, in seq order.
  // seq 1 created, 2 bob made admin, 3 dave added, 4 carol removed, 5 renamed, 6 alice left, 7 bob owner
  await d1.next(d => d.message?.content?.system?.event === 'role' && Number(d.message.seq) === 7, 'the ownership change on d1')
  t.same(systemLog(d1, group), ['3:added', '4:removed', '5:renamed=Summit', '6:left', '7:role'], 'dave sees every change since he joined')
  await c1.next(d => d.message?.content?.system?.event === 'removed', 'carol learns she was removed')
  t.same(systemLog(c1, group), ['1:created', '2:role', '3:added', '4:removed'], 'carol sees the changes up to her removal')
  const history = await ask(c1, { syncHistory: { conversation: group } })
  t.same(history.history!.messages!.map(m => Number(m.seq)), [1, 2, 3, 4], "carol's history stops where she was removed")
  const davesHistory = await ask(d1, { syncHistory: { conversation: group } })
  t.same(davesHistory.history!.messages!.map(m => Number(m.seq)), [3, 4, 5, 6, 7], "dave's starts where he was added")
})

eachMode(t, '20 concurrent senders into a group of 50', async (t, mode) => {
  const tb = await startTestBroker(t, mode)
  const logins = Array.from({ length: 50 }, (_, i) => `user${i}`)
  const ids = await users(tb, logins)
  const devices = await Promise.all(logins.map((login, i) => connect(tb, login, `d${i}`)))
  closeAtEnd(t, ...devices)
  const group = Number((await ask(devices[0], { groupCreate: { name: 'crowd', members: ids } })).group!.group)

  const perSender = 5
  const senders = devices.slice(0, 20)
  const acks = await Promise.all(senders.map((device, i) =>
    Promise.all(Array.from({ length: perSender }, (_, k) => sendText(device, { group }, `m${i}-${k}`)))))
  const seqs = acks.flat().map(a => Number(a.sendAck!.seq)).sort((a, b) => a - b)
  const total = senders.length * perSender
  t.same(seqs, Array.from({ length: total }, (_, i) => i + 2), `seqs 2..${total + 1} (1 is the creation): no gap, no duplicate`)
  for (const [i, senderAcks] of acks.entries()) {
    const mine = senderAcks.map(a => Number(a.sendAck!.seq))
    if (mine.some((seq, k) => k > 0 && seq < mine[k - 1])) t.fail(`sender ${i}'s messages were stored out of its order: ${mine}`)
  }
  t.pass('each sender\'s messages are stored in the order it sent them')

  const last = total + 1
  const orders = await Promise.all(devices.map(async (device, i) => {
    const own = i < senders.length ? perSender : 0
    await device.until(() => device.received.filter(r => r.downlink.message && Number(r.downlink.message.seq) > 1).length >= total - own,
      `all ${total - own} messages on device ${i}`)
    return device.received.map(r => r.downlink.message).filter(m => m && Number(m.seq) > 1).map(m => Number(m!.seq))
  }))
  const sorted = orders.map(seqsOnDevice => [...seqsOnDevice].sort((a, b) => a - b))
  t.ok(sorted.every((s, i) => s.length === total - (i < senders.length ? perSender : 0) && new Set(s).size === s.length && s.at(-1)! <= last),
    'every member device got every message of the others exactly once')
  const inOrder = orders.filter(o => o.every((seq, k) => k === 0 || seq > o[k - 1])).length
  t.equal(inOrder, devices.length, `every device received them in seq order (${inOrder}/${devices.length})`)
})
