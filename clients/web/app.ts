// The browser chat client: log in, then one SDK client (clients/ts) over MQTT on WebSocket. The SDK
// keeps the outbox and the read positions in IndexedDB, gives every message once and in order, and
// reconnects by itself; this file turns its events into the model (model.ts) and the model into the
// page (view.ts), and the user's clicks and keys into SDK calls.
import { ChatError, ConnectRefusedError, connect, type ChatClient, type ConversationSummary, type Recipient } from '../ts/index.ts'
import { indexedDbStore, localStorageStore } from '../ts/store-browser.ts'
import { ChatModel, TYPING_SHOWN_MS, type OpenChat } from './model.ts'
import { LoginError, forgetSession, logIn, savedSession, webSocketUrl, type Session } from './session.ts'
import { View, byId } from './view.ts'

const HISTORY_PAGE = 30
/** The broker passes one typing hint per conversation every TYPING_INTERVAL (2 s by default). */
const TYPING_REPEAT_MS = 2000
/** Quiet keys for this long: tell the partner the typing stopped. */
const TYPING_IDLE_MS = 3000

function showLogin (message = ''): void {
  byId('app').hidden = true
  byId('login').hidden = false
  byId('login-error').textContent = message
  const form = byId<HTMLFormElement>('login-form')
  form.onsubmit = async event => {
    event.preventDefault()
    const data = new FormData(form)
    const button = form.querySelector('button')!
    button.disabled = true
    try {
      await logIn(String(data.get('login')).trim(), String(data.get('password')))
      location.reload() // one chat client per page load: the page starts again from the saved session
    } catch (err) {
      byId('login-error').textContent = err instanceof LoginError ? err.message : `cannot log in: ${(err as Error).message}`
    } finally {
      button.disabled = false
    }
  }
}

async function start (session: Session): Promise<void> {
  const url = await webSocketUrl()
  byId('login').hidden = true
  byId('app').hidden = false
  byId('me').textContent = session.login
  const chat = connect({
    url,
    login: session.login,
    token: session.token,
    device: session.device,
    user: session.user,
    store: 'indexedDB' in globalThis ? indexedDbStore(`wmq-${session.device}`) : localStorageStore(`wmq.state.${session.device}`),
  })
  new ChatPage(chat, session)
}

/** One logged-in page: the SDK client, the model and the view, wired together. */
class ChatPage {
  private readonly model: ChatModel
  private readonly view: View
  private listCursor = ''
  private renderQueued = false
  private olderLoading = false
  private readonly readAsked = new Map<number, number>()
  private readonly namesAsked = new Set<number>()
  private followed = 0
  private following = false
  private typingSentAt = 0
  private typingIdle?: ReturnType<typeof setTimeout>

  constructor (private readonly chat: ChatClient, private readonly session: Session) {
    this.model = new ChatModel(session.user, session.login)
    this.view = new View(this.model, { open: target => this.open(target) })
    this.view.connection(chat.state)
    this.listen()
    this.bindControls()
  }

  private listen (): void {
    const { chat, model } = this
    chat.on('state', (state, reason) => {
      this.view.connection(state, reason)
      // Presence seen before the link went down may be stale: none shown until it comes again (retained, at resubscribe).
      if (state !== 'online') { model.presence.clear(); this.render() }
    })
    chat.on('synced', () => { void this.refreshList() })
    chat.on('conversations', changed => this.summaries(changed))
    chat.on('message', message => {
      if (!model.conversations.has(message.conversation)) void this.learnNames([message.peer || message.sender])
      model.message(message)
      if (message.conversation === model.openConversation()?.id) this.markRead()
      this.render()
    })
    chat.on('receipt', receipt => { model.receipt(receipt); this.render() })
    chat.on('typing', typing => {
      model.typing(typing)
      this.render()
      setTimeout(() => this.render(), TYPING_SHOWN_MS + 100) // the hint fades by itself
    })
    chat.on('presence', presence => { model.presence.set(presence.user, presence); this.render() })
    chat.on('recall', ({ conversation, seq }) => { model.recalled(conversation, seq); this.render() })
    chat.on('deleted', ({ conversation, seqs }) => { model.deleted(conversation, seqs); this.render() })
    chat.on('sent', () => this.render())
    chat.on('sendFailed', ({ error }) => { this.view.error('send-error', `not sent: ${error.message}`); this.render() })
    chat.on('error', err => {
      if (err instanceof ConnectRefusedError) return this.refused(err)
      console.warn('chat:', err.message)
    })
    // The browser knows when the network goes and comes back (as Android's NetworkCallback does,
    // PROTOCOL §9): drop a link that is surely dead now, and retry at once when it returns instead
    // of waiting out the backoff.
    addEventListener('offline', () => chat.reconnectNow('the browser went offline'))
    addEventListener('online', () => chat.reconnectNow('the browser is online again'))
    document.addEventListener('visibilitychange', () => this.markRead())
  }

