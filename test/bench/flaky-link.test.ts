// The weak-network lab's proxy, on real sockets on 127.0.0.1 (DESIGN §Weak networks).
import t from 'tap'
import net from 'node:net'
import { once } from 'node:events'
import { performance } from 'node:perf_hooks'
import { setTimeout as sleep } from 'node:timers/promises'
import mqtt from 'mqtt'
import { FlakyLink, planEvents } from '../../bench/lab/flaky-link.ts'
import { flaky, profileByName, profileNames, profiles, type Direction, type Profile } from '../../bench/lab/profiles.ts'
import { whyNoMosquitto } from '../harness.ts'

/** Every test ends well within this, even when it fails. */
const limit = { timeout: 10_000 }

const unshaped: Direction = { bitsPerSecond: Infinity, delayMs: 0, jitterMs: 0, loss: 0 }

function shaped(name: string, down: Partial<Direction>, up: Partial<Direction> = {}): Profile {
  return { name, down: { ...unshaped, ...down }, up: { ...unshaped, ...up } }
}

interface TestServer {
  port: number
  sockets: net.Socket[]
  close(): Promise<void>
}

/** A server on port 0 that hands every accepted socket to onSocket and destroys them all on close. */
async function startServer(onSocket: (socket: net.Socket) => void): Promise<TestServer> {
  const sockets: net.Socket[] = []
  const server = net.createServer((socket) => {
    sockets.push(socket)
    socket.on('error', () => {})
    onSocket(socket)
  })
  server.listen(0, '127.0.0.1')
  await once(server, 'listening')
  const address = server.address() as net.AddressInfo
  return {
    port: address.port,
    sockets,
    close: () => {
      for (const socket of sockets) socket.destroy()
      return new Promise((resolve) => server.close(() => resolve()))
    },
  }
}

const echo = (socket: net.Socket) => socket.pipe(socket)

/** All these helpers need of a test is somewhere to register cleanup. */
type WithTeardown = Pick<typeof t, 'teardown'>

/** Starts a target server and a link in front of it; both are closed when the test ends. */
async function setup(t: WithTeardown, onSocket: (socket: net.Socket) => void, profile: Profile, seed = 1) {
  const server = await startServer(onSocket)
  const link = new FlakyLink({ target: { host: '127.0.0.1', port: server.port }, profile, seed })
  await link.listen()
  t.teardown(async () => {
    await link.close()
    await server.close()
  })
  return { server, link }
}

async function connect(t: WithTeardown, port: number): Promise<net.Socket> {
  const socket = net.connect({ host: '127.0.0.1', port })
  t.teardown(() => {
    socket.destroy()
  })
  await once(socket, 'connect')
  return socket
}

/** Resolves with the bytes read once `length` of them have arrived. */
function readBytes(socket: net.Socket, length: number): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const parts: Buffer[] = []
    let got = 0
    const onData = (data: Buffer) => {
      parts.push(data)
      got += data.length
      if (got >= length) {
        socket.off('data', onData)
        socket.off('error', reject)
        resolve(Buffer.concat(parts))
      }
    }
    socket.on('data', onData)
    socket.on('error', reject)
  })
}

/** Resolves when the socket closes, whatever the reason (events.once would reject on 'error'). */
function closed(socket: net.Socket): Promise<void> {
  return new Promise((resolve) => socket.once('close', () => resolve()))
}

/** Records which of 'end', 'close' and 'error' a socket emitted, and when. */
function watch(socket: net.Socket) {
  const seen: { event: string; code?: string; at: number }[] = []
  socket.on('end', () => seen.push({ event: 'end', at: performance.now() }))
  socket.on('close', () => seen.push({ event: 'close', at: performance.now() }))
  socket.on('error', (error: NodeJS.ErrnoException) => seen.push({ event: 'error', code: error.code, at: performance.now() }))
  return seen
}

