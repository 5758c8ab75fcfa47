// One chat session at the terminal: the SDK client's events become lines on the screen, typed
// lines become commands and messages. Two queues keep the screen readable: commands run one after
// another in the order they were typed, and everything printed goes out in the order it was
// decided (a line that needs a name first waits for it without letting later lines pass).
import {
  ChatError, ClosedError, ConnectRefusedError, ErrorCode, connect,
  type ChatClient, type ChatMessage, type ConnectionState, type ConversationSummary, type Presence, type Receipt,
  type RecallEvent, type Store, type TypingEvent,
} from '../ts/index.ts'
import { HELP, parseCommand, type Command } from './commands.ts'
import { Directory } from './directory.ts'
import { errorText, refusalText, unreachableText } from './explain.ts'
import {
  conversationTitle, groupLine, memberLine, messageLine, noticeLine, presenceText, shorten, summaryLine,
} from './format.ts'
import { openTerminal, type Terminal } from './terminal.ts'

export interface ChatOptions {
  url: string
  login: string
  token?: string
  password?: string
  device: string
  store: Store
  /** Where the state is kept, and whether the device id was made by this start (said once). */
  stateDir: string
  newDevice: boolean
}

/** Messages shown when a conversation opens, and per /history. */
const PAGE = 20
/** Typing hints go at most this often (the broker's TYPING_INTERVAL drops more anyway: bytes are scarce, DESIGN 7). */
const TYPING_EVERY_MS = 2000
/** The person stopped typing without sending: say so (PROTOCOL §4 Typing). */
const TYPING_STOP_MS = 5000
/** A typing hint is shown again once the other side has been quiet this long. */
const TYPING_QUIET_MS = 10_000
/** Read marks gather this long, so that a burst of messages costs one request. */
const READ_DELAY_MS = 300
/** Say "sending..." only when the SendAck takes longer than this (a slow link). */
const SLOW_SEND_MS = 1500
/** The first connection is said in words only when it takes longer than this. */
const SLOW_CONNECT_MS = 1000
const PRESENCE_WAIT_MS = 5000
/** At /quit, read marks still due get this long to reach the broker. */
const QUIT_WAIT_MS = 2000

type Target = { kind: 'user', user: number } | { kind: 'group', group: number }

interface OpenConversation {
  /** null: a 1:1 with no message yet (the first send makes it). */
  conversation: number | null
  group: boolean
  /** 1:1: the other user. */
  peer: number
  title: string
  /** Seqs shown so far: /history goes below `oldest`, live messages above `newest`. */
  oldest: number
  newest: number
  /** Arrivals held while the recent history loads, shown after it. */
  held: ChatMessage[] | null
  presenceShown: boolean
}

interface Known { group: boolean, peer: number, name: string }

export interface RunningChat {
  /** Resolves with the exit code: 0 after /quit, 1 after an expected failure (said in one line). */
  exited: Promise<number>
  /** The same as /quit (for SIGTERM). */
  stop (): void
}

/** Connects and runs the chat until /quit, the end of the input, or a failure. */
export function startChat (options: ChatOptions): RunningChat {
  let chat!: Chat
  const exited = new Promise<number>(resolve => { chat = new Chat(options, resolve) })
  return { exited, stop: () => chat.stop() }
}

class Chat {
  private readonly client: ChatClient
  private readonly terminal: Terminal
  private readonly names: Directory
  private open: OpenConversation | null = null
  private readonly known = new Map<number, Known>()
  private everOnline = false
  private ready = false
  private ending = false
  /** Ended by an expected failure: its one line is the last thing shown. */
  private failed = false
  private readonly started: Promise<void>
  private markStarted!: () => void
  private commands: Promise<void> = Promise.resolve()
  private output: Promise<void> = Promise.resolve()
  private connectingTimer?: ReturnType<typeof setTimeout>
  private warnedUnreachable = false
  private readonly presence = new Map<number, Presence>()
  private readonly presenceWaiters = new Map<number, Array<(p: Presence) => void>>()
  private readonly ownSeqs = new Map<number, number[]>()
  private readonly marks = new Map<string, { delivered: number, read: number }>()
  private readonly typingSeen = new Map<string, number>()
  private readonly recalledHere = new Set<string>()
  private readonly readDue = new Map<number, number>()
  private readTimer?: ReturnType<typeof setTimeout>
  private typingIn = 0
  private typingSentAt = 0
  private typingStopTimer?: ReturnType<typeof setTimeout>

