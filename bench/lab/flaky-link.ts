// FlakyLink: the weak-network lab's TCP proxy (DESIGN §Weak networks: profiles the lab reproduces).
// The kernel here has no netem, so each device link goes through this proxy, which shapes every
// accepted connection in user space, each direction on its own: bandwidth, one-way delay and jitter
// (never reordering bytes), loss as retransmission stalls, and on flaky profiles stalls, resets and
// silent drops at seeded random times. See profiles.ts for the model.
//
// A connection is two pipes (up: client to target, down: target to client). A pipe is a FIFO of
// chunks, each stamped with the time it may be delivered, and one timer for the head of the queue.

import net from 'node:net'
import { performance } from 'node:perf_hooks'
import { createRandom, deriveSeed, type Random } from './random.ts'
import { profiles, retransmissionMs, type Direction, type FlakyOptions, type Profile } from './profiles.ts'

/** Chunks are split to this size so pacing is smooth and "loss" hits about one TCP segment. */
const chunkBytes = 1024
const defaultDropGraceMs = 10 * 60_000
const maxTimerMs = 2 ** 31 - 1

export type LinkEvent =
  | { kind: 'stall'; atMs: number; durationMs: number }
  | { kind: 'reset'; atMs: number }
  | { kind: 'drop'; atMs: number }

/** An event the link applied to one connection; atMs counts from that connection's accept. */
export type AppliedEvent = LinkEvent & { connection: number; planned: boolean }

export interface LinkCounters {
  /** Bytes delivered client to target. */
  bytesUp: number
  /** Bytes delivered target to client. */
  bytesDown: number
  connections: number
  resets: number
  drops: number
  /** Stalls applied, counted once per connection they hit. */
  stalls: number
}

export interface FlakyLinkOptions {
  target: { host: string; port: number }
  profile?: Profile
  seed?: number
  host?: string
  port?: number
  /** How long a silently dropped connection keeps its sockets before the proxy frees them. */
  dropGraceMs?: number
}

// Sub-stream ids for deriveSeed: a connection's event schedule must not depend on its traffic.
const eventStream = 0
const upStream = 1
const downStream = 2

function gap(random: Random, meanMs: number): number {
  return Number.isFinite(meanMs) && meanMs > 0 ? random.exponential(meanMs) : Infinity
}

/**
 * The flaky events of one connection, in time order, from three Poisson processes. A reset or a
 * drop ends the connection, so it ends the schedule too.
 */
export function* flakyEvents(options: FlakyOptions, random: Random): Generator<LinkEvent> {
  let stallAt = gap(random, options.stallEveryMs)
  const resetAt = gap(random, options.resetEveryMs)
  const dropAt = gap(random, options.dropEveryMs)
  for (;;) {
    const atMs = Math.min(stallAt, resetAt, dropAt)
    if (atMs === Infinity) return
    if (atMs === resetAt) return yield { kind: 'reset', atMs }
    if (atMs === dropAt) return yield { kind: 'drop', atMs }
    const durationMs = random.between(options.stallMinMs, options.stallMaxMs)
    yield { kind: 'stall', atMs, durationMs }
    stallAt += durationMs + gap(random, options.stallEveryMs)
  }
}

/** The events planned for connection number `connection` of a link with this seed, up to horizonMs. */
export function planEvents(options: FlakyOptions, seed: number, horizonMs: number, connection = 0): LinkEvent[] {
  const plan: LinkEvent[] = []
  for (const event of flakyEvents(options, createRandom(deriveSeed(seed, connection, eventStream)))) {
    if (event.atMs > horizonMs) break
    plan.push(event)
  }
  return plan
}

function reset(socket: net.Socket): void {
  if (socket.destroyed) return
  try {
    socket.resetAndDestroy()
  } catch {
    socket.destroy()
  }
}

interface Chunk {
  /** null is the FIN, which travels the link behind the bytes. */
  data: Buffer | null
  deliverAt: number
}

