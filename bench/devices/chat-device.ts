// A minimal weakmq device: the protocol logic of the SDK (clients/ts), without its storage and
// events, so that thousands fit in one generator. Kept to what the protocol promises a device that
// follows it (schema/chat.proto, PROTOCOL.md, DESIGN 2-6):
//  - Requests go on `s` at QoS 0, as the SDK sends them (PROTOCOL.md section 2: the reply is the
//    acknowledgement; a PUBACK would add 6 bytes and nothing the outbox does not already do).
//  - Sends: Uplink{send} with an 8-byte client_msg_id (4 random bytes per device, then a count: one
//    randomBytes call per message was 5% of the generator's CPU), kept until their SendAck
//    (DESIGN 4). After every reconnect each unanswered send goes again, in order, with the same id
//    (DESIGN 3: a repeat returns the first SendAck). While disconnected nothing is published; the
//    outbox waits for the next CONNACK.
//  - Dead links: a request unanswered for `ackTimeoutMs` on a live connection ends that connection
//    and the device reconnects (DESIGN §Weak networks: do not wait for keepalive). A device that
//    has heard nothing for `probeIdleMs` sends a PINGREQ, which the same rule then covers: a device
//    that only receives notices a silently dropped link too.
//  - Exactly once, in order (DESIGN 5): per conversation the device applies seq after seq, drops
//    what it has applied, holds back what arrives early, and fills a gap that lasts `gapWaitMs`
//    with SyncHistory pages. The SendAck places the device's own message in its conversation.
//  - After every reconnect, SyncConversations tells which conversations moved; their gaps are
//    filled the same way.
import { randomBytes } from 'node:crypto'
import { performance } from 'node:perf_hooks'
import type { MqttClient } from 'mqtt'
import { wmq } from '../../schema/generated/chat.js'
import { openConnection, type Connection, type ConnectionOptions } from './connection.ts'
import { noWireStats, type AppEvents, type BenchDevice, type SendTarget } from './device.ts'

export interface ChatDeviceOptions {
  index: number
  user: number
  clientId: string
  login: string
  token: string
  connection: ConnectionOptions
  /** 0: never give up a connection for an unanswered request (keepalive only). */
  ackTimeoutMs: number
  /** Silence after which the device probes its link with a PINGREQ; 0: never (keepalive only). */
  probeIdleMs: number
  gapWaitMs: number
  /** Messages per history page asked for; 0 leaves it to the broker (HISTORY_PAGE). */
  historyLimit: number
  app: AppEvents
}

interface Outgoing {
  key: number
  payload: Buffer
  /** Last transmission on a live connection. */
  sentAt: number
  transmissions: number
}

interface Pending {
  kind: 'conversations' | 'history'
  sentAt: number
}

interface ConversationState {
  /** Every seq up to here is applied. */
  applied: number
  /** The highest seq known to exist. */
  known: number
  /** Arrived ahead of a gap; null for the device's own message (placed by its SendAck). */
  held: Map<number, wmq.IMessage | null>
  filling: boolean
  gapTimer: NodeJS.Timeout | null
}

const REQUEST_LIMIT_MS = 30_000

export class ChatDevice implements BenchDevice {
  readonly index: number
  readonly stats = noWireStats()
  connected = false
  private readonly link: Connection
  private readonly outbox = new Map<number, Outgoing>()
  private readonly pending = new Map<number, Pending>()
  private readonly waiters = new Map<number, (reply: wmq.Downlink) => void>()
  private readonly conversations = new Map<number, ConversationState>()
  private cursor: Uint8Array = new Uint8Array()
  private nextRef = 1
  private readonly idPrefix = randomBytes(4)
  private sends = 0
  private lastHeardAt = 0
  private probeSentAt = 0
  /** The connection was given up and its close is on its way. */
  private breaking = false
  private everConnected = false
  private started: { resolve(): void; reject(err: Error): void } | null = null

  constructor(private readonly options: ChatDeviceOptions) {
    this.index = options.index
    this.link = openConnection(options.connection, { clientId: options.clientId, username: options.login, password: options.token })
    const { client } = this.link
    client.on('connect', () => this.onConnect())
    client.on('close', () => this.onClose())
    client.on('message', (topic, payload) => this.onMessage(topic, payload))
    client.on('packetreceive', () => {
      this.lastHeardAt = performance.now()
      this.probeSentAt = 0
    })
    client.on('error', (err: Error & { code?: number }) => {
      if (typeof err.code === 'number' && this.started) this.started.reject(new Error(`device ${options.clientId} refused: ${err.message}`))
    })
  }

  start(): Promise<void> {
    if (this.everConnected || this.started) return Promise.reject(new Error('start() is called once'))
    const started = new Promise<void>((resolve, reject) => { this.started = { resolve, reject } })
    this.link.connect()
    return started
  }

