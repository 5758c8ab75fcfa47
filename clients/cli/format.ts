// How things look on screen: one line per message, per conversation, per group, per member. Pure
// functions of what the SDK gives and of the names known; the screen (terminal.ts) only prints.
import { Role, type ChatMessage, type Content, type ConversationSummary, type GroupInfo, type Member, type wmq } from '../ts/index.ts'
import type { Paint } from './terminal.ts'

/** User id -> the name to show (the login when known). */
export type NameOf = (user: number) => string

const MONTHS = ['Jan', 'Feb', 'Mar', 'Apr', 'May', 'Jun', 'Jul', 'Aug', 'Sep', 'Oct', 'Nov', 'Dec']
const two = (n: number) => String(n).padStart(2, '0')

/** 14:05 today, "Mar 3 14:05" this year, "Mar 3 2024 14:05" before. */
export function clock (ms: number, now = Date.now()): string {
  const at = new Date(ms)
  const today = new Date(now)
  const time = `${two(at.getHours())}:${two(at.getMinutes())}`
  if (at.toDateString() === today.toDateString()) return time
  const day = `${MONTHS[at.getMonth()]} ${at.getDate()}`
  return at.getFullYear() === today.getFullYear() ? `${day} ${time}` : `${day} ${at.getFullYear()} ${time}`
}

/** "just now", "5 min ago", "3 h ago", "2 days ago". */
export function ago (ms: number, now = Date.now()): string {
  const seconds = Math.max(0, Math.round((now - ms) / 1000))
  if (seconds < 60) return 'just now'
  if (seconds < 3600) return `${Math.round(seconds / 60)} min ago`
  if (seconds < 86400) return `${Math.round(seconds / 3600)} h ago`
  const days = Math.round(seconds / 86400)
  return days === 1 ? '1 day ago' : `${days} days ago`
}

const roleName = (role: wmq.Role | null | undefined): string => role === Role.OWNER ? 'owner' : role === Role.ADMIN ? 'admin' : 'member'

const list = (users: number[] | null | undefined, nameOf: NameOf): string => (users ?? []).map(u => nameOf(Number(u))).join(', ')

/** A group change in words: "alice added bob, carol". */
export function describeSystem (event: wmq.ISystemEvent, nameOf: NameOf): string {
  const actorId = Number(event.actor ?? 0)
  const actor = nameOf(actorId)
  if (event.created) {
    const others = list(event.created.members?.filter(u => Number(u) !== actorId), nameOf)
    return `${actor} created the group "${event.created.name ?? ''}"${others ? ` with ${others}` : ''}`
  }
  if (event.added) return `${actor} added ${list(event.added.users, nameOf)}`
  if (event.removed) return `${actor} removed ${list(event.removed.users, nameOf)}`
  if (event.left !== null && event.left !== undefined) return `${nameOf(Number(event.left))} left`
  if (event.renamed !== null && event.renamed !== undefined) return `${actor} renamed the group to "${event.renamed}"`
  if (event.role) return `${actor} made ${nameOf(Number(event.role.user ?? 0))} ${roleName(event.role.role)}`
  return `${actor} changed the group`
}

const MEDIA_KINDS = ['image', 'voice message', 'video', 'file']

/** What a message says, on one line. */
export function contentText (content: Content | null, nameOf: NameOf): string {
  if (!content) return '(recalled)'
  if ('text' in content) return content.text.replace(/\s*\n\s*/g, ' ⏎ ')
  if ('media' in content) {
    const kind = MEDIA_KINDS[content.media.kind ?? 0] ?? 'media'
    return `[${kind}${content.media.name ? `: ${content.media.name}` : ''}]`
  }
  if ('location' in content) {
    const { latitude, longitude, label } = content.location
    return `[location${label ? `: ${label}` : ''} ${Number(latitude ?? 0).toFixed(5)}, ${Number(longitude ?? 0).toFixed(5)}]`
  }
  if ('custom' in content) return `[app data, ${content.custom.length} bytes]`
  return describeSystem(content.system, nameOf)
}

export const isSystem = (message: ChatMessage): boolean => message.content !== null && 'system' in message.content

/** "14:05  bob: see you at 6   #12" (the seq at the end is what /recall takes). */
export function messageLine (message: ChatMessage, nameOf: NameOf, paint: Paint, now = Date.now()): string {
  const when = paint.dim(clock(message.time, now).padStart(5))
  const seq = paint.dim(`#${message.seq}`)
  if (isSystem(message)) return `${when}  ${paint.magenta(`· ${contentText(message.content, nameOf)}`)}  ${seq}`
  const who = message.mine ? paint.green(nameOf(message.sender) || 'me') : paint.cyan(nameOf(message.sender))
  const text = message.recalled ? paint.dim('(recalled)') : contentText(message.content, nameOf)
  return `${when}  ${paint.bold(who)}: ${text}  ${seq}`
}

/** A message seen from outside its conversation: "» bob: hi there   (/open bob)". */
export function noticeLine (message: ChatMessage, where: string, nameOf: NameOf, paint: Paint, openWith: string): string {
  const text = shorten(contentText(message.content, nameOf), 60)
  const from = !message.group ? nameOf(message.sender) : isSystem(message) ? where : `${where} · ${nameOf(message.sender)}`
  return `${paint.yellow('»')} ${paint.bold(from)}: ${text}  ${paint.dim(`(/open ${openWith})`)}`
}

export function shorten (text: string, max: number): string {
  const chars = [...text]
  return chars.length <= max ? text : chars.slice(0, max - 1).join('') + '…'
}

/** How a conversation is called: the peer's login, or "#7 trip" for a group. */
export function conversationTitle (summary: Pick<ConversationSummary, 'group' | 'peer' | 'name' | 'conversation'>, nameOf: NameOf): string {
  return summary.group ? `#${summary.conversation} ${summary.name}`.trim() : nameOf(summary.peer)
}

/** One row of /list: name, unread count, time and preview of the last message. */
export function summaryLine (summary: ConversationSummary, nameOf: NameOf, paint: Paint, width: number, now = Date.now()): string {
  const title = conversationTitle(summary, nameOf).padEnd(width)
  const unread = summary.unread > 0 ? paint.yellow(`${summary.unread} unread`.padEnd(10)) : ' '.repeat(10)
  const last = summary.last
  if (!last) return `  ${paint.bold(title)}  ${unread}  ${paint.dim('(no messages)')}`
  const who = isSystem(last) ? '' : `${last.mine ? 'you' : nameOf(last.sender)}: `
  const preview = shorten(who + contentText(last.content, nameOf), 50)
  return `  ${paint.bold(title)}  ${unread}  ${paint.dim(clock(last.time, now).padStart(5))}  ${preview}`
}

export function groupLine (group: GroupInfo, paint: Paint): string {
  return `  ${paint.bold(`#${group.group} ${group.name}`)}  ${group.members} member${group.members === 1 ? '' : 's'}, you are ${roleName(group.role)}`
}

export function memberLine (member: Member, paint: Paint): string {
  return `  ${paint.bold(member.login || `user ${member.user}`)} ${paint.dim(`(${member.user})`)}  ${roleName(member.role)}`
}

export function presenceText (name: string, online: boolean, lastSeen: number, now = Date.now()): string {
  if (online) return `${name} is online`
  if (!lastSeen) return `${name} has not been online yet`
  return `${name} is offline, last seen ${clock(lastSeen, now)} (${ago(lastSeen, now)})`
}
