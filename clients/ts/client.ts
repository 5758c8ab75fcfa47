// The client: what the application calls and listens to. It ties together the connection
// (connection.ts: MQTT, reconnects, liveness), the requests and their replies (requests.ts), the
// outbox (outbox.ts), per-conversation ordering (ordering.ts), the catch-up after each connect
// (sync.ts) and the store (store.ts). Everything that arrives is routed here by its Downlink kind.
import { Connection } from './connection.ts'
import { ChatError, ClosedError, ConnectRefusedError } from './errors.ts'
import { Emitter, type ChatEvents, type ConnectionState } from './events.ts'
import { settingsOf, type ConnectOptions, type Settings } from './options.ts'
import { Ordering } from './ordering.ts'
import { Outbox, type PendingSend } from './outbox.ts'
import { Requests, type ReplyKind } from './requests.ts'
import { checkState, createStateWriter, emptyState, memoryStore, type SavedState, type StateWriter, type Store } from './store.ts'
import { catchUp, type ConversationListPage } from './sync.ts'
import { isDeviceId, parseTopic, presenceTopic } from './topics.ts'
import {
  decodeDownlink, fromBase64, toBase64, toChatMessage, toGroupInfo, toHex, toHistoryPage, toMember, toReceipt, toSummary, wmq,
  type ChatMessage, type Content, type Context, type ConversationSummary, type DeletedEvent, type GroupInfo,
  type HistoryPage, type Member, type Receipt, type RecallEvent, type Recipient, type Role, type SendResult,
} from './wire.ts'

/** Counters for dashboards, benchmarks and tests. */
export interface ClientStats {
  /** CONNACKs received. */
  connects: number
  /** Connections ended because a request or a probe went unanswered. */
  deadLinks: number
  requestTimeouts: number
  /** Requests (sends included) published again after their connection went down unanswered. */
  republished: number
  probes: number
  probeTimeouts: number
  /** Messages applied to the application. */
  delivered: number
  /** Copies dropped because their (conversation, seq) was applied or held already. */
  duplicates: number
  /** History pulls started to fill a gap or catch up. */
  fills: number
}

const LIST_PAGE = 100
const PAGE_BYTES = 8192 // the broker's HISTORY_PAGE_BYTES default: what one page may weigh
const PARALLEL_PULLS = 4

export class ChatClient {
  readonly device: string
  private readonly settings: Settings
  private readonly events = new Emitter()
  private readonly store: Store
  private readonly requests: Requests
  private readonly connection: Connection
  private readonly loaded: Promise<void>
  private saved: SavedState
  private readonly writer: StateWriter
  private ordering: Ordering | null = null
  private outbox: Outbox | null = null
  private closed = false
  private readonly presence = new Set<number>()
  private readonly peers = new Map<number, number>()
  private catchingUp: Promise<void> | null = null
  private catchUpAgain = false
  private synced = false
  private syncWaiters: Array<() => void> = []
  private receiptTimer?: ReturnType<typeof setTimeout>
  private readonly receiptsDue = new Set<number>()
  private delivered = 0
  private readonly context: Context

  constructor (options: ConnectOptions) {
    if (!isDeviceId(options.device)) throw new Error(`device "${options.device}" is not a device id: 1-11 base-36 characters, no leading zero`)
    if (!options.token && !options.password) throw new Error('connect needs a token or a password')
    this.settings = settingsOf(options)
    this.device = options.device
    this.store = options.store ?? memoryStore()
    this.saved = emptyState(this.device)
    this.writer = createStateWriter(this.store, () => this.snapshot())
    const self = this
    this.context = { get self () { return self.saved.user || null }, peerOf: conversation => self.peers.get(conversation) ?? 0 }
    this.connection = new Connection(this.settings, {
      up: () => this.linkUp(),
      down: () => this.requests.linkDown(),
      arrived: (topic, payload) => this.arrived(topic, payload),
      state: (state, reason) => this.events.emit('state', state, reason),
      refused: returnCode => this.refused(returnCode),
      requestsInFlight: () => this.requests.inFlight,
    })
    this.requests = new Requests({
      publish: bytes => this.connection.publish(bytes),
      dead: reason => this.connection.dead(reason),
    }, { baseMs: this.settings.requestTimeoutMs, bytesPerSecond: this.settings.linkBytesPerSecond })
    this.loaded = this.load()
    this.loaded.then(() => this.connection.open(), (err: Error) => {
      void this.connection.close()
      this.closed = true
      this.events.emit('error', err)
    })
  }

