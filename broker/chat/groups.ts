// Groups (issue 3 §4): create, add and remove members, leave, rename, change roles, list my groups,
// list members. Roles: the owner may do everything, admins add and remove members and rename,
// members may leave. Each change is a system message in the group's own sequence, delivered to
// everyone it concerns (those who leave learn it too), so every device sees changes in order.
import { wmq } from '../../schema/generated/chat.js'
import type { Identity } from '../auth/authenticate.ts'
import type { Queryable } from '../storage/db.ts'
import {
  ADMIN, MEMBER, OWNER, addMembers, appendSystemMessage, existingUsers, groupsOf, insertGroup, lockGroup,
  membersOf, removeMembers, renameGroup, setRole,
} from '../storage/groups.ts'
import type { StoredMessage } from '../storage/messages.ts'
import type { ChatContext } from './context.ts'
import { deliverMessage } from './deliver.ts'
import { RequestError } from './errors.ts'
import { requireMayAdd } from './policy.ts'
import type { DownlinkEvent } from './reply.ts'

const { INVALID_ARGUMENT, UNKNOWN_USER, UNKNOWN_GROUP, NOT_MEMBER, FORBIDDEN, GROUP_FULL } = wmq.ErrorCode
const MAX_NAME = 64

function groupName (name: string | null | undefined): string {
  const trimmed = (name ?? '').trim()
  if (!trimmed || [...trimmed].length > MAX_NAME) throw new RequestError(INVALID_ARGUMENT, `a group name has 1-${MAX_NAME} characters`)
  return trimmed
}

async function checkUsers (db: Queryable, users: number[]): Promise<void> {
  const found = await existingUsers(db, users)
  const missing = users.filter(u => !found.has(u))
  if (missing.length) throw new RequestError(UNKNOWN_USER, `no user ${missing.join(', ')}`)
}

const systemContent = (event: wmq.ISystemEvent) => wmq.Content.encode({ system: event }).finish()

/** Delivers committed system messages in seq order to everyone they concern. */
async function announce (ctx: ChatContext, messages: StoredMessage[], audience: number[]): Promise<void> {
  for (const message of messages) await deliverMessage(ctx, message, audience, null)
}

export async function createGroup (ctx: ChatContext, who: Identity, request: wmq.IGroupCreate): Promise<DownlinkEvent> {
  const name = groupName(request.name)
  const members = [...new Set([who.user, ...(request.members ?? []).map(Number)])]
  if (members.length > ctx.limits.maxGroupSize) {
    throw new RequestError(GROUP_FULL, `a group has at most ${ctx.limits.maxGroupSize} members, not ${members.length}`)
  }
  await checkUsers(ctx.db, members)
  await requireMayAdd(ctx.db, who.user, members) // issue 7 §5: who may add whom
  const { group, message } = await ctx.db.transaction(async tx => {
    const group = await insertGroup(tx, name, who.user, members)
    const message = await appendSystemMessage(tx, group, who.user,
      systemContent({ created: { name, members }, actor: who.user }), Date.now())
    return { group, message }
  })
  await announce(ctx, [message], members)
  return { group: { group, name, members: members.length, role: wmq.Role.OWNER } }
}

interface Change { messages: StoredMessage[], audience: Set<number>, name: string, members: number, role: number }