t.test('profiles: the DESIGN table, by command-line name', limit, async (t) => {
  const rural = profileByName('2g-rural')
  t.same([rural.down.bitsPerSecond, rural.up.bitsPerSecond, rural.down.delayMs, rural.down.loss], [20_000, 18_000, 650, 0.02])
  const edge = profileByName('edge-lossy')
  t.same([edge.down.bitsPerSecond, edge.up.bitsPerSecond, edge.down.delayMs, edge.up.delayMs], [240_000, 200_000, 400, 440])
  const gprs = profileByName('gprs')
  t.same([gprs.down.delayMs, gprs.down.delayMs + gprs.down.jitterMs], [150, 550], 'GPRS delay spans 150-550 ms')
  t.equal(profileByName('loopback').down.bitsPerSecond, Infinity)
  const flakyEdge = profileByName('flaky-edge-lossy')
  t.equal(flakyEdge.name, 'flaky-edge-lossy')
  t.ok(flakyEdge.flaky, 'flaky variant carries its event options')
  t.equal(flakyEdge.down.bitsPerSecond, 240_000, 'and keeps the shaping of its base')
  t.equal(profileByName('edge-lossy').flaky, undefined, 'the base stays steady')
  for (const name of profileNames) t.equal(profileByName(name).name, name)
  t.throws(() => profileByName('5g'), /unknown network profile/)
})

t.test('loopback: bytes go through unchanged and in order, FIN included', limit, async (t) => {
  const { link } = await setup(t, echo, profiles.loopback)
  const client = await connect(t, link.port)
  const sent = Buffer.alloc(200_000)
  for (let i = 0; i < sent.length; i++) sent[i] = (i * 7 + (i >> 8)) & 0xff
  const received: Buffer[] = []
  client.on('data', (data: Buffer) => received.push(data))
  for (let offset = 0; offset < sent.length; offset += 7_000) client.write(sent.subarray(offset, offset + 7_000))
  client.end()
  await once(client, 'end')
  t.ok(Buffer.concat(received).equals(sent), 'echoed bytes equal the bytes sent')
  t.equal(link.counters.bytesUp, sent.length)
  t.equal(link.counters.bytesDown, sent.length)
  t.equal(link.counters.connections, 1)
})

t.test('bandwidth: 5,000 bytes over a 20 kbit/s downlink take about 2 s', limit, async (t) => {
  const payload = Buffer.alloc(5_000, 0x61)
  const { link } = await setup(t, (socket) => socket.write(payload), shaped('20k-down', { bitsPerSecond: 20_000 }))
  const client = await connect(t, link.port)
  const start = performance.now()
  const received = await readBytes(client, payload.length)
  const elapsed = performance.now() - start
  const expected = (payload.length * 8 * 1000) / 20_000
  t.ok(received.equals(payload), 'all bytes arrive')
  t.ok(elapsed >= 0.8 * expected && elapsed <= 2 * expected, `took ${elapsed.toFixed(0)} ms, expected about ${expected} ms`)
})

t.test('delay: a small write arrives no sooner than the one-way delay', limit, async (t) => {
  let arrived = 0
  const { link } = await setup(t, (socket) => socket.once('data', () => (arrived = performance.now())), shaped('300ms-up', {}, { delayMs: 300 }))
  const client = await connect(t, link.port)
  await sleep(50) // let the proxy reach the target first
  const start = performance.now()
  client.write('x')
  while (!arrived) await sleep(10)
  t.ok(arrived - start >= 300, `arrived after ${(arrived - start).toFixed(1)} ms`)
})

t.test('setProfile: a running connection takes the new shaping', limit, async (t) => {
  const { link } = await setup(t, echo, profiles.loopback)
  const client = await connect(t, link.port)
  client.write('fast')
  t.equal((await readBytes(client, 4)).toString(), 'fast')
  link.setProfile(shaped('200ms-down', { delayMs: 200 }))
  const start = performance.now()
  client.write('slow')
  t.equal((await readBytes(client, 4)).toString(), 'slow')
  t.ok(performance.now() - start >= 200, 'the echo now waits for the new downlink delay')
})