  constructor (private readonly options: ChatOptions, private readonly done: (code: number) => void) {
    this.started = new Promise(resolve => { this.markStarted = resolve })
    this.terminal = openTerminal({
      line: text => this.entered(text),
      end: () => this.inputEnded(),
      editing: text => this.editing(text),
    })
    this.client = connect({
      url: options.url, login: options.login, token: options.token, password: options.password, device: options.device, store: options.store,
    })
    this.names = new Directory(this.client, options.login)
    this.client.on('state', (state, reason) => this.onState(state, reason))
    this.client.on('error', err => this.onError(err))
    this.client.on('synced', () => { if (!this.ready) void this.start() })
    this.client.on('message', m => this.onMessage(m))
    this.client.on('conversations', changed => changed.forEach(s => this.noteSummary(s)))
    this.client.on('receipt', r => this.onReceipt(r))
    this.client.on('typing', e => this.onTyping(e))
    this.client.on('presence', p => this.onPresence(p))
    this.client.on('recall', r => this.onRecall(r))
    this.connectingTimer = setTimeout(() => this.print(this.paint.dim(`connecting to ${options.url} as ${options.login}…`)), SLOW_CONNECT_MS)
    this.updatePrompt()
  }

  private get paint () { return this.terminal.paint }

  /** SIGTERM, SIGINT: /quit at once. */
  stop (): void {
    void this.quit()
  }

  /**
   * The input ended. The end of a pipe: quit once everything piped has run (which waits for the
   * start). Ctrl-D or Ctrl-C at a terminal: the same, but at once while still connecting.
   */
  private inputEnded (): void {
    if (this.ready || !this.terminal.interactive) this.commands = this.commands.then(() => this.started).then(() => this.quit())
    else void this.quit()
  }

  // ---- the start: online, caught up, own id known, the conversation list shown ----

  private async start (): Promise<void> {
    this.ready = true
    const { paint } = this
    try {
      const self = await this.names.learnSelf()
      const lines = [paint.green(`● online as ${this.options.login} (user ${self}) at ${this.options.url}`) + paint.dim('  ·  /help lists the commands')]
      if (this.options.newDevice) lines.push(paint.dim(`  this is a new device, ${this.options.device}, kept in ${this.options.stateDir}`))
      const unsent = this.client.pendingSends().length
      if (unsent > 0) lines.push(paint.yellow(`  ${unsent} message${unsent === 1 ? '' : 's'} from last time going out now`))
      this.print(...lines)
      await this.list()
    } catch (err) {
      this.printError(err)
    }
    this.markStarted()
    this.updatePrompt()
    this.terminal.prompt()
  }

  // ---- input ----

  private entered (text: string): void {
    if (this.ending) return
    const command = parseCommand(text)
    if (command.kind === 'say') {
      this.stopTyping(false) // the message itself ends the hint on the other side
      this.terminal.eraseEntered(text) // shown again in its place in the conversation
    }
    this.terminal.prompt()
    this.enqueue(() => this.run(command))
  }

  /** Commands run one at a time, in the order typed, once the start is done. */
  private enqueue (task: () => Promise<void> | void): void {
    this.commands = this.commands
      .then(() => this.started)
      .then(task)
      .catch(err => this.printError(err))
  }

