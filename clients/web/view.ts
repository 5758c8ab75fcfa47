// Draws the model into index.html's elements: the connection state, the conversation list and the
// open chat. Plain DOM: every render rebuilds the list and the messages (a few hundred nodes at
// most), text always through textContent, never as HTML.
import type { ChatMessage, ConnectionState, Content, PendingSend } from '../ts/index.ts'
import type { ChatModel, Conversation, OpenChat } from './model.ts'

export function byId<T extends HTMLElement = HTMLElement> (id: string): T {
  return document.getElementById(id) as T
}

/** An element with attributes and children (strings become text nodes). */
export function h (tag: string, attributes: Record<string, string> = {}, ...children: Array<Node | string>): HTMLElement {
  const element = document.createElement(tag)
  for (const [name, value] of Object.entries(attributes)) element.setAttribute(name, value)
  element.append(...children)
  return element
}

const STATE_WORDS: Record<ConnectionState, string> = {
  connecting: 'connecting…',
  online: 'online',
  reconnecting: 'reconnecting…',
  offline: 'offline',
}

function clock (ms: number): string {
  const at = new Date(ms)
  const time = at.toLocaleTimeString([], { hour: '2-digit', minute: '2-digit' })
  return at.toDateString() === new Date().toDateString() ? time : `${at.toLocaleDateString([], { day: 'numeric', month: 'short' })} ${time}`
}

/** One line for any content kind. */
export function describe (content: Content | null, model: ChatModel): string {
  if (!content) return 'message recalled'
  if ('text' in content) return content.text
  if ('media' in content) return `[${(content.media.mime ?? 'file').split('/')[0]}${content.media.name ? `: ${content.media.name}` : ''}]`
  if ('location' in content) return `[location${content.location.label ? `: ${content.location.label}` : ''}]`
  if ('custom' in content) return '[app data]'
  const system = content.system
  const who = (users: number[] | null | undefined) => (users ?? []).map(u => model.nameOf(Number(u))).join(', ')
  const actor = model.nameOf(Number(system.actor ?? 0))
  if (system.created) return `${actor} created "${system.created.name ?? ''}"`
  if (system.added) return `${actor} added ${who(system.added.users)}`
  if (system.removed) return `${actor} removed ${who(system.removed.users)}`
  if (system.left) return `${model.nameOf(Number(system.left))} left`
  if (system.renamed) return `${actor} renamed the group "${system.renamed}"`
  return `${actor} changed a role`
}

export interface ViewActions {
  open (chat: OpenChat): void
}

export class View {
  private shownChat: string | null = null

  constructor (private readonly model: ChatModel, private readonly actions: ViewActions) {}

  connection (state: ConnectionState, reason?: string): void {
    const badge = byId('connection')
    badge.dataset.state = state
    badge.textContent = STATE_WORDS[state]
    badge.title = reason ?? ''
  }

  list (): void {
    const model = this.model
    const open = model.openConversation()
    byId('conversations').replaceChildren(...model.list().map(c => {
      const unread = model.unread(c)
      const item = h('li', { 'data-conversation': String(c.id), class: c === open ? 'open' : '' },
        h('span', { class: 'conv-name' }, model.titleOf(c)),
        h('span', { class: 'conv-time' }, c.last ? clock(c.last.time) : ''),
        h('span', { class: 'conv-preview' }, c.last ? `${c.last.mine ? 'you: ' : ''}${describe(c.last.content, model)}` : ''),
        unread > 0 ? h('span', { class: 'unread', title: `${unread} unread` }, String(unread)) : '')
      item.addEventListener('click', () => this.actions.open({ conversation: c.id, peer: c.peer }))
      return item
    }))
  }

  /** The open chat; `pending` are the outbox entries (sends not yet acknowledged) of its recipient. */
  chat (pending: PendingSend[], keepOlderInView = false): void {
    const model = this.model
    const open = model.open
    byId('app').classList.toggle('chat-open', open !== null)
    byId('chat').hidden = open === null
    byId('no-chat').hidden = open !== null
    if (!open) return
    const c = model.openConversation()
    const peer = c?.group ? 0 : open.peer
    byId('chat-title').textContent = c ? model.titleOf(c) : model.nameOf(peer)
    this.presence(peer)

    const typists = c ? model.typists(c) : []
    byId('typing').textContent = typists.length ? `${typists.map(u => model.nameOf(u)).join(', ')} ${typists.length > 1 ? 'are' : 'is'} typing…` : ''
    byId('older').hidden = !c?.moreOlder

    const box = byId('messages')
    const key = `${open.conversation}/${open.peer}`
    const switched = key !== this.shownChat
    this.shownChat = key
    const fromBottom = box.scrollHeight - box.scrollTop - box.clientHeight
    const items = c ? model.messagesOf(c).map(m => this.message(c, m)) : []
    for (const send of pending) items.push(this.pendingMessage(send))
    byId('message-list').replaceChildren(...items)
    // Stay at the newest message unless the reader scrolled up; keep older pages where they were.
    if (switched || fromBottom < 40) box.scrollTop = box.scrollHeight
    else if (keepOlderInView) box.scrollTop = box.scrollHeight - box.clientHeight - fromBottom
  }

  private message (c: Conversation, m: ChatMessage): HTMLElement {
    const model = this.model
    const meta = h('span', { class: 'meta' }, h('time', { datetime: new Date(m.time).toISOString() }, clock(m.time)))
    if (m.mine && !c.group) {
      const status = model.statusOf(c, m)
      meta.append(' ', h('span', { class: 'status', 'data-status': status }, status === 'sent' ? '✓ sent' : `✓✓ ${status}`))
    }
    return h('li', { class: `msg${m.mine ? ' mine' : ''}${m.recalled ? ' recalled' : ''}`, 'data-seq': String(m.seq) },
      c.group && !m.mine ? h('span', { class: 'sender' }, model.nameOf(m.sender)) : '',
      h('span', { class: 'text' }, describe(m.content, model)),
      meta)
  }

  private pendingMessage (send: PendingSend): HTMLElement {
    return h('li', { class: 'msg mine pending', 'data-pending': send.clientMsgId },
      h('span', { class: 'text' }, describe(send.content, this.model)),
      h('span', { class: 'meta' }, h('time', {}, clock(send.createdAt)), ' ', h('span', { class: 'status', 'data-status': 'sending' }, 'sending…')))
  }

  private presence (peer: number): void {
    const line = byId('chat-presence')
    const presence = peer ? this.model.presence.get(peer) : undefined
    line.className = presence?.online ? 'online' : ''
    line.textContent = !presence ? '' : presence.online ? 'online' : presence.lastSeen ? `last seen ${clock(presence.lastSeen)}` : 'offline'
  }

  error (id: 'login-error' | 'new-chat-error' | 'send-error', text: string): void {
    byId(id).textContent = text
  }
}