export async function updateGroup (ctx: ChatContext, who: Identity, request: wmq.IGroupUpdate): Promise<DownlinkEvent> {
  const group = Number(request.group ?? 0)
  const now = Date.now()
  const change = await ctx.db.transaction(async (tx): Promise<Change> => {
    const locked = await lockGroup(tx, group)
    if (!locked) throw new RequestError(UNKNOWN_GROUP, `no group ${group}`)
    const { roles } = locked
    const myRole = roles.get(who.user)
    if (myRole === undefined) throw new RequestError(NOT_MEMBER, `not a member of group ${group}`)
    const audience = new Set(roles.keys())
    const messages: StoredMessage[] = []
    let name = locked.name
    const system = async (event: wmq.ISystemEvent) => {
      messages.push(await appendSystemMessage(tx, group, who.user, systemContent({ ...event, actor: who.user }), now))
      return messages.at(-1)!.seq
    }
    const needs = (role: number, what: string) => {
      if (myRole < role) throw new RequestError(FORBIDDEN, `only ${role === OWNER ? 'the owner' : 'an admin or the owner'} may ${what}`)
    }
    switch (request.change) {
      case 'add': {
        needs(ADMIN, 'add members')
        const users = [...new Set((request.add?.users ?? []).map(Number))].filter(u => !roles.has(u))
        if (users.length === 0) throw new RequestError(INVALID_ARGUMENT, 'no one to add: everyone named is a member already')
        if (roles.size + users.length > ctx.limits.maxGroupSize) {
          throw new RequestError(GROUP_FULL, `a group has at most ${ctx.limits.maxGroupSize} members`)
        }
        await checkUsers(tx, users)
        await requireMayAdd(tx, who.user, users) // issue 7 §5: who may add whom
        await addMembers(tx, group, users, locked.lastSeq) // they see the message that adds them, and what follows
        await system({ added: { users } })
        for (const u of users) { audience.add(u); roles.set(u, MEMBER) }
        break
      }
      case 'remove': {
        needs(ADMIN, 'remove members')
        const users = [...new Set((request.remove?.users ?? []).map(Number))]
        for (const u of users) {
          const role = roles.get(u)
          if (role === undefined) throw new RequestError(NOT_MEMBER, `user ${u} is not a member of group ${group}`)
          if (role === OWNER || (role === ADMIN && myRole !== OWNER) || u === who.user) {
            throw new RequestError(FORBIDDEN, u === who.user ? 'to go, leave the group' : `you may not remove user ${u}`)
          }
        }
        if (users.length === 0) throw new RequestError(INVALID_ARGUMENT, 'no one to remove')
        const seq = await system({ removed: { users } })
        await removeMembers(tx, group, users, seq) // they keep what they saw, up to being removed
        for (const u of users) roles.delete(u)
        break
      }
      case 'leave': {
        const seq = await system({ left: who.user })
        await removeMembers(tx, group, [who.user], seq)
        roles.delete(who.user)
        if (myRole === OWNER && roles.size > 0) {
          // The group keeps an owner: the first admin, else the longest-standing member.
          const [heir] = [...roles.entries()].sort((a, b) => b[1] - a[1] || a[0] - b[0])[0]
          await setRole(tx, group, heir, OWNER)
          roles.set(heir, OWNER)
          await system({ role: { user: heir, role: wmq.Role.OWNER } })
        }
        break
      }
      case 'rename': {
        needs(ADMIN, 'rename the group')
        name = groupName(request.rename)
        await renameGroup(tx, group, name)
        await system({ renamed: name })
        break
      }
      case 'role': {
        needs(OWNER, 'change roles')
        const user = Number(request.role?.user ?? 0)
        const role = request.role?.role ?? wmq.Role.MEMBER
        if (!roles.has(user) || user === who.user) throw new RequestError(INVALID_ARGUMENT, `user ${user} is not another member of group ${group}`)
        if (wmq.Role[role] === undefined) throw new RequestError(INVALID_ARGUMENT, `unknown role ${role}`)
        await setRole(tx, group, user, role)
        roles.set(user, role)
        if (role === OWNER) { // one owner: handing it over makes the old owner an admin
          await setRole(tx, group, who.user, ADMIN)
          roles.set(who.user, ADMIN)
        }
        await system({ role: { user, role } })
        break
      }
      default:
        throw new RequestError(INVALID_ARGUMENT, 'a group update needs a change: add, remove, leave, rename or role')
    }
    return { messages, audience, name, members: roles.size, role: roles.get(who.user) ?? MEMBER }
  })
  await announce(ctx, change.messages, [...change.audience])
  return { group: { group, name: change.name, members: change.members, role: change.role } }
}

export async function listGroups (ctx: ChatContext, who: Identity): Promise<DownlinkEvent> {
  const groups = await groupsOf(ctx.db, who.user)
  return { groups: { groups: groups.map(g => ({ group: g.id, name: g.name, members: g.members, role: g.role })) } }
}

export async function groupMembers (ctx: ChatContext, who: Identity, request: wmq.IGroupMembers): Promise<DownlinkEvent> {
  const group = Number(request.group ?? 0)
  const members = await membersOf(ctx.db, group)
  if (!members.some(m => m.user === who.user)) {
    // Same answer whether the group exists or not: a stranger learns nothing of it.
    throw new RequestError(NOT_MEMBER, `not a member of group ${group}`)
  }
  return { members: { group, members: members.map(m => ({ user: m.user, role: m.role, login: m.login })) } }
}