  private async run (command: Command): Promise<void> {
    if (this.ending) return
    switch (command.kind) {
      case 'nothing': return
      case 'say': return this.say(command.text)
      case 'list': return this.list()
      case 'open': return this.openTarget(await this.resolveTarget(command.target))
      case 'dm': return this.openTarget({ kind: 'user', user: await this.names.resolveUser(command.user) })
      case 'history': return this.history()
      case 'group create': return this.createGroup(command.name, command.users)
      case 'group add': case 'group remove': return this.changeMembers(command.kind, command.group, command.users)
      case 'group leave': return this.leaveGroup(command.group)
      case 'groups': return this.groups()
      case 'members': return this.members(command.group)
      case 'who': return this.who(command.user)
      case 'recall': return this.recall(command.seq)
      case 'help': return this.print(...HELP.map((line, i) => i === 0 ? line : this.paint.dim(line)))
      case 'quit': return this.quit()
      case 'invalid': return this.print(this.paint.yellow(command.reason))
    }
  }

  /** A key changed the line: a typing hint for the open conversation (rate-limited here and by the broker). */
  private editing (text: string): void {
    const conversation = this.open?.conversation
    if (!this.ready || !conversation || text.startsWith('/')) return
    if (text.trim() === '') return this.stopTyping(true)
    const now = Date.now()
    if (this.typingIn !== conversation || now - this.typingSentAt >= TYPING_EVERY_MS) {
      this.client.typing(conversation, true)
      this.typingIn = conversation
      this.typingSentAt = now
    }
    clearTimeout(this.typingStopTimer)
    this.typingStopTimer = setTimeout(() => this.stopTyping(true), TYPING_STOP_MS)
  }

  /** Ends the typing hint; `tell`: say so to the others (not needed when a message follows). */
  private stopTyping (tell: boolean): void {
    clearTimeout(this.typingStopTimer)
    if (this.typingIn && tell) this.client.typing(this.typingIn, false)
    this.typingIn = 0
    this.typingSentAt = 0
  }

  // ---- commands ----

  private say (text: string): void {
    const open = this.open
    if (!open) return this.print(this.paint.yellow('no conversation is open: /open <user | #group> or /dm <user> first (/list shows them)'))
    const to = open.group ? { group: open.conversation! } : { user: open.peer }
    this.stopTyping(false)
    const label = open.title
    const offline = this.client.state !== 'online'
    let announced = offline
    if (offline) this.print(this.paint.dim(`  offline: "${shorten(text, 40)}" waits and goes out when the connection is back`))
    const slow = offline ? undefined : setTimeout(() => {
      announced = true
      this.print(this.paint.dim(`  sending to ${label}: ${shorten(text, 40)}…`))
    }, SLOW_SEND_MS)
    this.client.send(to, text).then(ack => {
      clearTimeout(slow)
      // In the open conversation the message itself appears (placed by its SendAck); elsewhere, a word.
      if (announced && this.open?.conversation !== ack.conversation) this.print(this.paint.dim(`  ✓ sent to ${label}: ${shorten(text, 40)}`))
    }, err => {
      clearTimeout(slow)
      if (!(err instanceof ClosedError)) this.print(this.paint.red(`  not sent to ${label}: ${errorText(err)}`))
    })
  }

  /** The whole conversation list from the broker (unread counts are the broker's: read state is per user, across devices). */
  private async fetchConversations (): Promise<ConversationSummary[]> {
    const { conversations } = await this.client.syncConversations()
    conversations.forEach(s => this.noteSummary(s))
    return conversations
  }

  private async list (): Promise<void> {
    const conversations = await this.fetchConversations()
    const summaries = conversations.map(s => ({ ...s, last: s.last && this.normalized(s.last) }))
      .sort((a, b) => (b.last?.time ?? 0) - (a.last?.time ?? 0) || b.conversation - a.conversation)
    await this.learnNames(summaries.flatMap(s => [s.peer, ...(s.last ? this.usersIn(s.last) : [])]))
    if (summaries.length === 0) return this.print(this.paint.dim('no conversations yet: /dm <user> starts one'))
    const nameOf = this.names.nameOf
    const width = Math.min(24, Math.max(...summaries.map(s => conversationTitle(s, nameOf).length)))
    const unread = summaries.reduce((sum, s) => sum + s.unread, 0)
    this.print(this.paint.bold(`Conversations${unread ? ` (${unread} unread)` : ''}:`),
      ...summaries.map(s => summaryLine(s, nameOf, this.paint, width)))
  }