  get state (): ConnectionState { return this.connection.current }
  /** This device's user id, once known. */
  get user (): number | null { return this.saved.user || null }

  on<E extends keyof ChatEvents> (event: E, listener: ChatEvents[E]): () => void { return this.events.on(event, listener) }
  off<E extends keyof ChatEvents> (event: E, listener: ChatEvents[E]): void { this.events.off(event, listener) }

  // ---- messages ----

  /**
   * Sends a message: stored in the outbox first, then published, and again after every reconnect
   * and restart with the same client_msg_id until the broker's SendAck, which this resolves with.
   * Rejects with ChatError when the broker refuses it for good (the entry is then removed), with
   * ClosedError when the client closes first (the entry stays and goes out after the next connect).
   */
  async send (to: Recipient, content: string | Content): Promise<SendResult> {
    await this.loaded
    if (this.closed) throw new ClosedError('the client is closed')
    return this.outbox!.add(to, content)
  }

  /** Sends not yet acknowledged, oldest first. */
  pendingSends (): PendingSend[] {
    return this.outbox?.pending() ?? []
  }

  /**
   * The conversations changed since the cursor a call before returned (omitted or '': all of them),
   * every page, and the cursor to pass next time. A conversation comes once in a call; it can come
   * again in the next when it changed while a long list was being paged.
   */
  async syncConversations (options: { since?: string } = {}): Promise<{ conversations: ConversationSummary[], cursor: string }> {
    await this.loaded
    const conversations: ConversationSummary[] = []
    let cursor = options.since ?? ''
    for (;;) {
      const page = await this.listPage(cursor, this.settings.requestDeadlineMs)
      conversations.push(...page.summaries)
      cursor = page.cursor
      if (!page.more || page.summaries.length === 0) return { conversations, cursor }
    }
  }

  /** One page of history: after a seq (ascending from it) or before one (the newest below it), ascending in both cases. */
  async history (conversation: number, options: { after?: number, before?: number, limit?: number } = {}): Promise<HistoryPage> {
    const reply = await this.ask({ syncHistory: { conversation, afterSeq: options.after ?? 0, beforeSeq: options.before ?? 0, limit: options.limit ?? 0 } },
      'history', { replyBytes: PAGE_BYTES })
    return toHistoryPage(reply.history!, this.context)
  }

  /** Marks everything up to `seq` read (on every device of the user, and for the partner or members). */
  async markRead (conversation: number, seq: number): Promise<Receipt> {
    return toReceipt((await this.ask({ receipt: { conversation, readSeq: seq } }, 'receipt')).receipt!)
  }

  async markDelivered (conversation: number, seq: number): Promise<Receipt> {
    return toReceipt((await this.ask({ receipt: { conversation, deliveredSeq: seq } }, 'receipt')).receipt!)
  }

  /** A typing hint: fire and forget (QoS 0, no reply; the broker drops it past its rate limit). */
  typing (conversation: number, active: boolean): void {
    this.connection.publish(wmq.Uplink.encode({ ref: 0, typing: { conversation, active } }).finish())
  }

  async recall (conversation: number, seq: number): Promise<RecallEvent> {
    const recall = (await this.ask({ recall: { conversation, seq } }, 'recall')).recall!
    return { conversation: Number(recall.conversation), seq: Number(recall.seq) }
  }

  /** Hides messages from this user's history on all of its devices; resolves with the seqs now hidden. */
  async deleteForMe (conversation: number, seqs: number[]): Promise<DeletedEvent> {
    const deleted = (await this.ask({ deleteForMe: { conversation, seqs } }, 'deleted')).deleted!
    return { conversation: Number(deleted.conversation), seqs: (deleted.seqs ?? []).map(Number) }
  }