/** One direction of one connection. */
class Pipe {
  private readonly chunks: Chunk[] = []
  private queuedBytes = 0
  private linkFreeAt = 0
  private lastDeliverAt = 0
  private timer: NodeJS.Timeout | undefined

  constructor(
    private readonly connection: Connection,
    private readonly from: net.Socket,
    private readonly to: net.Socket,
    private readonly shape: () => Direction,
    private readonly random: Random,
    private readonly countBytes: (n: number) => void,
  ) {
    to.on('drain', () => this.resumeIfRoom())
  }

  push(data: Buffer): void {
    const direction = this.shape()
    for (let offset = 0; offset < data.length; offset += chunkBytes) {
      const piece = data.subarray(offset, offset + chunkBytes)
      // Serialisation: the link carries one chunk at a time at its rate.
      const start = Math.max(performance.now(), this.linkFreeAt)
      this.linkFreeAt = start + (piece.length * 8000) / direction.bitsPerSecond
      this.enqueue(piece, direction)
    }
    this.queuedBytes += data.length
    if (this.queuedBytes > this.limitBytes(direction)) this.from.pause()
    if (!this.timer) this.flush()
  }

  end(): void {
    this.linkFreeAt = Math.max(performance.now(), this.linkFreeAt)
    this.enqueue(null, this.shape())
    if (!this.timer) this.flush()
  }

  /** Forgets everything queued: the connection was reset, dropped or closed. */
  stop(): void {
    clearTimeout(this.timer)
    this.timer = undefined
    this.chunks.length = 0
    this.queuedBytes = 0
  }

  private enqueue(data: Buffer | null, direction: Direction): void {
    let deliverAt = this.linkFreeAt + direction.delayMs
    if (direction.jitterMs > 0) deliverAt += this.random.between(0, direction.jitterMs)
    // TCP hides loss: a lost segment shows as a retransmission timeout (profiles.ts).
    if (this.random.chance(direction.loss)) deliverAt += retransmissionMs(this.connection.profile())
    // Bytes within a direction never overtake each other.
    deliverAt = Math.max(deliverAt, this.lastDeliverAt)
    this.lastDeliverAt = deliverAt
    this.chunks.push({ data, deliverAt })
  }

  private flush(): void {
    clearTimeout(this.timer)
    this.timer = undefined
    if (this.connection.state !== 'open') return
    const now = performance.now()
    if (now < this.connection.stalledUntil) return this.wakeAt(this.connection.stalledUntil)
    const ready: Buffer[] = []
    let fin = false
    while (this.chunks.length > 0 && this.chunks[0].deliverAt <= now) {
      const { data } = this.chunks.shift()!
      if (data) ready.push(data)
      else fin = true
    }
    if (ready.length > 0 && !this.to.destroyed) {
      const bytes = ready.length === 1 ? ready[0] : Buffer.concat(ready)
      this.queuedBytes -= bytes.length
      this.countBytes(bytes.length)
      this.to.write(bytes)
    }
    if (fin && !this.to.destroyed) this.to.end()
    if (this.chunks.length > 0) this.wakeAt(this.chunks[0].deliverAt)
    this.resumeIfRoom()
  }

  private wakeAt(time: number): void {
    // Timers may fire a little early by performance.now(); flush() then just waits again.
    this.timer = setTimeout(() => this.flush(), Math.max(1, Math.ceil(time - performance.now())))
  }

  private resumeIfRoom(): void {
    if (this.connection.state !== 'open' || !this.from.isPaused()) return
    if (this.queuedBytes <= this.limitBytes(this.shape()) / 2 && !this.to.writableNeedDrain) this.from.resume()
  }

  /** About two seconds of the link buffered in the network, like a cell's queue, within limits. */
  private limitBytes(direction: Direction): number {
    return Math.min(1 << 20, Math.max(16 << 10, direction.bitsPerSecond / 4))
  }
}

interface LinkState {
  profile: Profile
  readonly counters: LinkCounters
  readonly events: AppliedEvent[]
  readonly dropGraceMs: number
}

type ConnectionState = 'open' | 'dropped' | 'closed'