  private async openTarget (target: Target): Promise<void> {
    this.stopTyping(true)
    const previous = this.open
    let open: OpenConversation
    if (target.kind === 'group') {
      const name = this.known.get(target.group)?.name ?? ''
      open = this.newOpen(target.group, true, 0, `#${target.group}${name ? ` ${name}` : ''}`)
    } else {
      let conversation = this.conversationWith(target.user)
      if (conversation === null) {
        await this.fetchConversations() // it may be older than this run
        conversation = this.conversationWith(target.user)
      }
      await this.learnNames([target.user])
      open = this.newOpen(conversation, false, target.user, this.names.nameOf(target.user))
    }
    this.open = open
    if (previous && !previous.group && previous.peer !== open.peer && previous.peer !== this.names.self) {
      this.client.unsubscribePresence(previous.peer).catch(() => {})
    }
    this.updatePrompt()
    const lines = [this.paint.bold(`── ${open.title}${open.peer === this.names.self && !open.group ? ' (notes to yourself)' : ''} ──`)]
    if (open.conversation !== null) {
      let page
      try {
        page = await this.client.history(open.conversation, { before: Number.MAX_SAFE_INTEGER, limit: PAGE })
      } catch (err) {
        if (this.open === open) this.open = null
        this.updatePrompt()
        throw err
      }
      const messages = page.messages.map(m => this.normalized(m))
      await this.learnNames(messages.flatMap(m => this.usersIn(m)))
      if (page.more) lines.push(this.paint.dim('   older messages: /history'))
      if (messages.length === 0) lines.push(this.paint.dim('   no messages yet'))
      for (const m of messages) {
        if (m.mine) this.ownSeq(m.conversation, m.seq)
        lines.push(messageLine(m, this.names.nameOf, this.paint))
      }
      open.oldest = messages[0]?.seq ?? 0
      open.newest = Math.max(page.lastSeq, messages.at(-1)?.seq ?? 0)
      if (page.lastSeq > 0) this.client.markRead(open.conversation, page.lastSeq).catch(() => {})
    } else {
      lines.push(this.paint.dim(`   no messages yet: type one to start the conversation with ${open.title}`))
    }
    this.print(...lines)
    const held = open.held ?? []
    open.held = null
    this.showInOpen(held)
    if (!open.group && open.peer !== this.names.self) this.followPresence(open.peer)
  }

  private newOpen (conversation: number | null, group: boolean, peer: number, title: string): OpenConversation {
    return { conversation, group, peer, title, oldest: 0, newest: 0, held: [], presenceShown: false }
  }

  private async history (): Promise<void> {
    const open = this.open
    if (!open?.conversation) return this.print(this.paint.yellow('no conversation with messages is open: /open one first'))
    if (open.oldest === 1) return this.print(this.paint.dim('   that was the start of the conversation'))
    const page = await this.client.history(open.conversation, { before: open.oldest || open.newest + 1, limit: PAGE })
    const messages = page.messages.map(m => this.normalized(m))
    if (messages.length === 0) return this.print(this.paint.dim('   nothing older'))
    await this.learnNames(messages.flatMap(m => this.usersIn(m)))
    messages.filter(m => m.mine).forEach(m => this.ownSeq(m.conversation, m.seq))
    open.oldest = messages[0].seq
    this.print(this.paint.dim(`── earlier in ${open.title} ──`),
      ...messages.map(m => messageLine(m, this.names.nameOf, this.paint)),
      this.paint.dim(page.more ? '── more: /history ──' : '── start of the conversation ──'))
  }

  private async createGroup (name: string, users: string[]): Promise<void> {
    const ids: number[] = []
    for (const user of users) ids.push(await this.names.resolveUser(user))
    const info = await this.client.createGroup(name, ids)
    this.known.set(info.group, { group: true, peer: 0, name: info.name })
    this.print(this.paint.green(`created #${info.group} ${info.name} with ${ids.map(this.names.nameOf).join(', ')}`))
    await this.openTarget({ kind: 'group', group: info.group })
  }