  // ---- groups: changes are not safe to repeat, so a connection lost mid-request fails them with LinkLostError ----

  async createGroup (name: string, members: number[]): Promise<GroupInfo> {
    return toGroupInfo((await this.ask({ groupCreate: { name, members } }, 'group', { retry: 'once' })).group!)
  }

  addMembers (group: number, users: number[]): Promise<GroupInfo> { return this.updateGroup({ group, add: { users } }) }
  removeMembers (group: number, users: number[]): Promise<GroupInfo> { return this.updateGroup({ group, remove: { users } }) }
  leaveGroup (group: number): Promise<GroupInfo> { return this.updateGroup({ group, leave: true }) }
  renameGroup (group: number, name: string): Promise<GroupInfo> { return this.updateGroup({ group, rename: name }) }
  setRole (group: number, user: number, role: Role): Promise<GroupInfo> { return this.updateGroup({ group, role: { user, role } }) }

  async groups (): Promise<GroupInfo[]> {
    return ((await this.ask({ groupList: {} }, 'groups', { replyBytes: PAGE_BYTES })).groups!.groups ?? []).map(toGroupInfo)
  }

  async members (group: number): Promise<Member[]> {
    return ((await this.ask({ groupMembers: { group } }, 'members', { replyBytes: PAGE_BYTES })).members!.members ?? []).map(toMember)
  }

  /**
   * Any request of chat.proto, for kinds this SDK has no method for (contacts, profiles, privacy,
   * search: issue 7): resolves with the Downlink whose `expect` field answers it, with the same
   * timeouts and retries as every request. `retry: 'once'` for a change that is not safe to repeat.
   */
  request (request: Omit<wmq.IUplink, 'ref'>, expect: ReplyKind, options: { retry?: 'resend' | 'once' } = {}): Promise<wmq.Downlink> {
    return this.ask(request, expect, { retry: options.retry, replyBytes: PAGE_BYTES })
  }

  /** A round trip to the broker; resolves with its clock (ms since the epoch). */
  async ping (): Promise<number> {
    const pong = (await this.ask({ ping: {} }, 'pong')).pong!
    if (pong.user) this.learnUser(Number(pong.user)) // the broker says who this device is logged in as
    return Number(pong.time)
  }

  // ---- presence ----

  /**
   * Follows a user's presence (retained on p/{user}: the current state comes at once). The broker
   * allows the user's own, 1:1 partners' and group peers'; a refusal rejects with ChatError(FORBIDDEN).
   */
  async subscribePresence (user: number): Promise<void> {
    await this.loaded
    this.presence.add(user)
    try {
      await this.connection.subscribe(presenceTopic(user))
    } catch (err) {
      // A lost connection is no refusal: the subscription is made after the next connect.
      if (!(err instanceof ChatError)) return
      this.presence.delete(user)
      throw new ChatError(err.code, `may not follow the presence of user ${user}`)
    }
  }

  async unsubscribePresence (user: number): Promise<void> {
    this.presence.delete(user)
    await this.connection.unsubscribe(presenceTopic(user))
  }

  // ---- lifecycle ----

  /** Resolves once a catch-up after the current (or next) connection has finished. */
  whenSynced (): Promise<void> {
    if (this.synced && this.connection.online && !this.catchingUp) return Promise.resolve()
    return new Promise(resolve => this.syncWaiters.push(resolve))
  }

  /** Drops the current connection and connects again now (the application knows the network changed). */
  reconnectNow (reason = 'asked by the application'): void {
    this.connection.reconnectNow(reason)
  }

  /** Changes the idle probe (0: off), e.g. when the application goes to the background. */
  setIdleProbe (ms: number): void {
    this.connection.setIdleProbe(ms)
  }

