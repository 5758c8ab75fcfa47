// A plain MQTT device, the side-by-side reference (Mosquitto): per-user topics `u/{user}` and
// group topics `g/{group}`, QoS 1, clean=false. The payload is the 20-character text itself, which
// carries the sender, its running number and the send time, since plain MQTT has no SendAck and no
// seq: the acknowledgement is the PUBACK, and the application sees whatever arrives.
// It subscribes on every CONNACK, not only when sessionPresent is false: a SUBSCRIBE lost in a
// reset right after CONNACK otherwise leaves a device that never hears anything (DESIGN pitfalls).
import { performance } from 'node:perf_hooks'
import type { MqttClient } from 'mqtt'
import { openConnection, type Connection, type ConnectionOptions } from './connection.ts'
import { noWireStats, type AppEvents, type BenchDevice, type SendTarget } from './device.ts'

export interface PlainDeviceOptions {
  index: number
  user: number
  groups: number[]
  clientId: string
  connection: ConnectionOptions
  /** 0: rely on keepalive alone (a plain client); else a publish without PUBACK this long ends the connection. */
  ackTimeoutMs: number
  app: AppEvents
}

export const plainInbox = (user: number): string => `u/${user.toString(36)}`
export const plainGroupTopic = (group: number): string => `g/${group.toString(36)}`

export class PlainDevice implements BenchDevice {
  readonly index: number
  readonly stats = noWireStats()
  connected = false
  private readonly link: Connection
  /** Publishes awaiting PUBACK, oldest first, with the time they went out on a live connection. */
  private readonly unacked = new Map<number, { sentAt: number }>()
  private everConnected = false
  private breaking = false
  private started: { resolve(): void; reject(err: Error): void } | null = null

  constructor(private readonly options: PlainDeviceOptions) {
    this.index = options.index
    this.link = openConnection(options.connection, { clientId: options.clientId })
    const { client } = this.link
    client.on('connect', () => this.onConnect())
    client.on('close', () => {
      if (!this.connected) return
      this.connected = false
      options.app.disconnected(this.index, performance.now())
    })
    client.on('message', (_topic, payload) => options.app.delivered(this.index, payload.toString('utf8'), performance.now()))
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
    const topic = 'user' in to ? plainInbox(to.user) : plainGroupTopic(to.group)
    this.unacked.set(key, { sentAt: performance.now() })
    this.link.client.publish(topic, Buffer.from(text, 'utf8'), { qos: 1 }, (err) => {
      if (err) return
      this.unacked.delete(key)
      this.options.app.acked(this.index, key, performance.now())
    })
  }

  watch(now: number): void {
    const limit = this.options.ackTimeoutMs
    if (!this.connected || this.breaking || limit <= 0) return
    const oldest = this.unacked.values().next().value
    if (oldest && now - oldest.sentAt > limit) {
      this.stats.deadLinks++
      this.breaking = true
      this.link.breakLink()
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
    const { client } = this.link
    // Forced: end(false) waits for every QoS 1 publish in flight to be acknowledged, which on a dead
    // link (or for a publish the device gave up on) is never.
    return new Promise((resolve) => client.end(true, {}, () => resolve()))
  }

  private onConnect(): void {
    const now = performance.now()
    const reconnect = this.everConnected
    this.everConnected = true
    this.connected = true
    this.breaking = false
    this.stats.connects++
    for (const entry of this.unacked.values()) entry.sentAt = now
    const topics = [plainInbox(this.options.user), ...this.options.groups.map(plainGroupTopic)]
    this.options.app.connected(this.index, reconnect, now)
    // The first start() waits for the SUBACK: a message published to a topic nobody subscribes
    // yet is dropped, and the run would count it lost.
    this.link.client.subscribe(topics, { qos: 1 }, (err) => {
      if (err) this.stats.errors++
      this.started?.resolve()
      this.started = null
    })
  }
}