  private async changeMembers (kind: 'group add' | 'group remove', groupText: string, users: string[]): Promise<void> {
    const group = await this.resolveGroup(groupText)
    const ids: number[] = []
    for (const user of users) ids.push(await this.names.resolveUser(user))
    const info = kind === 'group add' ? await this.client.addMembers(group, ids) : await this.client.removeMembers(group, ids)
    const who = ids.map(this.names.nameOf).join(', ')
    this.print(this.paint.green(`${kind === 'group add' ? `added ${who} to` : `removed ${who} from`} #${info.group} ${info.name} (${info.members} members)`))
  }

  private async leaveGroup (groupText: string): Promise<void> {
    const group = await this.resolveGroup(groupText)
    const info = await this.client.leaveGroup(group)
    this.print(this.paint.green(`you left #${info.group} ${info.name}`))
    if (this.open?.conversation === group) {
      this.open = null
      this.updatePrompt()
    }
  }

  private async groups (): Promise<void> {
    const groups = await this.client.groups()
    for (const g of groups) this.known.set(g.group, { group: true, peer: 0, name: g.name })
    if (groups.length === 0) return this.print(this.paint.dim('no groups yet: /group create <name> <users...> makes one'))
    this.print(this.paint.bold('Groups:'), ...groups.map(g => groupLine(g, this.paint)))
  }

  private async members (groupText: string): Promise<void> {
    const group = await this.resolveGroup(groupText)
    const members = await this.client.members(group)
    members.forEach(m => this.names.remember(m.user, m.login))
    const name = this.known.get(group)?.name ?? ''
    this.print(this.paint.bold(`Members of #${group}${name ? ` ${name}` : ''}:`), ...members.map(m => memberLine(m, this.paint)))
  }

  private async who (userText: string): Promise<void> {
    const user = await this.names.resolveUser(userText)
    const name = this.names.nameOf(user)
    const following = this.open !== null && !this.open.group && this.open.peer === user
    let presence = following ? this.presence.get(user) : undefined
    if (!presence) {
      const arrived = this.nextPresence(user)
      try {
        await this.client.subscribePresence(user)
      } catch (err) {
        if (err instanceof ChatError && err.code === ErrorCode.FORBIDDEN) {
          return this.print(this.paint.yellow(`you may not see whether ${name} is online (only contacts, people you chat with and group peers)`))
        }
        throw err
      }
      presence = await arrived
      if (!following) this.client.unsubscribePresence(user).catch(() => {})
    }
    this.print(presence ? presenceText(name, presence.online, presence.lastSeen) : this.paint.dim(`no presence of ${name} came (offline?)`))
  }

  private async recall (seq: number): Promise<void> {
    const conversation = this.open?.conversation
    if (!conversation) return this.print(this.paint.yellow('open the conversation of the message first'))
    this.recalledHere.add(`${conversation}:${seq}`)
    await this.client.recall(conversation, seq)
    this.print(this.paint.dim(`   you recalled #${seq}`))
  }

  private async quit (): Promise<void> {
    if (this.ending) return
    this.ending = true
    this.stopTyping(true)
    clearTimeout(this.connectingTimer)
    const unsent = this.client.pendingSends().length
    if (this.client.state === 'online') await Promise.race([this.flushReads(), new Promise(resolve => setTimeout(resolve, QUIT_WAIT_MS))])
    await this.client.close()
    await this.output
    if (unsent > 0) this.terminal.print(this.paint.yellow(`${unsent} unsent message${unsent === 1 ? '' : 's'} kept: ${unsent === 1 ? 'it goes' : 'they go'} out when you start the chat again`))
    this.terminal.close()
    this.done(0)
  }

  /** An expected failure that ends the program: one line on stderr, exit code 1. */
  private fatal (line: string): void {
    if (this.ending) return
    this.ending = true
    clearTimeout(this.connectingTimer)
    this.failed = true
    this.terminal.fail(line)
    this.terminal.close()
    void this.client.close().catch(() => {}).then(() => this.done(1))
  }

  // ---- events ----

