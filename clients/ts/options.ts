// Every knob of the SDK, with its default and the reason for it. The numbers come from DESIGN.md's
// weak-network notes: the lab's profiles (2G rural: 650 ms one way, so RTT 1.3 s, and a TCP
// retransmission of max(1 s, 3 x RTT) = 3.9 s; EDGE lossy: RTT 0.84 s, 1% loss) and the habits
// of WeChat's Mars (4 KB/s assumed on GPRS, jittered reconnects, long background heartbeats).
import type { IClientOptions } from 'mqtt'
import type { Store } from './store.ts'

export interface ConnectOptions {
  /** mqtt://host:1883, mqtts://..., ws://host:8083/mqtt, wss://...; a function is asked again before each attempt. */
  url: string | (() => string)
  login: string
  /** An access token (`npm run admin -- token <login>`), or ... */
  token?: string
  /** ... the user's password. */
  password?: string
  /** This installation's device id: 1-11 base-36 characters (newDeviceId() makes one). It is the MQTT client id. */
  device: string
  /** The user's id, when the application knows it; else learned from the first delivery. */
  user?: number
  /** Where the outbox and the read position live; default: memory (lost when the process ends). */
  store?: Store

  /**
   * MQTT keepalive, seconds. Default 60. The keepalive does three jobs. (1) It keeps NAT and
   * firewall mappings open: carrier NATs forget idle TCP flows after a few minutes (Mars probes
   * upward from 3.5 min because less is always safe); 60 s is inside all of them, for 4 bytes of
   * MQTT a minute. (2) It lets the broker notice a vanished device: aedes drops a connection after
   * 1.5 x keepalive, so presence turns offline and the session is freed within 90 s. (3) It lets the
   * device notice a dead link, which it does badly: 1.5 x keepalive again, and DESIGN measured plain
   * MQTT at keepalive 30 s to a p99 of 45-54 s on flaky EDGE. So the SDK does not lean on it for (3):
   * requests carry their own bound (requestTimeoutMs) and an idle link is probed (probeIdleMs).
   * An application that goes to the background and relies on push may reconnect with Mars-like
   * 240-600 s to save battery.
   */
  keepalive?: number
  /**
   * Base of the bound within which a request must be answered, ms; default 6000. One RTT on 2G
   * rural (1.3 s) plus one TCP retransmission (3.9 s) is 5.2 s: a slow but live link stays under
   * it. Past it the connection is treated as dead and replaced: found 6 s after a request, then a
   * reconnect (about 2 RTT) and the re-send, about 9-10 s on EDGE, which leaves the delivery hop room
   * under issue 4's 15 s p99.
   */
  requestTimeoutMs?: number
  /** Link rate assumed for the bytes in flight, added to every bound (Mars: 4 KB/s on GPRS). */
  linkBytesPerSecond?: number
  /**
   * When nothing has arrived for this long and no request is waiting, send a PINGREQ and expect a
   * packet back within requestTimeoutMs; ms, default 10000, 0 = off. This finds a silently dropped
   * link (a NAT that forgot the flow: no FIN, no RST) within 10 + 6 s while the device only
   * listens. It costs a 2-byte PINGREQ and a 2-byte PINGRESP per 10 s of silence, nothing while
   * messages flow. In the background, setIdleProbe(0) and let the keepalive do.
   */
  probeIdleMs?: number
  /** CONNACK wait, ms; default 15000: TCP and MQTT handshakes are 2 RTT (2.6 s on 2G) plus SYN retransmissions (1 s, 3 s, 7 s). */
  connectTimeoutMs?: number
  /** Reconnect delay bounds, ms; default 500 and 30000: the first retry within 0.25-0.5 s, then doubling, jittered. */
  reconnectMinMs?: number
  reconnectMaxMs?: number
  /**
   * How long an early arrival waits for the missing seq before it is pulled, ms; default 1500. A
   * missing message is most often just behind (a QoS 1 redelivery after a reconnect, the other
   * topic's traffic): about one 2G RTT and a little. A conversation new to the device is pulled at once.
   */
  gapWaitMs?: number
  /** Messages per history page when the SDK pulls a gap; the broker caps it (HISTORY_PAGE_MAX, HISTORY_PAGE_BYTES). */
  historyPageLimit?: number
  /** An application request (history, receipts, groups) fails with TimeoutError after this long across reconnects; ms, default 60000. Sends never do: they wait in the outbox. */
  requestDeadlineMs?: number
  /** Tell the broker what was delivered (MarkReceipt.delivered_seq), batched per conversation; default true. */
  deliveryReceipts?: boolean
  /** How long delivered receipts gather before they go, ms; default 1000. */
  deliveryReceiptDelayMs?: number
  /** Extra mqtt.js options (TLS: ca, rejectUnauthorized; WebSocket: wsOptions). The protocol ones are the SDK's. */
  mqtt?: Omit<IClientOptions, 'clientId' | 'username' | 'password' | 'protocolVersion' | 'clean' | 'keepalive' | 'reconnectPeriod' | 'connectTimeout'>
}

export type Settings = Required<Omit<ConnectOptions, 'token' | 'password' | 'user' | 'store' | 'mqtt'>> &
  Pick<ConnectOptions, 'token' | 'password' | 'user' | 'mqtt'>

export const defaults = {
  keepalive: 60,
  requestTimeoutMs: 6000,
  linkBytesPerSecond: 4096,
  probeIdleMs: 10_000,
  connectTimeoutMs: 15_000,
  reconnectMinMs: 500,
  reconnectMaxMs: 30_000,
  gapWaitMs: 1500,
  historyPageLimit: 50,
  requestDeadlineMs: 60_000,
  deliveryReceipts: true,
  deliveryReceiptDelayMs: 1000,
} satisfies Partial<Settings>

export function settingsOf (options: ConnectOptions): Settings {
  const defined = Object.fromEntries(Object.entries(options).filter(([, value]) => value !== undefined))
  return { ...defaults, ...defined } as Settings
}