  stats (): ClientStats {
    const { connects, deadLinks, probes, probeTimeouts } = this.connection
    return {
      connects,
      deadLinks,
      requestTimeouts: this.requests.timeouts,
      republished: this.requests.republished,
      probes,
      probeTimeouts,
      delivered: this.delivered,
      duplicates: this.ordering?.duplicates ?? 0,
      fills: this.ordering?.fills ?? 0,
    }
  }

  /**
   * Ends the connection (with a DISCONNECT when it is up; the broker keeps the session) and saves
   * the state. Pending promises reject with ClosedError; unacknowledged sends stay in the store.
   */
  async close (): Promise<void> {
    if (this.closed) return
    this.closed = true
    clearTimeout(this.receiptTimer)
    this.stopAll(new ClosedError('the client was closed'))
    await this.connection.close()
    await this.loaded.catch(() => {})
    await this.writer.write()
  }

  // ---- inside ----

  private async load (): Promise<void> {
    const raw = await this.store.load()
    this.saved = raw ? checkState(raw, this.device) : emptyState(this.device)
    if (this.settings.user) this.saved.user = this.settings.user
    this.ordering = new Ordering({
      gapWaitMs: this.settings.gapWaitMs,
      fetchAfter: async (conversation, afterSeq) => {
        const reply = await this.requests.request(ref => ({ ref, syncHistory: { conversation, afterSeq, limit: this.settings.historyPageLimit } }),
          { expect: 'history', retry: 'resend', replyBytes: PAGE_BYTES })
        return toHistoryPage(reply.history!, this.context)
      },
      deliver: message => this.apply(message),
      advanced: (conversation, seq) => {
        this.saved.applied[conversation] = seq
        this.persist()
      },
      failed: (conversation, err) => {
        if (!(err instanceof ClosedError)) this.events.emit('error', new Error(`history of conversation ${conversation}: ${(err as Error).message}`))
      },
    }, this.saved.applied, this.saved.started)
    this.outbox = new Outbox({
      send: async (clientMsgId, to, content) => (await this.requests.request(ref => ({ ref, send: { clientMsgId, ...to, content } }),
        { expect: 'sendAck', retry: 'resend' })).sendAck!,
      persist: () => this.writer.write(),
      acknowledged: (send, result) => {
        if ('user' in send.to) this.peers.set(result.conversation, send.to.user)
        // This device gets no copy of its own message (DESIGN 7): the acknowledgement places it.
        this.ordering!.receive({
          conversation: result.conversation,
          seq: result.seq,
          sender: this.saved.user,
          mine: true,
          time: result.time,
          content: send.content,
          group: 'group' in send.to,
          peer: 'user' in send.to ? send.to.user : 0,
          recalled: false,
          clientMsgId: send.clientMsgId,
        })
        this.events.emit('sent', result)
      },
      failed: (send, error) => this.events.emit('sendFailed', { clientMsgId: send.clientMsgId, error }),
      retryDelayMs: attempt => Math.min(this.settings.reconnectMaxMs, this.settings.reconnectMinMs * 2 ** attempt),
    }, this.saved.outbox)
    if (this.saved.started) this.outbox.start()
  }

  private snapshot (): SavedState {
    return { ...this.saved, applied: { ...this.saved.applied }, outbox: this.outbox?.snapshot() ?? this.saved.outbox }
  }

  private persist (): void {
    this.writer.write().catch((err: Error) => this.events.emit('error', new Error(`store: ${err.message}`)))
  }

  private ask (request: Omit<wmq.IUplink, 'ref'>, expect: ReplyKind,
    options: { retry?: 'resend' | 'once', replyBytes?: number } = {}): Promise<wmq.Downlink> {
    if (this.closed) return Promise.reject(new ClosedError('the client is closed'))
    return this.requests.request(ref => ({ ...request, ref }),
      { expect, retry: options.retry ?? 'resend', replyBytes: options.replyBytes, deadlineMs: this.settings.requestDeadlineMs })
  }

  private async updateGroup (update: wmq.IGroupUpdate): Promise<GroupInfo> {
    return toGroupInfo((await this.ask({ groupUpdate: update }, 'group', { retry: 'once' })).group!)
  }