  private bindControls (): void {
    byId('logout').onclick = async () => {
      forgetSession()
      await this.chat.close()
      location.reload()
    }
    byId('back').onclick = () => { this.model.open = null; this.render() }
    byId('older').onclick = () => { void this.loadOlder() }
    byId('messages').addEventListener('scroll', () => {
      if (byId('messages').scrollTop < 30 && this.model.openConversation()?.moreOlder) void this.loadOlder()
    })

    const newChat = byId<HTMLFormElement>('new-chat')
    newChat.onsubmit = async event => {
      event.preventDefault()
      const who = String(new FormData(newChat).get('who')).trim()
      this.view.error('new-chat-error', '')
      try {
        const peer = await this.findUser(who)
        newChat.reset()
        this.open({ conversation: 0, peer })
      } catch (err) {
        this.view.error('new-chat-error', (err as Error).message)
      }
    }

    const sendForm = byId<HTMLFormElement>('send-form')
    const input = sendForm.elements.namedItem('text') as HTMLInputElement
    input.addEventListener('input', () => this.typed(input.value !== ''))
    sendForm.onsubmit = event => {
      event.preventDefault()
      const text = input.value.trim()
      if (text) this.send(text)
      input.value = ''
    }
  }

  /** Redraws once per turn of the event loop, however many events came in it. */
  private render (options: { keepOlderInView?: boolean } = {}): void {
    if (this.renderQueued && !options.keepOlderInView) return
    this.renderQueued = true
    setTimeout(() => {
      this.renderQueued = false
      this.view.list()
      this.view.chat(this.pendingOfOpenChat(), options.keepOlderInView)
    }, 0)
  }

  // ---- the conversation list ----

  /** After every (re)connect: what changed since the last list this page saw (everything, at first). */
  private async refreshList (): Promise<void> {
    try {
      const { conversations, cursor } = await this.chat.syncConversations({ since: this.listCursor })
      this.listCursor = cursor
      this.summaries(conversations)
    } catch (err) {
      console.warn('conversation list:', (err as Error).message)
    }
  }

  private summaries (list: ConversationSummary[]): void {
    for (const s of list) this.model.summary(s)
    void this.learnNames(list.map(s => s.peer).filter(Boolean))
    const open = this.model.openConversation()
    if (open && open.moreOlder === null) void this.loadOlder()
    this.markRead()
    this.render()
  }

  /** Logins (or display names) of users shown by id, from their profiles. */
  private async learnNames (users: number[]): Promise<void> {
    const unknown = [...new Set(users)].filter(u => !this.model.names.has(u) && !this.namesAsked.has(u))
    if (unknown.length === 0) return
    for (const u of unknown) this.namesAsked.add(u)
    try {
      const reply = await this.chat.request({ profileGet: { users: unknown } }, 'profiles')
      for (const p of reply.profiles?.profiles ?? []) this.model.names.set(Number(p.user), p.displayName || p.login || `user ${p.user}`)
      this.render()
    } catch (err) {
      for (const u of unknown) this.namesAsked.delete(u)
      console.warn('profiles:', (err as Error).message)
    }
  }

  /** A user id, or a login looked up by search (exact match). */
  private async findUser (who: string): Promise<number> {
    if (/^[1-9][0-9]*$/.test(who)) {
      void this.learnNames([Number(who)])
      return Number(who)
    }
    const reply = await this.chat.request({ userSearch: { prefix: who, limit: 20 } }, 'search')
    const users = reply.search?.users ?? []
    const found = users.find(u => u.login === who) ?? users.find(u => (u.login ?? '').toLowerCase() === who.toLowerCase())
    if (!found) throw new Error(`nobody with the login "${who}" (a user may hide from search: try their user id)`)
    this.model.names.set(Number(found.user), found.displayName || found.login!)
    return Number(found.user)
  }

  // ---- the open chat ----

