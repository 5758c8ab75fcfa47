// One MQTT 3.1.1 connection at a time (protocol level 4, clean=false, client id = the device id:
// DESIGN 8), replaced whenever it dies or is found dead, with a jittered exponential backoff
// between attempts. Each attempt is a fresh mqtt.js client with its own reconnect switched off:
// mqtt.js would otherwise queue publishes while offline and replay its own idea of what is in
// flight; in this SDK the outbox and the pending requests are the one record of what must be
// (re)sent, and they are published only on a connection that is up.
//
// Requests go on `s` at QoS 0. The broker acknowledges a QoS 1 PUBLISH before any handler runs
// (DESIGN 4), so a PUBACK proves nothing a reply does not; QoS 0 saves the packet id and the
// PUBACK (6 bytes a request) and leaves retrying to the SDK, which knows what is safe to repeat.
//
// Liveness, besides the keepalive (options.ts argues the numbers): requests.ts bounds the answer
// to every request; here, a link on which nothing has arrived for `probeIdleMs` while no request
// is waiting gets a PINGREQ, and must answer within the request bound.
import mqtt, { type MqttClient } from 'mqtt'
import { createBackoff, type Backoff } from './backoff.ts'
import { ChatError, isFatalConnack } from './errors.ts'
import type { ConnectionState } from './events.ts'
import type { Settings } from './options.ts'
import { UPLINK } from './topics.ts'
import { wmq } from './wire.ts'

export interface ConnectionHandlers {
  /** CONNACK 0: publishing works from now on. */
  up (): void
  /** The connection is gone (the next attempt is scheduled unless refused or closed). */
  down (): void
  /** A PUBLISH from the broker. */
  arrived (topic: string, payload: Uint8Array): void
  state (state: ConnectionState, reason?: string): void
  /** CONNACK refused for good (1, 2, 4, 5): no more attempts. */
  refused (returnCode: number): void
  /** How many requests are waiting for an answer on this connection (they watch it themselves). */
  requestsInFlight (): number
}

const GRACEFUL_END_MS = 1000

export class Connection {
  connects = 0
  deadLinks = 0
  probes = 0
  probeTimeouts = 0
  private mq: MqttClient | null = null
  private state: ConnectionState = 'connecting'
  private closed = false
  private downReason = ''
  private readonly backoff: Backoff
  private reconnectTimer?: ReturnType<typeof setTimeout>
  private probeTimer?: ReturnType<typeof setInterval>
  private probeDeadline?: ReturnType<typeof setTimeout>
  private lastReceivedAt = 0

  constructor (private readonly settings: Settings, private readonly handlers: ConnectionHandlers, private probeIdleMs = settings.probeIdleMs) {
    this.backoff = createBackoff({ minMs: settings.reconnectMinMs, maxMs: settings.reconnectMaxMs })
  }

  get online (): boolean { return this.state === 'online' }
  get current (): ConnectionState { return this.state }

  open (): void {
    this.reconnectTimer = undefined
    if (this.closed) return
    let mq: MqttClient
    try {
      mq = this.connect()
    } catch (err) { // a URL mqtt.js cannot use: said in the state's reason, tried again later
      this.setState('reconnecting', (err as Error).message)
      this.reconnectTimer = setTimeout(() => this.open(), this.backoff.next())
      return
    }
    this.mq = mq
    this.downReason = ''
    let refused: number | null = null
    mq.on('connect', () => {
      if (this.mq !== mq) return
      this.connects++
      this.lastReceivedAt = Date.now()
      this.setState('online')
      this.startProbe(mq)
      this.handlers.up()
    })
    mq.on('packetreceive', () => {
      if (this.mq !== mq) return
      this.lastReceivedAt = Date.now()
      clearTimeout(this.probeDeadline)
      this.probeDeadline = undefined
    })
    mq.on('message', (topic, payload) => { if (this.mq === mq) this.handlers.arrived(topic, payload) })
    mq.on('error', err => {
      const code = (err as { code?: unknown }).code
      if (typeof code === 'number' && isFatalConnack(code)) refused = code
      else if (!this.downReason) this.downReason = err.message
    })
    mq.on('close', () => { if (this.mq === mq) this.lost(refused) })
  }

  private connect (): MqttClient {
    const url = typeof this.settings.url === 'function' ? this.settings.url() : this.settings.url
    return mqtt.connect(url, {
      ...this.settings.mqtt,
      clientId: this.settings.device,
      username: this.settings.login,
      password: this.settings.token ?? this.settings.password,
      protocolVersion: 4, // aedes speaks MQTT 3.1.1; version 5 is refused (DESIGN pitfalls)
      clean: false, // DESIGN 8: one device, one persistent session
      keepalive: this.settings.keepalive,
      reconnectPeriod: 0, // reconnects are ours (see the top of this file)
      connectTimeout: this.settings.connectTimeoutMs,
      resubscribe: false,
      queueQoSZero: false,
    })
  }

