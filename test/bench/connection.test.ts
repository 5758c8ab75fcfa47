// A device's connection (bench/devices/connection.ts) as the storm uses it: leave() resets the
// socket, so the broker learns at once (ECONNRESET), not by a FIN or a keepalive; rejoin() opens a
// new one. A bare TCP server that answers CONNECT with a CONNACK stands for the broker: what it
// sees is the point.
import { once } from 'node:events'
import net from 'node:net'
import { setTimeout as sleep } from 'node:timers/promises'
import t, { type Test } from 'tap'
import { openConnection } from '../../bench/devices/connection.ts'

/** A bare TCP server that answers each CONNECT with a CONNACK, and a device connection to it. */
async function fakeBroker(t: Test, clientId: string) {
  const server = net.createServer()
  const accepted: net.Socket[] = []
  const arrivals: Array<(socket: net.Socket) => void> = []
  server.on('connection', (socket) => {
    socket.on('error', () => {})
    accepted.push(socket)
    // CONNACK, then the socket is handed over: a reset that finds unread data in the broker's
    // socket may read as an end of stream there instead of ECONNRESET.
    socket.once('data', () => {
      socket.write(Buffer.from([0x20, 0x02, 0x00, 0x00]))
      arrivals.shift()?.(socket)
    })
  })
  server.listen(0, '127.0.0.1')
  await once(server, 'listening')
  const link = openConnection({
    host: '127.0.0.1', port: (server.address() as net.AddressInfo).port, keepaliveSeconds: 60, reconnectMs: RECONNECT_MS,
    connectTimeoutMs: 30_000, replayUnacknowledged: false,
  }, { clientId })
  t.teardown(async () => {
    await new Promise<void>((resolve) => link.client.end(true, {}, () => resolve()))
    for (const socket of accepted) socket.destroy()
    server.close()
  })
  return {
    link,
    accepted,
    nextConnection: () => new Promise<net.Socket>((resolve) => arrivals.push(resolve)),
    connected: () => new Promise<void>((resolve) => link.client.once('connect', () => resolve())),
  }
}

const RECONNECT_MS = 100

t.test('leave() resets the connection (the far end reads ECONNRESET); rejoin() connects again', async (t) => {
  const { link, accepted, nextConnection, connected } = await fakeBroker(t, 'leave-test')
  const first = nextConnection()
  link.connect()
  const socket = await first
  await connected()
  const ended = new Promise<string>((resolve) => {
    socket.once('error', (err: NodeJS.ErrnoException) => resolve(`error ${err.code}`))
    socket.once('end', () => resolve('end (FIN)'))
  })
  link.leave()
  t.equal(await ended, 'error ECONNRESET', 'the broker side reads a reset')

  const second = nextConnection()
  link.rejoin()
  await second
  await connected()
  t.equal(accepted.length, 2, 'one new connection after rejoin()')
})

t.test('a device that leaves while a reconnect is planned (its link had just dropped) stays away until rejoin()', async (t) => {
  const { link, accepted, nextConnection, connected } = await fakeBroker(t, 'planned-test')
  const first = nextConnection()
  link.connect()
  await first
  await connected()
  link.breakLink()
  // mqtt.js plans its reconnect on 'close', RECONNECT_MS ahead.
  await new Promise<void>((resolve) => link.client.once('close', () => resolve()))
  link.leave()
  const streamWhileAway = link.client.stream
  // The planned reconnect was due long before this sleep ends (timers fire in order), and would
  // have made a new stream at once.
  await sleep(RECONNECT_MS * 5)
  t.equal(link.client.stream, streamWhileAway, 'no connection attempt while away')
  const second = nextConnection()
  link.rejoin()
  await second
  await connected()
  t.equal(accepted.length, 2, 'the first connection and the one after rejoin(), nothing between')
})