class Connection {
  state: ConnectionState = 'open'
  stalledUntil = 0
  private readonly up: Pipe
  private readonly down: Pipe
  private readonly acceptedAt = performance.now()
  private readonly eventRandom: Random
  private schedule: Generator<LinkEvent> | undefined
  private scheduleStart = 0
  private eventTimer: NodeJS.Timeout | undefined
  private graceTimer: NodeJS.Timeout | undefined

  constructor(
    private readonly link: LinkState,
    readonly index: number,
    seed: number,
    private readonly client: net.Socket,
    private readonly upstream: net.Socket,
    private readonly forget: (connection: Connection) => void,
  ) {
    const { counters } = link
    this.eventRandom = createRandom(deriveSeed(seed, index, eventStream))
    const upRandom = createRandom(deriveSeed(seed, index, upStream))
    const downRandom = createRandom(deriveSeed(seed, index, downStream))
    this.up = new Pipe(this, client, upstream, () => this.profile().up, upRandom, (n) => (counters.bytesUp += n))
    this.down = new Pipe(this, upstream, client, () => this.profile().down, downRandom, (n) => (counters.bytesDown += n))
    this.wire(client, this.up)
    this.wire(upstream, this.down)
    this.restartSchedule()
  }

  profile(): Profile {
    return this.link.profile
  }

  /** Plans this connection's flaky events afresh from now, after a profile change. */
  restartSchedule(): void {
    clearTimeout(this.eventTimer)
    this.eventTimer = undefined
    const options = this.profile().flaky
    this.schedule = options ? flakyEvents(options, this.eventRandom) : undefined
    this.scheduleStart = performance.now()
    this.scheduleNext()
  }

  stall(ms: number, planned = false): void {
    if (this.state !== 'open') return
    this.stalledUntil = Math.max(this.stalledUntil, performance.now() + ms)
    this.link.counters.stalls++
    this.log({ kind: 'stall', atMs: this.sinceAccept(), durationMs: ms }, planned)
  }

  reset(planned = false): void {
    if (this.state !== 'open') return
    this.link.counters.resets++
    this.log({ kind: 'reset', atMs: this.sinceAccept() }, planned)
    this.finish()
    reset(this.client)
    reset(this.upstream)
  }

  /** A NAT forgot the connection: nothing moves any more, and nobody is told. */
  drop(planned = false): void {
    if (this.state !== 'open') return
    this.link.counters.drops++
    this.log({ kind: 'drop', atMs: this.sinceAccept() }, planned)
    this.stopTimers()
    this.state = 'dropped'
    // Keep reading and discarding, as the network would, so an endpoint that gives up and closes
    // frees its socket here; the other endpoint hears nothing of it.
    this.client.resume()
    this.upstream.resume()
    this.graceTimer = setTimeout(() => this.close(), this.link.dropGraceMs).unref()
  }

  /** Ends both sockets (the proxy is closing, or the drop's grace period is over). */
  close(): void {
    this.finish()
    this.client.destroy()
    this.upstream.destroy()
  }

  private wire(socket: net.Socket, pipe: Pipe): void {
    const other = socket === this.client ? this.upstream : this.client
    socket.on('data', (data: Buffer) => {
      if (this.state === 'open') pipe.push(data)
    })
    socket.on('end', () => {
      if (this.state === 'open') pipe.end()
      else if (this.state === 'dropped') socket.destroy()
    })
    // An error (a reset from an endpoint, a refused upstream connect) travels on as a reset.
    socket.on('error', () => {
      if (this.state !== 'open') return
      this.finish()
      reset(other)
    })
    socket.on('close', () => {
      if (this.client.destroyed && this.upstream.destroyed) this.finish()
    })
  }