t.test('jitter never reorders bytes within a direction', limit, async (t) => {
  const { link } = await setup(t, echo, shaped('jittery', { delayMs: 20, jitterMs: 200 }, { delayMs: 20, jitterMs: 200 }))
  const client = await connect(t, link.port)
  const messages = Array.from({ length: 40 }, (_, i) => `<${i}>`)
  const expected = Buffer.from(messages.join(''))
  const reading = readBytes(client, expected.length)
  for (const message of messages) {
    client.write(message)
    await sleep(2)
  }
  t.equal((await reading).toString(), expected.toString())
})

t.test('loss is a retransmission stall: a "lost" chunk arrives an RTO late, intact', limit, async (t) => {
  let arrived = 0
  let data = ''
  const { link } = await setup(t, (socket) => socket.once('data', (chunk: Buffer) => {
    arrived = performance.now()
    data = chunk.toString()
  }), shaped('always-lost', {}, { loss: 1 }))
  const client = await connect(t, link.port)
  const start = performance.now()
  client.write('lost once')
  while (!arrived) await sleep(10)
  t.ok(arrived - start >= 1000, `held ${(arrived - start).toFixed(0)} ms, max(1 s, 3 x RTT) = 1 s`)
  t.equal(data, 'lost once')
})

t.test('stall: nothing moves for the stall, then everything arrives', limit, async (t) => {
  const { link } = await setup(t, echo, profiles.loopback)
  const client = await connect(t, link.port)
  client.write('before')
  t.equal((await readBytes(client, 6)).toString(), 'before')
  link.stallAll(500)
  const start = performance.now()
  client.write('during')
  t.equal((await readBytes(client, 6)).toString(), 'during')
  t.ok(performance.now() - start >= 500, 'held until the stall ends')
  t.equal(link.counters.stalls, 1)
})

t.test('reset: both ends see ECONNRESET', limit, async (t) => {
  const { server, link } = await setup(t, echo, profiles.loopback)
  const client = await connect(t, link.port)
  const clientSeen = watch(client)
  client.write('ping')
  t.equal((await readBytes(client, 4)).toString(), 'ping')
  const serverSeen = watch(server.sockets[0])
  link.resetAll()
  await closed(client)
  t.match(clientSeen, [{ event: 'error', code: 'ECONNRESET' }, { event: 'close' }], 'client got RST, not FIN')
  while (!serverSeen.some((e) => e.event === 'close')) await sleep(10)
  t.match(serverSeen, [{ event: 'error', code: 'ECONNRESET' }], 'target got RST too')
  t.equal(link.counters.resets, 1)
})

t.test('silent drop: no FIN, no RST, no bytes, either way', limit, async (t) => {
  const received: string[] = []
  const { server, link } = await setup(t, (socket) => socket.on('data', (data: Buffer) => {
    received.push(data.toString())
    socket.write(data)
  }), profiles.loopback)
  const client = await connect(t, link.port)
  const clientSeen = watch(client)
  client.write('ping')
  t.equal((await readBytes(client, 4)).toString(), 'ping')
  const serverSeen = watch(server.sockets[0])
  let echoedAfterDrop = 0
  client.on('data', (data: Buffer) => (echoedAfterDrop += data.length))
  link.dropAll()
  client.write('lost')
  server.sockets[0].write('also lost')
  await sleep(1_500)
  t.same(clientSeen, [], 'client socket: no end, close or error')
  t.same(serverSeen, [], 'target socket: no end, close or error')
  t.same(received, ['ping'], 'bytes written after the drop never reach the target')
  t.equal(echoedAfterDrop, 0, 'nor the client')
  t.equal(link.counters.drops, 1)
})

const mosquittoMissing = await whyNoMosquitto(t)

