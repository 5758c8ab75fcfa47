// The load generator (issue 5 §2): N simulated devices, each optionally behind its own FlakyLink,
// in 1:1 pairs or groups, sending for a set time or count, then draining until every acknowledged
// message has reached every recipient's application or the drain time is up. Each phase yields
// the ledger's counts (ledger.ts), the wire counters of the devices and the bytes on their links.
import { performance } from 'node:perf_hooks'
import { setTimeout as sleep } from 'node:timers/promises'
import { FlakyLink } from './lab/flaky-link.ts'
import { profiles, type Profile } from './lab/profiles.ts'
import { createRandom, deriveSeed } from './lab/random.ts'
import { ChatDevice } from './devices/chat-device.ts'
import { addWireStats, noWireStats, type AppEvents, type BenchDevice, type SendTarget, type WireStats } from './devices/device.ts'
import { PlainDevice } from './devices/plain-device.ts'
import { SdkDevice, type SdkDeviceOptions } from './devices/sdk-device.ts'
import { Ledger, messageKey, messageText } from './ledger.ts'
import { Metrics, newHistogram, percentiles, recordMs, type Percentiles } from './metrics.ts'
import type { Account, Target } from './targets.ts'

export type Topology =
  | { kind: 'pairs' }
  /** Groups of `size` consecutive devices; the first `senders` members of each send. */
  | { kind: 'groups'; size: number; senders: number }

export interface GeneratorOptions {
  target: Target
  /**
   * weakmq devices: the generator's own protocol client (devices/chat-device.ts, the default) or
   * the TypeScript SDK (clients/ts) with its defaults, save what the run sets explicitly.
   */
  client?: 'protocol' | 'sdk'
  /** SDK devices: the options the run sets (the rest are the SDK's defaults). */
  sdkOverrides?: SdkDeviceOptions['overrides']
  devices: number
  topology: Topology
  /**
   * Pairs only: the device that receives message n of `sender`, instead of its partner (the
   * storm's senders write to several devices in turn).
   */
  recipientOf?: (sender: number, n: number) => number
  /** Each device behind its own FlakyLink with this profile; none: straight to the target. */
  profile?: Profile
  /** Devices that go through a shared loopback link instead (one per broker node), so they can be cut off at once. */
  sharedLink?: (index: number) => boolean
  seed: number
  keepaliveSeconds: number
  reconnectMs: number
  /** A request unanswered this long ends the connection; 0: keepalive only. */
  ackTimeoutMs: number
  /** weakmq devices: silence after which they probe the link (PINGREQ); 0: never. */
  probeIdleMs: number
  /** Longest wait for a CONNACK. */
  connectTimeoutMs: number
  /** weakmq: how long a gap in a conversation may last before a history sync fills it. */
  gapWaitMs: number
  historyLimit: number
  connectConcurrency: number
  /** Source addresses, one per device in turn (127.0.0.x past the ephemeral port limit). */
  localAddresses?: string[]
  bucketMs?: number
}

export type Traffic =
  /** Closed loop: each sender keeps `window` messages not yet acknowledged and delivered everywhere. */
  | { kind: 'window'; window: number }
  /** Open loop: messages per second from all senders together, each from a random sender. */
  | { kind: 'rate'; perSecond: number }

export interface PhaseOptions {
  name: string
  traffic: Traffic
  seconds: number
  /** Stop sending after this many messages. */
  maxMessages?: number
  drainSeconds: number
  /** Sending devices; default: every device (pairs) or the first senders of each group. */
  senders?: number[]
  /** Things to do at given times into the phase (the storm drops and returns devices). */
  events?: Array<{ atSeconds: number; run: () => void }>
  onTick?: (status: PhaseStatus) => void
}

export interface PhaseStatus {
  name: string
  elapsed: number
  seconds: number
  drainSeconds: number
  draining: boolean
  metrics: Metrics
}

export interface LinkTotals {
  connections: number
  resets: number
  drops: number
  stalls: number
}

export interface PhaseResult {
  name: string
  metrics: Metrics
  traffic: Traffic
  lost: number
  unacknowledged: number
  deliveredUnacknowledged: number
  unfinishedCatchUps: number
  /** Every acknowledged message reached every recipient before the drain ran out. */
  settled: boolean
  drainSeconds: number
  wire: WireStats
  bytes: { up: number; down: number }
  links: LinkTotals
  /** Open loop only: how late sends left against their schedule. */
  schedulerLag: Percentiles | null
}

export interface ConnectResult {
  devices: number
  seconds: number
  perSecond: number
  latency: Percentiles
}

const WATCH_EVERY_MS = 250