  send(to: SendTarget, text: string, key: number): void {
    const ref = this.takeRef()
    const clientMsgId = Buffer.allocUnsafe(8)
    this.idPrefix.copy(clientMsgId)
    clientMsgId.writeUInt32BE(++this.sends >>> 0, 4)
    const uplink = { ref, send: { clientMsgId, ...to, content: { text } } }
    const entry: Outgoing = { key, payload: Buffer.from(wmq.Uplink.encode(uplink).finish()), sentAt: performance.now(), transmissions: 0 }
    this.outbox.set(ref, entry)
    if (this.connected) this.transmit(entry)
  }

  /** A request whose reply the caller awaits (setup: groupCreate). */
  ask(request: Omit<wmq.IUplink, 'ref'>, limitMs = REQUEST_LIMIT_MS): Promise<wmq.Downlink> {
    const ref = this.takeRef()
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        this.waiters.delete(ref)
        reject(new Error(`no reply to ${Object.keys(request).join(',')} within ${limitMs} ms`))
      }, limitMs)
      this.waiters.set(ref, (reply) => {
        clearTimeout(timer)
        resolve(reply)
      })
      this.publish({ ...request, ref })
    })
  }

  /** The highest seq applied in a conversation (0: none). */
  applied(conversation: number): number {
    return this.conversations.get(conversation)?.applied ?? 0
  }

  watch(now: number): void {
    const limit = this.options.ackTimeoutMs
    if (!this.connected || this.breaking || limit <= 0) return
    const oldestSend = this.outbox.values().next().value
    const oldestRequest = this.pending.values().next().value
    const probeUnanswered = this.probeSentAt > 0 && now - this.probeSentAt > limit
    if (probeUnanswered || (oldestSend && now - oldestSend.sentAt > limit) || (oldestRequest && now - oldestRequest.sentAt > limit)) {
      this.stats.deadLinks++
      this.probeSentAt = 0
      this.breaking = true
      this.link.breakLink()
    } else if (this.options.probeIdleMs > 0 && this.probeSentAt === 0 && now - this.lastHeardAt > this.options.probeIdleMs) {
      this.stats.probes++
      this.probeSentAt = now
      this.link.client.sendPing()
    }
  }

  leave(): void {
    this.link.leave()
  }

  rejoin(): void {
    this.link.rejoin()
  }

  bytes(): { up: number; down: number } {
    return this.link.bytes()
  }

  mqttClient(): MqttClient {
    return this.link.client
  }

  stop(): Promise<void> {
    for (const c of this.conversations.values()) if (c.gapTimer) clearTimeout(c.gapTimer)
    const { client } = this.link
    // Forced: end(false) waits for every QoS 1 publish in flight to be acknowledged, which on a dead
    // link (or for a publish the device gave up on) is never.
    return new Promise((resolve) => client.end(true, {}, () => resolve()))
  }

  private takeRef(): number {
    const ref = this.nextRef
    this.nextRef = this.nextRef >= 0xffffffff ? 1 : this.nextRef + 1
    return ref
  }

  /** Requests other than sends go only on a live connection: after a reconnect they are asked afresh. */
  private publish(uplink: wmq.IUplink): void {
    if (this.connected) this.link.client.publish('s', Buffer.from(wmq.Uplink.encode(uplink).finish()), { qos: 0 })
  }

  private transmit(entry: Outgoing): void {
    if (entry.transmissions++ > 0) this.stats.resends++
    this.link.client.publish('s', entry.payload, { qos: 0 })
  }

  private request(kind: Pending['kind'], uplink: Omit<wmq.IUplink, 'ref'>): void {
    const ref = this.takeRef()
    this.pending.set(ref, { kind, sentAt: performance.now() })
    this.publish({ ...uplink, ref })
  }

  private onConnect(): void {
    const now = performance.now()
    const reconnect = this.everConnected
    this.everConnected = true
    this.connected = true
    this.breaking = false
    this.lastHeardAt = now
    this.probeSentAt = 0
    this.stats.connects++
    this.options.app.connected(this.index, reconnect, now)
    this.started?.resolve()
    this.started = null
    // What was asked on the old connection is forgotten; late replies are still used.
    this.pending.clear()
    for (const c of this.conversations.values()) c.filling = false
    for (const entry of this.outbox.values()) {
      entry.sentAt = now
      this.transmit(entry)
    }
    if (reconnect) this.syncConversations(this.cursor)
  }

  private onClose(): void {
    if (!this.connected) return
    this.connected = false
    this.options.app.disconnected(this.index, performance.now())
  }

  private onMessage(topic: string, payload: Buffer): void {
    let downlink: wmq.Downlink
    try {
      downlink = wmq.Downlink.decode(payload)
    } catch {
      this.stats.errors++
      return
    }
    if (topic.startsWith('u/')) {
      if (downlink.message) this.arrive(downlink.message)
      return
    }
    const waiter = this.waiters.get(downlink.ref)
    if (waiter) {
      this.waiters.delete(downlink.ref)
      return waiter(downlink)
    }
    if (downlink.sendAck) this.onSendAck(downlink.ref, downlink.sendAck)
    else if (downlink.history) this.onHistory(downlink.ref, downlink.history)
    else if (downlink.conversations) this.onConversations(downlink.ref, downlink.conversations)
    else if (downlink.error) {
      this.stats.errors++
      // A refused send will never be acknowledged: forget it (the ledger reports it unacknowledged).
      this.outbox.delete(downlink.ref)
      this.pending.delete(downlink.ref)
    }
  }

  private onSendAck(ref: number, ack: wmq.ISendAck): void {
    const entry = this.outbox.get(ref)
    if (!entry) {
      this.stats.wireDuplicates++ // the answer to a repeat, or one kept in the session while away
      return
    }
    this.outbox.delete(ref)
    const now = performance.now()
    this.options.app.acked(this.index, entry.key, now)
    this.place(Number(ack.conversation), Number(ack.seq), null, now)
  }

  private syncConversations(cursor: Uint8Array): void {
    this.stats.syncs++
    this.request('conversations', { syncConversations: { cursor } })
  }

  private onConversations(ref: number, page: wmq.IConversationPage): void {
    const asked = this.pending.delete(ref)
    for (const summary of page.conversations ?? []) {
      const c = this.conversation(Number(summary.conversation))
      c.known = Math.max(c.known, Number(summary.lastSeq))
      if (c.known > c.applied) this.scheduleFill(Number(summary.conversation), c)
    }
    // The cursor is opaque: only a reply on this connection's turn moves it (a late one may be older).
    if (!asked) return
    this.cursor = page.cursor ?? new Uint8Array()
    if (page.more) this.syncConversations(this.cursor)
  }

  private onHistory(ref: number, page: wmq.IHistoryPage): void {
    const asked = this.pending.delete(ref)
    const conversation = Number(page.conversation)
    const c = this.conversation(conversation)
    const before = c.applied
    if (asked) c.filling = false
    c.known = Math.max(c.known, Number(page.lastSeq ?? 0))
    const now = performance.now()
    for (const message of page.messages ?? []) this.place(conversation, Number(message.seq), message, now)
    if (asked && page.more && c.applied > before) this.fill(conversation, c)
    else if (c.known > c.applied || c.held.size > 0) this.scheduleFill(conversation, c)
  }

  private arrive(message: wmq.IMessage): void {
    this.place(Number(message.conversation), Number(message.seq), message, performance.now())
  }

  /** DESIGN 5: apply in seq order, once; hold back what is early. */
  private place(conversation: number, seq: number, message: wmq.IMessage | null, now: number): void {
    const c = this.conversation(conversation)
    if (seq <= c.applied || c.held.has(seq)) {
      this.stats.wireDuplicates++
      return
    }
    c.known = Math.max(c.known, seq)
    if (seq !== c.applied + 1) {
      c.held.set(seq, message)
      this.stats.heldBack++
      this.scheduleFill(conversation, c)
      return
    }
    this.apply(c, seq, message, now)
    for (let next = c.applied + 1; c.held.has(next); next++) {
      const held = c.held.get(next) ?? null
      c.held.delete(next)
      this.apply(c, next, held, now)
    }
    if (c.known > c.applied) this.scheduleFill(conversation, c)
  }

  private apply(c: ConversationState, seq: number, message: wmq.IMessage | null, now: number): void {
    c.applied = seq
    const text = message?.content?.text
    if (message && Number(message.sender) !== this.options.user && text) this.options.app.delivered(this.index, text, now)
  }

  private conversation(id: number): ConversationState {
    let c = this.conversations.get(id)
    if (!c) {
      c = { applied: 0, known: 0, held: new Map(), filling: false, gapTimer: null }
      this.conversations.set(id, c)
    }
    return c
  }

  /**
   * A gap may be a message still on its way, or the device's own send whose SendAck has not come
   * yet (the broker fans a later message out before it answers an earlier send): fill it only if
   * it lasts, and not while this device's unanswered sends could be what is missing. Those are
   * answered or, on a dead link, sent again after the reconnect.
   */
  private scheduleFill(conversation: number, c: ConversationState): void {
    if (c.filling || c.gapTimer) return
    c.gapTimer = setTimeout(() => {
      c.gapTimer = null
      if (!this.connected || c.filling || (c.known <= c.applied && c.held.size === 0)) return
      const missing = c.known - c.applied - c.held.size
      if (missing > 0 && missing <= this.outbox.size) return this.scheduleFill(conversation, c)
      this.fill(conversation, c)
    }, this.options.gapWaitMs)
  }

  private fill(conversation: number, c: ConversationState): void {
    c.filling = true
    this.stats.gapFills++
    const limit = this.options.historyLimit
    this.request('history', { syncHistory: { conversation, afterSeq: c.applied, ...(limit ? { limit } : {}) } })
  }
}