  private onState (state: ConnectionState, reason = ''): void {
    if (this.ending) return
    if (state === 'online') {
      clearTimeout(this.connectingTimer)
      if (this.everOnline) this.print(this.paint.green('● online'))
      this.everOnline = true
    } else if (state === 'reconnecting') {
      if (!this.everOnline) {
        const fatal = unreachableText(reason, this.options.url)
        if (fatal) return this.fatal(fatal)
        if (!this.warnedUnreachable) this.print(this.paint.yellow(`cannot reach ${this.options.url} yet (${reason}): retrying… (/quit to stop)`))
        this.warnedUnreachable = true
      } else {
        this.print(this.paint.yellow(`○ connection lost (${reason}): reconnecting…`))
      }
    }
    this.updatePrompt()
  }

  private onError (err: Error): void {
    if (this.ending || err instanceof ClosedError) return
    if (err instanceof ConnectRefusedError) {
      return this.fatal(refusalText(err, { device: this.options.device, token: Boolean(this.options.token), login: this.options.login }))
    }
    if (!this.ready && this.client.state === 'offline') return this.fatal(`cannot start: ${errorText(err)}`) // e.g. an unreadable state file
    this.print(this.paint.yellow(`⚠ ${errorText(err)}`))
  }

  private onMessage (message: ChatMessage): void {
    const m = this.normalized(message)
    this.noteMessage(m)
    if (m.mine) this.ownSeq(m.conversation, m.seq)
    const open = this.open
    if (open && open.conversation === null && !m.group && m.peer === open.peer) {
      open.conversation = m.conversation // the first message made the 1:1
      open.newest = m.seq - 1
      if (open.peer !== this.names.self) this.followPresence(open.peer)
      this.names.askAgain(open.peer) // a partner's profile is readable now
      this.show(async () => {
        await this.learnNames([open.peer])
        open.title = this.names.nameOf(open.peer)
        this.updatePrompt()
        return []
      })
    }
    if (open && open.conversation === m.conversation) {
      if (open.held) open.held.push(m)
      else this.showInOpen([m])
      return
    }
    // Elsewhere: one line. Not for own messages (sent from another device) nor during the first
    // catch-up (the list shown at the start counts those).
    if (m.mine || !this.ready || this.ending) return
    this.show(async () => {
      await this.learnNames(this.usersIn(m))
      const known = this.known.get(m.conversation)
      const where = known?.group ? `#${m.conversation}${known.name ? ` ${known.name}` : ''}` : ''
      return [noticeLine(m, where, this.names.nameOf, this.paint, m.group ? `#${m.conversation}` : this.names.nameOf(m.sender))]
    })
  }

  /** Messages of the open conversation, each once, after what is already on screen. */
  private showInOpen (messages: ChatMessage[]): void {
    const open = this.open!
    const fresh = messages.filter(m => m.seq > open.newest)
    if (fresh.length === 0) return
    open.newest = fresh.at(-1)!.seq
    if (!open.oldest) open.oldest = fresh[0].seq
    let lastFromOthers = 0
    for (const m of fresh) {
      if (!m.mine) {
        this.typingSeen.delete(`${m.conversation}:${m.sender}`)
        lastFromOthers = m.seq
      }
    }
    this.show(async () => {
      await this.learnNames(fresh.flatMap(m => this.usersIn(m)))
      return fresh.map(m => messageLine(m, this.names.nameOf, this.paint))
    })
    if (lastFromOthers) this.markReadSoon(open.conversation!, lastFromOthers)
  }