/** Runs `work` over `items` with at most `limit` at a time. */
export async function eachLimited<T>(items: T[], limit: number, work: (item: T) => Promise<void>): Promise<void> {
  let next = 0
  const lanes = Array.from({ length: Math.min(limit, items.length) }, async () => {
    while (next < items.length) await work(items[next++])
  })
  await Promise.all(lanes)
}

export class Generator {
  readonly devices: BenchDevice[] = []
  readonly links: FlakyLink[] = []
  readonly ledger: Ledger
  /** Members (device indices) of each group, and its id on the target. */
  readonly groups: Array<{ id: number; members: number[] }> = []
  /** The shared loopback links, by the port of the broker node each leads to. */
  readonly sharedLinks = new Map<number, FlakyLink>()
  private readonly counters: number[]
  private readonly recipients: number[][] = []
  private readonly destinations: SendTarget[] = []
  private watchTimer: NodeJS.Timeout | null = null
  private sending = false

  private constructor(readonly options: GeneratorOptions, readonly accounts: Account[]) {
    this.ledger = new Ledger(options.devices)
    this.counters = new Array(options.devices).fill(0)
  }

  static async create(options: GeneratorOptions): Promise<Generator> {
    const { topology, devices: n, target } = options
    if (topology.kind === 'pairs' && n % 2 !== 0) throw new Error(`pairs need an even number of devices, not ${n}`)
    if (topology.kind === 'groups' && n % topology.size !== 0) throw new Error(`${n} devices do not make groups of ${topology.size}`)
    const generator = new Generator(options, await target.accounts(n))
    await generator.build()
    return generator
  }

  private async build(): Promise<void> {
    const { options, accounts } = this
    const { target, topology } = options
    const app: AppEvents = {
      acked: (_device, key, at) => this.ledger.acked(key, at),
      delivered: (device, text, at) => this.ledger.delivered(device, text, at),
      connected: (device, reconnect, at) => this.ledger.connected(device, reconnect, at),
      disconnected: (device, at) => this.ledger.disconnected(device, at),
    }
    const groupOf = (i: number) => (topology.kind === 'groups' ? Math.floor(i / topology.size) : -1)
    if (topology.kind === 'groups') {
      for (let g = 0; g < options.devices / topology.size; g++) {
        const members = Array.from({ length: topology.size }, (_, k) => g * topology.size + k)
        // Plain MQTT: the group is a topic named after its first member; weakmq: set in setupGroups().
        this.groups.push({ id: accounts[members[0]].user, members })
      }
    }
    for (let i = 0; i < options.devices; i++) {
      const node = target.addressOf(i)
      let { host, port } = node
      let ownLink: FlakyLink | undefined
      if (options.sharedLink?.(i)) {
        host = '127.0.0.1'
        port = (await this.sharedLinkTo(node)).port
      } else if (options.profile) {
        ownLink = new FlakyLink({ target: node, profile: options.profile, seed: deriveSeed(options.seed, i) })
        await ownLink.listen()
        this.links.push(ownLink)
        host = '127.0.0.1'
        port = ownLink.port
      }
      const connection = {
        host,
        port,
        localAddress: options.localAddresses?.[i % options.localAddresses.length],
        keepaliveSeconds: options.keepaliveSeconds,
        reconnectMs: options.reconnectMs,
        connectTimeoutMs: options.connectTimeoutMs,
        // weakmq devices send their unanswered requests again themselves (chat-device.ts).
        replayUnacknowledged: target.kind !== 'weakmq',
      }
      const account = accounts[i]
      const sdk = target.kind === 'weakmq' && options.client === 'sdk'
      const device: BenchDevice = sdk
        ? new SdkDevice({
          index: i, user: account.user, clientId: account.clientId, login: account.login!, token: account.token!,
          host, port, link: ownLink, overrides: options.sdkOverrides ?? {}, app,
        })
        : target.kind === 'weakmq'
        ? new ChatDevice({
          index: i, user: account.user, clientId: account.clientId, login: account.login!, token: account.token!,
          connection, ackTimeoutMs: options.ackTimeoutMs, probeIdleMs: options.probeIdleMs, gapWaitMs: options.gapWaitMs, historyLimit: options.historyLimit, app,
        })
        : new PlainDevice({
          index: i, user: account.user, groups: groupOf(i) >= 0 ? [this.groups[groupOf(i)].id] : [], clientId: account.clientId,
          connection, ackTimeoutMs: options.ackTimeoutMs, app,
        })
      this.devices.push(device)
      if (topology.kind === 'pairs') this.recipients.push([i ^ 1])
      else this.recipients.push(this.groups[groupOf(i)].members.filter((m) => m !== i))
    }
  }

