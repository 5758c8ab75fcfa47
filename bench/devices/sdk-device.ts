// A weakmq device that is the TypeScript SDK itself (clients/ts), with its own defaults unless the
// run overrides them: what an application built on the SDK would do on the same link. The SDK
// owns its connection, so this device counts bytes through its FlakyLink (when it has one) and
// reports the SDK's own counters as wire statistics.
import { performance } from 'node:perf_hooks'
import { connect, ConnectRefusedError, memoryStore, type ChatClient, type ConnectOptions, type Store } from '../../clients/ts/index.ts'
import type { FlakyLink } from '../lab/flaky-link.ts'
import { noWireStats, type AppEvents, type BenchDevice, type SendTarget, type WireStats } from './device.ts'

export interface SdkDeviceOptions {
  index: number
  user: number
  clientId: string
  login: string
  token: string
  host: string
  port: number
  /** The device's own link, whose counters are its bytes. */
  link?: FlakyLink
  /** SDK options the run sets; everything else keeps the SDK's defaults. */
  overrides: Partial<Pick<ConnectOptions, 'keepalive' | 'requestTimeoutMs' | 'probeIdleMs' | 'connectTimeoutMs' | 'gapWaitMs'>>
  app: AppEvents
}

export class SdkDevice implements BenchDevice {
  readonly index: number
  connected = false
  private client: ChatClient | null = null
  /** Kept across leave() and rejoin(): the outbox and the read positions, as on a phone. */
  private readonly store: Store = memoryStore()
  private readonly appliedSeq = new Map<number, number>()
  private everOnline = false

  constructor(private readonly options: SdkDeviceOptions) {
    this.index = options.index
  }

  get stats(): WireStats {
    const stats = noWireStats()
    const sdk = this.client?.stats()
    if (!sdk) return stats
    stats.connects = sdk.connects
    stats.deadLinks = sdk.deadLinks
    stats.resends = sdk.republished
    stats.wireDuplicates = sdk.duplicates
    stats.gapFills = sdk.fills
    stats.probes = sdk.probes
    return stats
  }

  start(): Promise<void> {
    return new Promise((resolve, reject) => this.open(resolve, reject))
  }

  send(to: SendTarget, text: string, key: number): void {
    // The SDK keeps the send in its outbox until the SendAck, across reconnects.
    this.client?.send(to, text).then(() => this.options.app.acked(this.index, key, performance.now()), () => {})
  }

  /** The SDK watches its own link. */
  watch(): void {}

  leave(): void {
    const client = this.client
    this.client = null
    void client?.close()
  }

  rejoin(): void {
    this.open(() => {}, () => {})
  }

  bytes(): { up: number; down: number } {
    const counters = this.options.link?.counters
    return { up: counters?.bytesUp ?? 0, down: counters?.bytesDown ?? 0 }
  }

  /** weakmq setup: a group made through the SDK. */
  async createGroup(name: string, members: number[]): Promise<number> {
    if (!this.client) throw new Error('not started')
    return (await this.client.createGroup(name, members)).group
  }

  applied(conversation: number): number {
    return this.appliedSeq.get(conversation) ?? 0
  }

  async stop(): Promise<void> {
    await this.client?.close()
  }

  private open(resolve: () => void, reject: (err: Error) => void): void {
    const { options } = this
    const client = connect({
      url: `mqtt://${options.host}:${options.port}`,
      login: options.login,
      token: options.token,
      device: options.clientId,
      user: options.user,
      store: this.store,
      ...options.overrides,
    })
    this.client = client
    client.on('state', (state) => {
      const now = performance.now()
      if (state === 'online' && !this.connected) {
        this.connected = true
        options.app.connected(this.index, this.everOnline, now)
        this.everOnline = true
        resolve()
      } else if (state !== 'online' && this.connected) {
        this.connected = false
        options.app.disconnected(this.index, now)
      }
    })
    client.on('message', (message) => {
      this.appliedSeq.set(message.conversation, Math.max(message.seq, this.applied(message.conversation)))
      const content = message.content
      if (!message.mine && content && 'text' in content) options.app.delivered(this.index, content.text, performance.now())
    })
    client.on('error', (err) => {
      if (err instanceof ConnectRefusedError) reject(err)
    })
  }
}