t.test('silent drop: only an MQTT keepalive notices it', { ...limit, skip: mosquittoMissing }, async (t) => {
  const mqttLink = new FlakyLink({ target: { host: '127.0.0.1', port: 1883 }, profile: profiles.loopback })
  await mqttLink.listen()
  const client = mqtt.connect({
    host: '127.0.0.1',
    port: mqttLink.port,
    protocolVersion: 4,
    keepalive: 1,
    reconnectPeriod: 0,
    clientId: `flaky-link-test-${process.pid}-${Date.now()}`,
  })
  t.teardown(async () => {
    await client.endAsync(true)
    await mqttLink.close()
  })
  const errors: string[] = []
  client.on('error', (error) => errors.push(error.message))
  await new Promise((resolve) => client.once('connect', resolve))
  const socket = client.stream as net.Socket
  let socketEnded = false
  socket.on('end', () => (socketEnded = true))
  const ended = new Promise<{ event: string; socketEndedBefore: boolean; at: number }>((resolve) => {
    for (const event of ['offline', 'close']) {
      client.once(event as 'close', () => resolve({ event, socketEndedBefore: socketEnded, at: performance.now() }))
    }
  })
  mqttLink.dropAll()
  const droppedAt = performance.now()
  const result = await ended
  t.equal(result.socketEndedBefore, false, 'the client socket saw no FIN before the client gave up')
  t.ok(errors.includes('Keepalive timeout'), `the client gave up on keepalive (errors: ${errors.join(', ') || 'none'})`)
  t.ok(result.at - droppedAt < 5_000, `noticed after ${(result.at - droppedAt).toFixed(0)} ms`)
})

t.test('determinism: the same seed plans the same stalls, resets and drops', limit, async (t) => {
  const edge = flaky(profiles['edge-lossy'])
  const target = { host: '127.0.0.1', port: 9 }
  const a = new FlakyLink({ target, profile: edge, seed: 42 })
  const b = new FlakyLink({ target, profile: edge, seed: 42 })
  const c = new FlakyLink({ target, profile: edge, seed: 43 })
  const plan = a.plannedEvents(3_600_000)
  t.ok(plan.some((e) => e.kind === 'stall'), 'an hour of flaky EDGE has stalls')
  t.same(b.plannedEvents(3_600_000), plan, 'same seed, same plan')
  t.same(planEvents(edge.flaky!, 42, 3_600_000), plan, 'the link plans with the pure function')
  t.notSame(c.plannedEvents(3_600_000), plan, 'another seed, another plan')
  t.notSame(a.plannedEvents(3_600_000, 1), plan, 'each connection has its own plan')
  for (let i = 1; i < plan.length; i++) t.ok(plan[i].atMs > plan[i - 1].atMs, `event ${i} is later than event ${i - 1}`)
  const last = plan.at(-1)!
  t.ok(plan.slice(0, -1).every((e) => e.kind === 'stall') && last.kind !== 'stall', 'a reset or a drop ends the plan')
})

t.test('determinism: a connection lives through exactly its planned events', limit, async (t) => {
  // Fast events so the test is short: seed 7's plan must end with a reset within a few seconds.
  const fast = flaky(profiles.loopback, { stallEveryMs: 150, stallMinMs: 50, stallMaxMs: 100, resetEveryMs: 800, dropEveryMs: Infinity })
  const { link } = await setup(t, echo, fast, 7)
  const plan = link.plannedEvents(10_000)
  t.ok(plan.length >= 2 && plan.at(-1)!.kind === 'reset' && plan.at(-1)!.atMs < 5_000, 'a short plan that ends in a reset')
  const client = await connect(t, link.port)
  client.on('error', () => {})
  client.write('x')
  await closed(client)
  t.same(link.events.map((e) => e.kind), plan.map((e) => e.kind), 'the events applied are the events planned')
  t.same(
    link.events.map((e) => (e.kind === 'stall' ? e.durationMs : 0)),
    plan.map((e) => (e.kind === 'stall' ? e.durationMs : 0)),
    'with the planned stall lengths',
  )
  t.ok(link.events.every((e, i) => e.planned && e.atMs >= plan[i].atMs - 1), 'and never before their planned time')
  t.equal(link.counters.resets, 1)
})