  /** The shared loopback link to a broker node, made on first use. */
  private async sharedLinkTo(node: { host: string; port: number }): Promise<FlakyLink> {
    let link = this.sharedLinks.get(node.port)
    if (!link) {
      link = new FlakyLink({ target: node, profile: profiles.loopback, seed: this.options.seed })
      this.sharedLinks.set(node.port, link)
      await link.listen()
    }
    return link
  }

  /** Connects every device (a few at a time) and sets up the groups; times each CONNACK. */
  async connectAll(onProgress?: (connected: number) => void): Promise<ConnectResult> {
    const histogram = newHistogram()
    const started = performance.now()
    let connected = 0
    const order = this.devices.map((_, i) => i)
    await eachLimited(order, this.options.connectConcurrency, async (i) => {
      const at = performance.now()
      await withLimit(this.devices[i].start(), 60_000, `device ${i} did not connect`)
      recordMs(histogram, performance.now() - at)
      onProgress?.(++connected)
    })
    const seconds = (performance.now() - started) / 1000
    this.watchTimer = setInterval(() => {
      const now = performance.now()
      for (const device of this.devices) device.watch(now)
    }, WATCH_EVERY_MS)
    await this.setupGroups()
    const { topology } = this.options
    for (let i = 0; i < this.devices.length; i++) {
      this.destinations.push(topology.kind === 'pairs'
        ? { user: this.accounts[i ^ 1].user }
        : { group: this.groups[Math.floor(i / topology.size)].id })
    }
    return { devices: this.devices.length, seconds, perSecond: this.devices.length / Math.max(seconds, 1e-3), latency: percentiles(histogram) }
  }

  /** weakmq: the first member creates each group; every member then holds its first message (seq 1). */
  private async setupGroups(): Promise<void> {
    if (this.options.target.kind !== 'weakmq') return
    for (const group of this.groups) {
      const creator = this.devices[group.members[0]] as ChatDevice | SdkDevice
      const name = `bench ${group.members[0]}`
      const members = group.members.slice(1).map((m) => this.accounts[m].user)
      if (creator instanceof SdkDevice) {
        group.id = await creator.createGroup(name, members)
        continue
      }
      const reply = await creator.ask({ groupCreate: { name, members } })
      if (!reply.group?.group) throw new Error(`group create failed: ${reply.error?.detail ?? 'no group in the reply'}`)
      group.id = Number(reply.group.group)
    }
    const deadline = performance.now() + 60_000
    const ready = () => this.groups.every((g) => g.members.every((m) => (this.devices[m] as ChatDevice | SdkDevice).applied(g.id) >= 1))
    while (!ready()) {
      if (performance.now() > deadline) throw new Error('group members did not all get the group within 60 s')
      await sleep(50)
    }
  }

  defaultSenders(): number[] {
    const { topology } = this.options
    if (topology.kind === 'pairs') return this.devices.map((_, i) => i)
    return this.groups.flatMap((g) => g.members.slice(0, topology.senders))
  }

  private sendFrom(sender: number, at = performance.now()): void {
    const n = ++this.counters[sender]
    const key = messageKey(sender, n)
    const to = this.options.recipientOf?.(sender, n)
    this.ledger.sent(key, sender, to === undefined ? this.recipients[sender] : [to], at)
    this.devices[sender].send(to === undefined ? this.destinations[sender] : { user: this.accounts[to].user }, messageText(sender, n), key)
  }