  /** Marks for the user's own messages in the open conversation: ✓ delivered, ✓✓ read. */
  private onReceipt (receipt: Receipt): void {
    const open = this.open
    if (!open || open.conversation !== receipt.conversation || receipt.user === this.names.self) return
    const own = this.ownSeqs.get(receipt.conversation) ?? []
    const newestOwnUpTo = (seq: number) => own.reduce((best, s) => s <= seq && s > best ? s : best, 0)
    const key = `${receipt.conversation}:${receipt.user}`
    const mark = this.marks.get(key) ?? { delivered: 0, read: 0 }
    this.marks.set(key, mark)
    const read = newestOwnUpTo(receipt.readSeq)
    const delivered = newestOwnUpTo(Math.max(receipt.deliveredSeq, receipt.readSeq))
    const user = receipt.user
    if (read > mark.read) {
      mark.read = read
      mark.delivered = Math.max(mark.delivered, read)
      this.show(async () => { await this.learnNames([user]); return [this.paint.green(`   ✓✓ read by ${this.names.nameOf(user)}`) + this.paint.dim(`  #${read}`)] })
    } else if (delivered > mark.delivered) {
      mark.delivered = delivered
      this.show(async () => { await this.learnNames([user]); return [this.paint.dim(`   ✓ delivered to ${this.names.nameOf(user)}  #${delivered}`)] })
    }
  }

  private onTyping (typing: TypingEvent): void {
    const open = this.open
    if (!typing.active || typing.user === this.names.self || !open || open.conversation !== typing.conversation) return
    const key = `${typing.conversation}:${typing.user}`
    const last = this.typingSeen.get(key)
    const now = Date.now()
    this.typingSeen.set(key, now)
    if (last !== undefined && now - last < TYPING_QUIET_MS) return // one line per burst of typing
    const user = typing.user
    this.show(async () => { await this.learnNames([user]); return [this.paint.dim(`   ${this.names.nameOf(user)} is typing…`)] })
  }

  private onPresence (presence: Presence): void {
    const before = this.presence.get(presence.user)
    this.presence.set(presence.user, presence)
    for (const wake of this.presenceWaiters.get(presence.user)?.splice(0) ?? []) wake(presence)
    const open = this.open
    if (!open || open.group || open.peer !== presence.user || this.ending) return
    if (open.presenceShown && before && before.online === presence.online) return
    open.presenceShown = true
    const line = presenceText(this.names.nameOf(presence.user), presence.online, presence.lastSeen)
    this.print(presence.online ? this.paint.green(`   ● ${line}`) : this.paint.dim(`   ○ ${line}`))
  }

  private onRecall (recall: RecallEvent): void {
    const key = `${recall.conversation}:${recall.seq}`
    if (this.recalledHere.delete(key) || this.open?.conversation !== recall.conversation) return
    this.print(this.paint.dim(`   #${recall.seq} was recalled`))
  }

  // ---- helpers ----

  private followPresence (user: number): void {
    this.presence.delete(user) // the retained state comes at once and is shown as the peer's state
    this.client.subscribePresence(user).catch(() => {}) // refused for a stranger: no presence shown, nothing more
  }

  private nextPresence (user: number): Promise<Presence | undefined> {
    return new Promise(resolve => {
      const timer = setTimeout(() => resolve(undefined), PRESENCE_WAIT_MS)
      const waiters = this.presenceWaiters.get(user) ?? []
      waiters.push(p => { clearTimeout(timer); resolve(p) })
      this.presenceWaiters.set(user, waiters)
    })
  }

  private markReadSoon (conversation: number, seq: number): void {
    this.readDue.set(conversation, Math.max(seq, this.readDue.get(conversation) ?? 0))
    this.readTimer ??= setTimeout(() => this.flushReads(), READ_DELAY_MS)
  }

  private flushReads (): Promise<unknown> {
    clearTimeout(this.readTimer)
    this.readTimer = undefined
    // Receipts only move forward: a lost one is covered by the next.
    const marks = [...this.readDue].map(([conversation, seq]) => this.client.markRead(conversation, seq).catch(() => {}))
    this.readDue.clear()
    return Promise.all(marks)
  }

  /** The SDK knows its user only from its inbox; this session knows it from the start. */
  private normalized (m: ChatMessage): ChatMessage {
    const self = this.names.self
    const mine = m.mine || (self > 0 && m.sender === self)
    return { ...m, mine, sender: mine && !m.sender ? self : m.sender }
  }

  private ownSeq (conversation: number, seq: number): void {
    const seqs = this.ownSeqs.get(conversation) ?? []
    if (!seqs.includes(seq)) seqs.push(seq)
    this.ownSeqs.set(conversation, seqs)
  }

