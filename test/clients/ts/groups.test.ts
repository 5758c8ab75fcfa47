// The SDK's group calls against a real broker: each change resolves with the group, and arrives on
// every member's device as a system message in the group's order, with a `group` event.
import t from 'tap'
import { ErrorCode, Role } from '../../../clients/ts/index.ts'
import { eachMode, startTestBroker } from '../../harness.ts'
import { sdkClient, waitFor } from './sdk.ts'

eachMode(t, 'groups: create, change, list; changes arrive as system messages in order', async (t, mode) => {
  const tb = await startTestBroker(t, mode)
  const alice = await tb.addUser('alice')
  const bob = await tb.addUser('bob')
  const carol = await tb.addUser('carol')
  const a1 = await sdkClient(t, tb, 'alice', 'a1')
  const b1 = await sdkClient(t, tb, 'bob', 'b1')
  await Promise.all([a1, b1].map(d => d.client.whenSynced()))
  const changes: string[] = []
  b1.client.on('group', change => changes.push(Object.keys(change.event).filter(k => k !== 'actor').join()))

  const group = await a1.client.createGroup('trip', [bob])
  t.match(group, { name: 'trip', members: 2, role: Role.OWNER }, 'createGroup resolves with the group')
  await a1.client.send({ group: group.group }, 'who comes?')
  t.match(await a1.client.addMembers(group.group, [carol]), { members: 3 })
  t.match(await a1.client.renameGroup(group.group, 'trip 2'), { name: 'trip 2' })
  t.match(await a1.client.setRole(group.group, bob, Role.ADMIN), { role: Role.OWNER })
  await waitFor(() => b1.messages.length === 5, 'five group messages on b1')
  t.same(b1.messages.map(m => m.seq), [1, 2, 3, 4, 5], 'in the group\'s order')
  t.same(changes, ['created', 'added', 'renamed', 'role'], 'group events for the system messages, in order')
  t.match(await b1.client.groups(), [{ group: group.group, name: 'trip 2', role: Role.ADMIN }])
  t.same((await b1.client.members(group.group)).map(m => [m.user, m.login]).sort(), [[alice, 'alice'], [bob, 'bob'], [carol, 'carol']])
  t.match(await b1.client.leaveGroup(group.group), { members: 2 })
  await t.rejects(b1.client.members(group.group), { code: ErrorCode.NOT_MEMBER }, 'gone')
})