  private open (target: OpenChat): void {
    this.model.open = target
    this.view.error('send-error', '')
    const c = this.model.openConversation()
    if (c && c.moreOlder === null) void this.loadOlder()
    this.follow(c?.group ? 0 : target.peer)
    this.markRead()
    this.render()
    ;(byId<HTMLFormElement>('send-form').elements.namedItem('text') as HTMLInputElement).focus()
  }

  /** Older messages of the open chat, one page above the oldest held. */
  private async loadOlder (): Promise<void> {
    const c = this.model.openConversation()
    if (!c || this.olderLoading || c.moreOlder === false) return
    this.olderLoading = true
    try {
      const before = this.model.oldestSeq(c) || (c.lastSeq ? c.lastSeq + 1 : Number.MAX_SAFE_INTEGER)
      const page = await this.chat.history(c.id, { before, limit: HISTORY_PAGE })
      for (const m of page.messages) this.model.message(m)
      c.moreOlder = page.more && this.model.oldestSeq(c) > 1
      this.render({ keepOlderInView: true })
    } catch (err) {
      console.warn('history:', (err as Error).message)
    } finally {
      this.olderLoading = false
    }
  }

  /** Follows the presence of the partner on screen only (PROTOCOL §8: on 2G follow who is shown). */
  private follow (peer: number): void {
    if (peer === this.followed && (this.following || !peer)) return
    if (this.followed && this.followed !== peer) void this.chat.unsubscribePresence(this.followed).catch(() => {})
    this.followed = peer
    this.following = false
    // Refused (FORBIDDEN) until the two share a conversation: asked again after the first send.
    if (peer) this.chat.subscribePresence(peer).then(() => { if (this.followed === peer) this.following = true }, () => {})
  }

  /** Everything on screen is read, when the page is seen. */
  private markRead (): void {
    const c = this.model.openConversation()
    if (!c || document.visibilityState !== 'visible' || c.readSeq >= c.lastSeq) return
    if ((this.readAsked.get(c.id) ?? 0) >= c.lastSeq) return
    this.readAsked.set(c.id, c.lastSeq)
    this.chat.markRead(c.id, c.lastSeq).then(receipt => { this.model.receipt(receipt); this.render() },
      () => this.readAsked.delete(c.id)) // asked again at the next message or visit
  }

  private recipient (): Recipient | null {
    const open = this.model.open
    if (!open) return null
    const c = this.model.openConversation()
    return c?.group ? { group: c.id } : { user: open.peer }
  }

  private pendingOfOpenChat () {
    const to = this.recipient()
    if (!to) return []
    return this.chat.pendingSends().filter(s => 'user' in to ? 'user' in s.to && s.to.user === to.user : 'group' in s.to && s.to.group === to.group)
  }

  private send (text: string): void {
    const to = this.recipient()
    if (!to) return
    this.typed(false)
    this.view.error('send-error', '')
    this.chat.send(to, text).then(result => {
      const open = this.model.open
      if (open && 'user' in to && open.peer === to.user) {
        open.conversation ||= result.conversation
        this.follow(to.user) // they share a conversation now, if they did not before
      }
      this.render()
    }, err => {
      if (err instanceof ChatError) this.view.error('send-error', `not sent: ${err.message}`)
      this.render()
    })
    this.render() // shows it as "sending…" from the outbox
  }

  /** Typing hints for the partner: at most one per TYPING_REPEAT_MS, and a stop when the keys rest. */
  private typed (active: boolean): void {
    const c = this.model.openConversation()
    clearTimeout(this.typingIdle)
    if (!c) return
    if (!active) {
      if (this.typingSentAt) this.chat.typing(c.id, false)
      this.typingSentAt = 0
      return
    }
    if (Date.now() - this.typingSentAt >= TYPING_REPEAT_MS) {
      this.chat.typing(c.id, true)
      this.typingSentAt = Date.now()
    }
    this.typingIdle = setTimeout(() => this.typed(false), TYPING_IDLE_MS)
  }

  private refused (err: ConnectRefusedError): void {
    forgetSession()
    if (err.returnCode === 5) localStorage.removeItem(`wmq.device.${this.session.login}`) // bound to another user: a new one at login
    byId('app').hidden = true
    showLogin(err.returnCode === 4 ? 'Your session has ended: log in again.' : err.message)
  }
}

const session = savedSession()
if (session) start(session).catch(err => showLogin((err as Error).message))
else showLogin()