  /** One page of the list; a cursor the broker cannot read (INVALID_ARGUMENT) is dropped for the whole list. */
  private async listPage (cursor: string, deadlineMs?: number): Promise<ConversationListPage> {
    const ask = (from: string) => this.requests.request(ref => ({ ref, syncConversations: { cursor: fromBase64(from), limit: LIST_PAGE } }),
      { expect: 'conversations', retry: 'resend', replyBytes: PAGE_BYTES, deadlineMs })
    const reply = await ask(cursor).catch(err => {
      if (cursor === '' || !(err instanceof ChatError) || err.code !== wmq.ErrorCode.INVALID_ARGUMENT) throw err
      return ask('') // a cursor of an older broker, say: every conversation again is safe, skipping one is not
    })
    const page = reply.conversations!
    const summaries = (page.conversations ?? []).map(s => toSummary(s, this.context))
    for (const s of summaries) if (s.peer) this.peers.set(s.conversation, s.peer)
    return { summaries, cursor: toBase64(page.cursor ?? new Uint8Array()), more: Boolean(page.more) }
  }

  /** A message in its turn: to the application, once. */
  private apply (message: ChatMessage): void {
    if (message.mine && message.sender && !this.saved.user) this.learnUser(message.sender)
    if (!message.group && message.peer) this.peers.set(message.conversation, message.peer)
    // An own message seen in history or from another path acknowledges its outbox entry too.
    if (message.clientMsgId && this.outbox?.has(message.clientMsgId)) this.outbox.acknowledge(message.clientMsgId, message)
    this.delivered++
    this.events.emit('message', message)
    const system = message.content && 'system' in message.content ? message.content.system : null
    if (system) this.events.emit('group', { group: message.conversation, seq: message.seq, actor: message.sender, time: message.time, event: system })
    if (!message.mine && this.settings.deliveryReceipts) this.deliveryReceiptDue(message.conversation)
  }

  private deliveryReceiptDue (conversation: number): void {
    this.receiptsDue.add(conversation)
    this.receiptTimer ??= setTimeout(() => {
      this.receiptTimer = undefined
      for (const c of this.receiptsDue) {
        const seq = this.ordering?.appliedOf(c)
        if (seq) this.markDelivered(c, seq).catch(() => {}) // monotonic on the broker: a lost one is covered by the next
      }
      this.receiptsDue.clear()
    }, this.settings.deliveryReceiptDelayMs)
  }

  private learnUser (user: number): void {
    if (this.saved.user === user) return
    this.saved.user = user
    this.persist()
  }

  private linkUp (): void {
    this.requests.linkUp()
    // Presence is QoS 0 and never queued for an absent device, and the broker answers every
    // CONNACK with session present = 1 (it writes the session's subscriptions before it), so a
    // lost session cannot be told from a kept one: subscribe again after every connect, which
    // also brings each followed user's current retained state.
    void this.resubscribe()
    this.startCatchUp()
  }

  private async resubscribe (): Promise<void> {
    for (const user of [...this.presence]) { // one at a time: one topic per SUBSCRIBE (DESIGN pitfalls)
      try {
        await this.connection.subscribe(presenceTopic(user))
      } catch (err) {
        if (!(err instanceof ChatError)) return // the connection went down: again after the next connect
        this.presence.delete(user) // the right to follow this user was taken back
        this.events.emit('error', new ChatError(err.code, `may no longer follow the presence of user ${user}`))
      }
    }
  }

  private refused (returnCode: number): void {
    this.closed = true
    const error = new ConnectRefusedError(returnCode)
    this.stopAll(error)
    this.events.emit('error', error)
  }

  /** Fails what waits (sends stay in the store), stops the timers. */
  private stopAll (error: Error): void {
    this.requests.close(error)
    this.outbox?.close(error)
    this.ordering?.close()
    for (const wake of this.syncWaiters.splice(0)) wake()
  }