  private scheduleNext(): void {
    const next = this.schedule?.next()
    if (!next || next.done) return
    const event = next.value
    const due = this.scheduleStart + event.atMs
    if (due - performance.now() > maxTimerMs) return // beyond Node's timer range (24.8 days): never, for a lab run
    const apply = () => {
      this.eventTimer = undefined
      if (event.kind === 'stall') {
        this.stall(event.durationMs, true)
        this.scheduleNext()
      } else if (event.kind === 'reset') {
        this.reset(true)
      } else {
        this.drop(true)
      }
    }
    // A timer counts from the event loop's cached time, which lags performance.now() by however long
    // the current turn has run: it can fire early by that much. An early one waits again (as flush() does).
    const arm = () => {
      this.eventTimer = setTimeout(() => (performance.now() < due ? arm() : apply()), Math.max(0, Math.ceil(due - performance.now())))
    }
    arm()
  }

  private finish(): void {
    if (this.state === 'closed') return
    this.state = 'closed'
    this.stopTimers()
    this.forget(this)
  }

  private stopTimers(): void {
    clearTimeout(this.eventTimer)
    clearTimeout(this.graceTimer)
    this.eventTimer = this.graceTimer = undefined
    this.up.stop()
    this.down.stop()
  }

  private sinceAccept(): number {
    return performance.now() - this.acceptedAt
  }

  private log(event: LinkEvent, planned: boolean): void {
    this.link.events.push({ ...event, connection: this.index, planned })
  }
}

export class FlakyLink {
  readonly counters: LinkCounters = { bytesUp: 0, bytesDown: 0, connections: 0, resets: 0, drops: 0, stalls: 0 }
  /** Every stall, reset and drop applied, in order. */
  readonly events: AppliedEvent[] = []
  readonly seed: number
  private readonly state: LinkState
  private readonly server: net.Server
  private readonly connections = new Set<Connection>()
  private readonly options: FlakyLinkOptions

  constructor(options: FlakyLinkOptions) {
    this.options = options
    this.seed = options.seed ?? 1
    this.state = {
      profile: options.profile ?? profiles.loopback,
      counters: this.counters,
      events: this.events,
      dropGraceMs: options.dropGraceMs ?? defaultDropGraceMs,
    }
    this.server = net.createServer({ allowHalfOpen: true, noDelay: true }, (client) => this.accept(client))
  }

  get profile(): Profile {
    return this.state.profile
  }

  /** The listening port (0 before listen()). */
  get port(): number {
    const address = this.server.address()
    return typeof address === 'object' && address ? address.port : 0
  }

  listen(): Promise<{ port: number }> {
    return new Promise((resolve, reject) => {
      this.server.once('error', reject)
      this.server.listen(this.options.port ?? 0, this.options.host ?? '127.0.0.1', () => {
        this.server.off('error', reject)
        resolve({ port: this.port })
      })
    })
  }

  /** Changes the shaping of current and future connections; flaky schedules restart from now. */
  setProfile(profile: Profile): void {
    this.state.profile = profile
    for (const connection of this.connections) connection.restartSchedule()
  }

  /** The flaky events the link plans for its connection number `connection` (0 is the first). */
  plannedEvents(horizonMs: number, connection = 0): LinkEvent[] {
    const options = this.profile.flaky
    return options ? planEvents(options, this.seed, horizonMs, connection) : []
  }

  stallAll(ms: number): void {
    for (const connection of this.connections) connection.stall(ms)
  }

  resetAll(): void {
    for (const connection of [...this.connections]) connection.reset()
  }

  dropAll(): void {
    for (const connection of this.connections) connection.drop()
  }

  close(): Promise<void> {
    for (const connection of [...this.connections]) connection.close()
    return new Promise((resolve) => {
      if (!this.server.listening) return resolve()
      this.server.close(() => resolve())
    })
  }

  private accept(client: net.Socket): void {
    const index = this.counters.connections++
    const { host, port } = this.options.target
    const upstream = net.connect({ host, port, allowHalfOpen: true, noDelay: true })
    const connection = new Connection(this.state, index, this.seed, client, upstream, (c) => this.forgetConnection(c))
    this.connections.add(connection)
  }

  private forgetConnection(connection: Connection): void {
    this.connections.delete(connection)
  }
}