  async runPhase(phase: PhaseOptions): Promise<PhaseResult> {
    const metrics = new Metrics(phase.name, this.options.bucketMs)
    this.ledger.metrics = metrics
    const wireBefore = this.wireTotals()
    const bytesBefore = this.byteTotals()
    const linksBefore = this.linkTotals()
    const senders = phase.senders ?? this.defaultSenders()
    const limit = phase.maxMessages ?? Infinity
    const events = [...(phase.events ?? [])].sort((a, b) => a.atSeconds - b.atSeconds)
    const { traffic } = phase
    let lag: ReturnType<typeof newHistogram> | null = null
    let ticker: NodeJS.Timeout | null = null
    this.sending = true

    if (traffic.kind === 'window') {
      const isSender = new Set(senders)
      this.ledger.onComplete = (sender) => {
        if (this.sending && isSender.has(sender) && metrics.sent < limit && this.ledger.openSends(sender) < traffic.window) this.sendFrom(sender)
      }
      for (let k = 0; k < traffic.window; k++) {
        for (const sender of senders) if (metrics.sent < limit) this.sendFrom(sender)
      }
    } else {
      this.ledger.onComplete = () => {}
      const random = createRandom(deriveSeed(this.options.seed, 0x5e4d))
      const histogram = newHistogram()
      lag = histogram
      const interval = 1000 / traffic.perSecond
      let scheduled = 0
      const tick = () => {
        const now = performance.now()
        while (this.sending && metrics.sent < limit && metrics.startedAt + scheduled * interval <= now) {
          recordMs(histogram, now - (metrics.startedAt + scheduled * interval))
          scheduled++
          this.sendFrom(senders[Math.floor(random.next() * senders.length)], now)
        }
      }
      ticker = setInterval(tick, 1)
    }

    const status = (draining: boolean): PhaseStatus => ({
      name: phase.name, elapsed: (performance.now() - metrics.startedAt) / 1000, seconds: phase.seconds,
      drainSeconds: phase.drainSeconds, draining, metrics,
    })
    while (true) {
      const elapsed = (performance.now() - metrics.startedAt) / 1000
      while (events.length && events[0].atSeconds <= elapsed) events.shift()!.run()
      if (elapsed >= phase.seconds || metrics.sent >= limit) break
      phase.onTick?.(status(false))
      await sleep(Math.min(100, Math.max(1, (phase.seconds - elapsed) * 1000)))
    }
    this.sending = false
    if (ticker) clearInterval(ticker)
    metrics.sendEndedAt = performance.now()
    for (const event of events) event.run() // anything planned past the end still happens (devices return)
    const drainStarted = performance.now()
    while (metrics.incomplete > 0 && performance.now() - drainStarted < phase.drainSeconds * 1000) {
      phase.onTick?.(status(true))
      await sleep(100)
    }
    metrics.endedAt = performance.now()
    const shortfall = this.ledger.shortfall(metrics)
    const bytesAfter = this.byteTotals()
    const linksAfter = this.linkTotals()
    return {
      name: phase.name,
      metrics,
      traffic,
      ...shortfall,
      unfinishedCatchUps: this.ledger.unfinishedCatchUps(),
      settled: metrics.incomplete === 0,
      drainSeconds: (metrics.endedAt - metrics.sendEndedAt) / 1000,
      wire: addWireStats(this.wireTotals(), wireBefore, -1),
      bytes: { up: bytesAfter.up - bytesBefore.up, down: bytesAfter.down - bytesBefore.down },
      links: {
        connections: linksAfter.connections - linksBefore.connections,
        resets: linksAfter.resets - linksBefore.resets,
        drops: linksAfter.drops - linksBefore.drops,
        stalls: linksAfter.stalls - linksBefore.stalls,
      },
      schedulerLag: lag ? percentiles(lag) : null,
    }
  }

  /** Cuts the given devices off at once (a reset on their shared link) and keeps them off. */
  cutOff(indices: number[]): void {
    for (const link of this.sharedLinks.values()) link.resetAll()
    for (const i of indices) this.devices[i].leave()
  }

  rejoin(indices: number[]): void {
    for (const i of indices) this.devices[i].rejoin()
  }

  wireTotals(): WireStats {
    const total = noWireStats()
    for (const device of this.devices) addWireStats(total, device.stats)
    return total
  }

  byteTotals(): { up: number; down: number } {
    let up = 0
    let down = 0
    for (const device of this.devices) {
      const bytes = device.bytes()
      up += bytes.up
      down += bytes.down
    }
    return { up, down }
  }

  linkTotals(): LinkTotals {
    const total: LinkTotals = { connections: 0, resets: 0, drops: 0, stalls: 0 }
    for (const link of this.allLinks()) {
      total.connections += link.counters.connections
      total.resets += link.counters.resets
      total.drops += link.counters.drops
      total.stalls += link.counters.stalls
    }
    return total
  }

  private allLinks(): FlakyLink[] {
    return [...this.links, ...this.sharedLinks.values()]
  }

  connectedCount(): number {
    return this.devices.filter((d) => d.connected).length
  }

  async close(): Promise<void> {
    this.sending = false
    if (this.watchTimer) clearInterval(this.watchTimer)
    await eachLimited(this.devices, 200, (device) => withLimit(device.stop(), 10_000, 'stop').catch(() => {}))
    await Promise.all(this.allLinks().map((link) => link.close()))
  }
}

function withLimit<T>(promise: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined
  const limit = new Promise<never>((_, reject) => { timer = setTimeout(() => reject(new Error(`${what} within ${ms} ms`)), ms) })
  return Promise.race([promise, limit]).finally(() => clearTimeout(timer))
}
