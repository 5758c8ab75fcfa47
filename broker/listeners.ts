// One listener per transport (STYLE, after Tinode's hdl_*.go): MQTT over TCP, TLS, WebSocket and
// secure WebSocket, and HTTP. Each binds its configured port; a taken port is one clear line that
// names the setting to change.
import { createServer as createHttpServer, type IncomingMessage, type RequestListener, type Server as HttpServer } from 'node:http'
import { createServer as createHttpsServer } from 'node:https'
import { readFileSync } from 'node:fs'
import { createServer as createTcpServer, type Server, type Socket } from 'node:net'
import { createServer as createTlsServer } from 'node:tls'
import type { Duplex } from 'node:stream'
import { WebSocketServer, createWebSocketStream } from 'ws'
import type { Config, Port } from './config.ts'
import { settings, type SettingName } from './config.ts'

export const WS_PATH = '/mqtt'

export class ListenError extends Error {}

export interface Listener { name: string, port: number, close (): Promise<void> }

type Handle = (stream: Duplex, req?: IncomingMessage) => void

/**
 * With Nagle off, every MQTT packet would be its own syscall and segment (writev was 15-23% of the
 * broker's CPU under load). Packets written to one socket in the same turn of the event loop (a
 * batch's deliveries, a PUBACK and the next reply) leave together at the end of that turn.
 */
export function coalesceWrites (socket: Socket): void {
  const write = socket.write
  let corked = false
  const flush = () => {
    corked = false
    socket.uncork()
  }
  socket.write = function (this: Socket, ...args: Parameters<Socket['write']>) {
    if (!corked) {
      corked = true
      socket.cork()
      setImmediate(flush)
    }
    return write.apply(this, args)
  } as Socket['write']
}

function bind (server: Server, name: string, setting: SettingName, port: number, host: string): Promise<Listener> {
  const sockets = new Set<Socket>()
  server.on('connection', (socket: Socket) => {
    // A reply (SendAck) must not wait for the device's delayed ACK of the PUBACK before it: on a
    // mobile link Nagle would cost a round trip (measured on loopback: SendAck p50 43 ms -> 11.5 ms).
    socket.setNoDelay(true)
    coalesceWrites(socket)
    sockets.add(socket)
    socket.on('close', () => sockets.delete(socket))
  })
  return new Promise((resolve, reject) => {
    server.once('error', (err: NodeJS.ErrnoException) => {
      const { env, flag } = settings[setting]
      const why = err.code === 'EADDRINUSE' ? 'is already in use'
        : err.code === 'EACCES' ? 'needs privileges this process does not have'
          : `cannot be opened (${err.code ?? err.message})`
      reject(new ListenError(`${name} port ${port} on ${host} ${why}: set ${env} (or --${flag}) to another port, or to "off"`))
    })
    server.listen(port, host, () => {
      const address = server.address()
      resolve({
        name,
        port: typeof address === 'object' && address ? address.port : port,
        close: () => new Promise(resolve => {
          server.close(() => resolve())
          for (const socket of sockets) socket.destroy()
        }),
      })
    })
  })
}

function attachWebSocket (server: HttpServer, handle: Handle): void {
  const wss = new WebSocketServer({ server, path: WS_PATH })
  // ws re-emits the HTTP server's errors on wss; unheard, a taken port would crash the process
  // instead of becoming bind()'s one-line ListenError.
  wss.on('error', () => {})
  wss.on('connection', (ws, req) => {
    const stream = createWebSocketStream(ws)
    stream.on('error', () => stream.destroy())
    handle(stream, req)
  })
}

export interface ListenerSet { listeners: Listener[], close (): Promise<void> }

/** Opens every configured listener; on a failure closes those already open and throws. */
export async function openListeners (config: Config, handle: Handle, http: RequestListener): Promise<ListenerSet> {
  const tls = config.tlsKey ? { key: readFileSync(config.tlsKey), cert: readFileSync(config.tlsCert) } : null
  const plans: Array<[string, SettingName, Port, () => Server]> = [
    ['MQTT', 'mqttPort', config.mqttPort, () => createTcpServer(socket => handle(socket))],
    ['WebSocket', 'wsPort', config.wsPort, () => {
      const server = createHttpServer((req, res) => { res.statusCode = 426; res.end(`connect with MQTT over WebSocket at ${WS_PATH}\n`) })
      attachWebSocket(server, handle)
      return server
    }],
    ['HTTP', 'httpPort', config.httpPort, () => createHttpServer(http)],
  ]
  if (tls) {
    plans.push(['MQTTS', 'mqttsPort', config.mqttsPort, () => createTlsServer(tls, socket => handle(socket))])
    plans.push(['WSS', 'wssPort', config.wssPort, () => {
      const server = createHttpsServer(tls, (req, res) => { res.statusCode = 426; res.end() })
      attachWebSocket(server, handle)
      return server
    }])
  }
  const listeners: Listener[] = []
  const close = async () => { await Promise.all(listeners.map(l => l.close())) }
  try {
    for (const [name, setting, port, create] of plans) {
      if (port !== null) listeners.push(await bind(create(), name, setting, port, config.host))
    }
  } catch (err) {
    await close()
    throw err
  }
  return { listeners, close }
}
