// A device's connection (bench/devices/connection.ts) as the storm uses it: leave() resets the
// socket, so the broker learns at once (ECONNRESET), not by a FIN or a keepalive; rejoin() opens a
// new one. A bare TCP server that answers CONNECT with a CONNACK stands for the broker: what it
// sees is the point.
import { once } from 'node:events'
import net from 'node:net'
import t from 'tap'
import { openConnection } from '../../bench/devices/connection.ts'

t.test('leave() resets the connection (the far end reads ECONNRESET); rejoin() connects again', async (t) => {
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
  const nextConnection = () => new Promise<net.Socket>((resolve) => arrivals.push(resolve))
  const connected = () => new Promise<void>((resolve) => link.client.once('connect', () => resolve()))
  const link = openConnection({
    host: '127.0.0.1', port: (server.address() as net.AddressInfo).port, keepaliveSeconds: 60, reconnectMs: 100,
    connectTimeoutMs: 30_000, replayUnacknowledged: false,
  }, { clientId: 'leave-test' })
  t.teardown(async () => {
    await new Promise<void>((resolve) => link.client.end(true, {}, () => resolve()))
    for (const socket of accepted) socket.destroy()
    server.close()
  })

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