  /** Publishes a request on the uplink; false when no connection is up to take it. */
  publish (bytes: Uint8Array): boolean {
    const mq = this.mq
    if (!mq || !mq.connected || this.state !== 'online') return false
    mq.publish(UPLINK, toPayload(bytes), { qos: 0 })
    return true
  }

  /** One topic per SUBSCRIBE (DESIGN pitfalls: several at once can hang on Redis persistence). */
  subscribe (topic: string): Promise<void> {
    const mq = this.mq
    if (!mq || !this.online) return Promise.resolve() // made again after the next connect
    return new Promise((resolve, reject) => mq.subscribe(topic, { qos: 0 }, (err, granted) => {
      // A SUBACK of 0x80 (mqtt.js reports it as an error carrying the SUBACK): refused by the ACL.
      const refused = granted?.[0]?.qos === 128 || (err !== null && err !== undefined && 'packet' in err)
      if (refused) reject(new ChatError(wmq.ErrorCode.FORBIDDEN, `subscription to ${topic} refused`))
      else if (err) reject(err)
      else resolve()
    }))
  }

  unsubscribe (topic: string): Promise<void> {
    const mq = this.mq
    if (!mq || !this.online) return Promise.resolve()
    return new Promise(resolve => mq.unsubscribe(topic, () => resolve()))
  }

  /** The link is dead (no answer in time): end it now and reconnect, without waiting for keepalive. */
  dead (reason: string): void {
    const mq = this.mq
    if (!mq) return
    this.deadLinks++
    this.downReason = reason
    this.lost(null)
    mq.end(true)
  }

  /** Drops the current connection, or cuts the backoff short, and connects again now. */
  reconnectNow (reason: string): void {
    if (this.mq) return this.dead(reason)
    if (!this.closed && this.reconnectTimer) {
      clearTimeout(this.reconnectTimer)
      this.open()
    }
  }

  /** The connection did its work (a catch-up finished): the next failure retries fast again. */
  worked (): void {
    this.backoff.reset()
  }

  setIdleProbe (ms: number): void {
    this.probeIdleMs = ms
  }

  /** A DISCONNECT when the connection is up (the broker keeps the session), then no more attempts. */
  async close (): Promise<void> {
    if (this.closed) return
    this.closed = true
    clearTimeout(this.reconnectTimer)
    this.stopProbe()
    this.setState('offline', 'closed')
    const mq = this.mq
    this.mq = null
    if (mq) await endConnection(mq)
  }

  private lost (refused: number | null): void {
    this.mq = null
    this.stopProbe()
    this.handlers.down()
    if (this.closed) return
    if (refused !== null) {
      this.closed = true
      this.setState('offline', `refused: CONNACK ${refused}`)
      this.handlers.refused(refused)
      return
    }
    this.setState('reconnecting', this.downReason || 'connection closed')
    this.reconnectTimer = setTimeout(() => this.open(), this.backoff.next())
  }

  private startProbe (mq: MqttClient): void {
    this.stopProbe()
    this.probeTimer = setInterval(() => {
      if (this.mq !== mq || this.probeDeadline || this.probeIdleMs <= 0 || !mq.connected) return
      if (this.handlers.requestsInFlight() > 0) return // their own bounds watch the link
      if (Date.now() - this.lastReceivedAt < this.probeIdleMs) return
      this.probes++
      mq.sendPing()
      this.probeDeadline = setTimeout(() => {
        this.probeDeadline = undefined
        this.probeTimeouts++
        this.dead(`no answer to a ping in ${this.settings.requestTimeoutMs} ms`)
      }, this.settings.requestTimeoutMs)
    }, Math.max(100, Math.min(this.probeIdleMs || 1000, 1000)))
  }

  private stopProbe (): void {
    clearInterval(this.probeTimer)
    clearTimeout(this.probeDeadline)
    this.probeTimer = this.probeDeadline = undefined
  }

  private setState (state: ConnectionState, reason?: string): void {
    if (this.state === state) return
    this.state = state
    this.handlers.state(state, reason)
  }
}

/** mqtt.js publishes Buffers; in a browser bundle its Buffer shim accepts a Uint8Array as is. */
function toPayload (bytes: Uint8Array): Buffer {
  return (typeof Buffer === 'function' ? Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength) : bytes) as Buffer
}

/** A DISCONNECT when the connection is up (bounded: a dead link never answers), else just the socket. */
function endConnection (mq: MqttClient): Promise<void> {
  return new Promise(resolve => {
    const force = setTimeout(() => mq.end(true, {}, () => resolve()), GRACEFUL_END_MS)
    mq.end(!mq.connected, {}, () => {
      clearTimeout(force)
      resolve()
    })
  })
}
