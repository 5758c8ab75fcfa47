// One device's MQTT connection for the load generator: raw mqtt.js v5 speaking MQTT 3.1.1, with
// clean=false, its own reconnect timer, an optional source address (several loopback addresses
// get past the ephemeral port limit) and a count of every byte the device sent and received, over
// all its connections. Like the broker's, a device's packets written in one event-loop turn leave
// in one write (coalesceWrites): the same for every target.
import net from 'node:net'
import { Readable } from 'node:stream'
import { MqttClient, Store } from 'mqtt'
import { coalesceWrites } from '../../broker/listeners.ts'

export interface ConnectionOptions {
  host: string
  port: number
  /** Source address of the device's sockets, e.g. 127.0.0.7. */
  localAddress?: string
  keepaliveSeconds: number
  /** Wait between losing a connection and trying again. */
  reconnectMs: number
  connectTimeoutMs: number
  /**
   * After a reconnect mqtt.js sends the QoS 1 publishes never PUBACKed again, one per round trip,
   * and emits 'connect' only when all are acknowledged (seconds on EDGE, forever if the link dies
   * meanwhile). A device that re-sends its own requests turns that off.
   */
  replayUnacknowledged: boolean
}

/** An outgoing store that forgets its packets at each CONNACK instead of replaying them. */
class ForgettingStore extends Store {
  override createStream(): ReturnType<Store['createStream']> {
    for (const packet of this.packets()) this.del(packet, () => {})
    // mqtt.js types this stream with readable-stream's Readable; an empty Node Readable serves.
    return Readable.from([]) as unknown as ReturnType<Store['createStream']>
  }

  private packets(): Array<{ messageId?: number }> {
    return [...((this as unknown as { _inflights: Map<number, { messageId?: number }> })._inflights?.values() ?? [])]
  }
}

export interface Credentials {
  clientId: string
  username?: string
  password?: string
}

export interface Connection {
  client: MqttClient
  /** Opens the first connection; mqtt.js reconnects from then on. */
  connect(): void
  /** Bytes the device wrote (up) and read (down), over every connection so far. */
  bytes(): { up: number; down: number }
  /** Ends the current connection without a DISCONNECT (as a dead link would); mqtt.js reconnects. */
  breakLink(): void
  /**
   * Leaves the network: the connection is reset (RST, so the broker learns at once, as from a cell
   * or NAT box that dies and says so) and no reconnect is tried until rejoin().
   */
  leave(): void
  rejoin(): void
}

export function openConnection(options: ConnectionOptions, credentials: Credentials): Connection {
  let closedUp = 0
  let closedDown = 0
  let socket: net.Socket | null = null
  const client = new MqttClient(() => {
    const s = net.connect({ host: options.host, port: options.port, localAddress: options.localAddress, noDelay: true })
    socket = s
    coalesceWrites(s)
    s.once('close', () => {
      closedUp += s.bytesWritten
      closedDown += s.bytesRead
      if (socket === s) socket = null
    })
    return s
  }, {
    ...credentials,
    protocolVersion: 4,
    clean: false,
    keepalive: options.keepaliveSeconds,
    reconnectPeriod: options.reconnectMs,
    connectTimeout: options.connectTimeoutMs,
    resubscribe: false,
    // The generator decides when each device connects (a few at a time): see connect().
    manualConnect: true,
    // mqtt.js logs through `debug` on every packet; even switched off, those calls were 3.4% of the
    // generator's CPU, taken from the broker it measures on the same two cores.
    log: () => {},
    ...(options.replayUnacknowledged ? {} : { outgoingStore: new ForgettingStore() }),
  })
  // mqtt.js emits connection failures as errors; the device's reconnect logic handles them.
  client.on('error', () => {})
  return {
    client,
    connect: () => { client.connect() },
    bytes: () => ({
      up: closedUp + (socket?.bytesWritten ?? 0),
      down: closedDown + (socket?.bytesRead ?? 0),
    }),
    breakLink: () => {
      const s = client.stream as net.Socket | undefined
      s?.destroy()
    },
    leave: () => {
      client.options.reconnectPeriod = 0
      // A reconnect already planned (the link had dropped just before) would still fire, connect
      // while the device is away and be replaced at rejoin(): two connections for one return.
      // reconnectPeriod only governs the next plan, so the planned one is cancelled too.
      const planned = client as unknown as { _clearReconnect(): void }
      planned._clearReconnect()
      const s = client.stream as net.Socket | undefined
      // resetAndDestroy() waits for a connect in progress, then resets it.
      if (s && !s.destroyed) s.resetAndDestroy()
    },
    rejoin: () => {
      client.options.reconnectPeriod = options.reconnectMs
      // reconnect() with the current stores: without them mqtt.js starts empty ones and forgets
      // the QoS 1 publishes it has not had acknowledged.
      client.reconnect({ incomingStore: client.incomingStore, outgoingStore: client.outgoingStore })
    },
  }
}