  private startCatchUp (): void {
    if (this.catchingUp) {
      this.catchUpAgain = true // the session may be new: list again once this one is done
      return
    }
    this.synced = false
    this.catchingUp = (async () => {
      // A new device learns its user id before anything else: its own messages need it.
      if (!this.saved.user) await this.ping().catch(() => {})
      do {
        this.catchUpAgain = false
        const started = this.saved.started
        const changed = await catchUp({
          ordering: this.ordering!,
          listPage: since => this.listPage(since),
          started,
          saveCursor: cursor => { this.saved.cursor = cursor; this.persist() },
          parallelPulls: PARALLEL_PULLS,
          changes: summary => {
            for (const seq of summary.recalled) this.recalled(summary.conversation, seq)
            if (summary.deleted.length > 0) this.events.emit('deleted', { conversation: summary.conversation, seqs: summary.deleted })
          },
        }, this.saved.cursor)
        if (!started) {
          this.saved.started = true
          this.persist()
          this.ordering!.markReady()
          this.outbox!.start()
        }
        if (changed.length > 0) this.events.emit('conversations', changed)
      } while (this.catchUpAgain && !this.closed)
    })().then(() => {
      this.catchingUp = null
      if (this.closed) return
      this.synced = true
      this.connection.worked()
      this.events.emit('synced')
      for (const wake of this.syncWaiters.splice(0)) wake()
    }, (err: Error) => {
      this.catchingUp = null
      if (!(err instanceof ClosedError) && !(err instanceof ConnectRefusedError)) this.events.emit('error', new Error(`catch-up: ${err.message}`))
    })
  }

  private arrived (topic: string, payload: Uint8Array): void {
    const where = parseTopic(topic)
    if (!where) return
    try {
      if (where.kind === 'presence') {
        const presence = wmq.Presence.decode(payload)
        this.events.emit('presence', { user: where.user, online: presence.online === true, lastSeen: Number(presence.lastSeen) })
        return
      }
      if (where.kind === 'inbox') this.learnUser(where.user)
      this.downlink(decodeDownlink(payload))
    } catch (err) {
      this.events.emit('error', new Error(`undecodable publish on ${topic}: ${(err as Error).message}`))
    }
  }

  /** A recall, as an event or from the conversation list: a message still held back is applied recalled. */
  private recalled (conversation: number, seq: number): void {
    this.ordering!.markRecalled(conversation, seq)
    this.events.emit('recall', { conversation, seq })
  }

  private downlink (d: wmq.Downlink): void {
    if (this.requests.answer(d)) return
    switch (d.event) {
      case 'message': return this.ordering!.receive(toChatMessage(d.message!, this.context))
      case 'sendAck': { // the reply to a request of an earlier run (queued in the session): matched by its id
        const ack = d.sendAck!
        const id = ack.clientMsgId?.length ? toHex(ack.clientMsgId) : ''
        return this.outbox!.acknowledge(id, { conversation: Number(ack.conversation), seq: Number(ack.seq), time: Number(ack.time) })
      }
      case 'receipt': return this.events.emit('receipt', toReceipt(d.receipt!))
      case 'typing': return this.events.emit('typing', { conversation: Number(d.typing!.conversation), user: Number(d.typing!.user), active: Boolean(d.typing!.active) })
      case 'recall': return this.recalled(Number(d.recall!.conversation), Number(d.recall!.seq))
      case 'deleted': return this.events.emit('deleted', { conversation: Number(d.deleted!.conversation), seqs: (d.deleted!.seqs ?? []).map(Number) })
      case 'error':
        if (!d.ref) this.events.emit('error', new ChatError(d.error!.code ?? wmq.ErrorCode.OK, d.error!.detail ?? '')) // a refusal of a request sent without ref (typing)
        return
      default:
        // Events this SDK does not interpret (contact, profile, privacy: issue 7); a reply whose
        // request was given up has a ref and is dropped.
        if (!d.ref) this.events.emit('downlink', d)
    }
  }
}

/** Starts a client: it loads its store, connects, and reconnects until closed. Listen to its events at once. */
export function connect (options: ConnectOptions): ChatClient {
  return new ChatClient(options)
}