  private usersIn (m: ChatMessage): number[] {
    const users = [m.sender, m.peer]
    const system = m.content && 'system' in m.content ? m.content.system : null
    if (system) {
      users.push(Number(system.actor ?? 0), Number(system.left ?? 0), Number(system.role?.user ?? 0),
        ...(system.created?.members ?? []), ...(system.added?.users ?? []), ...(system.removed?.users ?? []))
    }
    return users.map(Number).filter(u => u > 0)
  }

  private async learnNames (users: number[]): Promise<void> {
    await this.names.learn(users).catch(() => {}) // a name that cannot be had shows as "user 7"
  }

  private noteSummary (s: ConversationSummary): void {
    this.known.set(s.conversation, { group: s.group, peer: s.peer, name: s.name || this.known.get(s.conversation)?.name || '' })
  }

  private noteMessage (m: ChatMessage): void {
    const before = this.known.get(m.conversation)
    const system = m.content && 'system' in m.content ? m.content.system : null
    const name = system?.created?.name ?? system?.renamed ?? before?.name ?? ''
    this.known.set(m.conversation, { group: m.group, peer: m.group ? 0 : (m.peer || before?.peer || 0), name })
    if (this.open?.group && this.open.conversation === m.conversation && name && system && (system.created || system.renamed)) {
      this.open.title = `#${m.conversation} ${name}`
      this.updatePrompt()
    }
  }

  private conversationWith (user: number): number | null {
    for (const [conversation, known] of this.known) if (!known.group && known.peer === user) return conversation
    return null
  }

  /** "#7" a group; "7" a user, or the group 7 when there is no conversation with user 7; a word: a login or a group's name. */
  private async resolveTarget (text: string): Promise<Target> {
    if (/^#\d+$/.test(text)) return { kind: 'group', group: Number(text.slice(1)) }
    if (/^\d+$/.test(text)) {
      const id = Number(text)
      if (this.known.get(id)?.group && this.conversationWith(id) === null) return { kind: 'group', group: id }
      return { kind: 'user', user: await this.names.resolveUser(text) }
    }
    const group = this.groupNamed(text)
    try {
      return { kind: 'user', user: await this.names.resolveUser(text) }
    } catch (err) {
      if (group !== null) return { kind: 'group', group }
      throw new Error(`no user or group called "${text}"`, { cause: err })
    }
  }

  private async resolveGroup (text: string): Promise<number> {
    if (/^#?\d+$/.test(text)) return Number(text.replace('#', ''))
    let group = this.groupNamed(text)
    if (group === null) {
      for (const g of await this.client.groups()) this.known.set(g.group, { group: true, peer: 0, name: g.name })
      group = this.groupNamed(text)
    }
    if (group === null) throw new Error(`no group called "${text}" (/groups lists yours)`)
    return group
  }

  private groupNamed (name: string): number | null {
    const found = [...this.known].filter(([, k]) => k.group && k.name.toLowerCase() === name.toLowerCase()).map(([id]) => id)
    if (found.length > 1) throw new Error(`${found.length} groups are called "${name}": say which with its id (${found.map(id => `#${id}`).join(', ')})`)
    return found[0] ?? null
  }

  private updatePrompt (): void {
    const state = this.client?.state ?? 'connecting'
    const title = this.open ? this.paint.bold(this.open.title) : ''
    const mark = state === 'online' ? '' : this.paint.yellow(` (${state})`)
    this.terminal.setPrompt(`${title}${mark}› `)
  }

  private print (...lines: string[]): void {
    this.show(() => lines)
  }

  /** Every line goes out through one queue, in the order decided. */
  private show (lines: () => string[] | Promise<string[]>): void {
    this.output = this.output.then(lines).then(ready => {
      if (ready.length > 0 && !this.failed) this.terminal.print(...ready)
    }, err => this.terminal.print(this.paint.red(errorText(err))))
  }

  private printError (err: unknown): void {
    if (this.ending && err instanceof ClosedError) return
    this.print(this.paint.red(errorText(err)))
  }
}
