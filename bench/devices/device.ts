// What the generator needs of a simulated device, whichever target it talks to: weakmq's chat
// protocol (chat-device.ts) or plain MQTT topics (plain-device.ts).
import type { MqttClient } from 'mqtt'

/** Where a message goes: a user (1:1) or a group. Ids are the target's own. */
export type SendTarget = { user: number } | { group: number }

/** What a device reports to the generator: its application's view. */
export interface AppEvents {
  /** The target acknowledged the send of message `key` (weakmq: SendAck; plain MQTT: PUBACK). */
  acked(device: number, key: number, at: number): void
  /** A chat text reached the device's application. */
  delivered(device: number, text: string, at: number): void
  connected(device: number, reconnect: boolean, at: number): void
  disconnected(device: number, at: number): void
}

/** What happened on the wire, below the application. */
export interface WireStats {
  connects: number
  /** Connections given up because a request went unanswered too long (DESIGN §Weak networks). */
  deadLinks: number
  /** Requests sent again after a reconnect. */
  resends: number
  /** Messages and replies that arrived again and were dropped by (conversation, seq) or ref. */
  wireDuplicates: number
  /** Messages that arrived ahead of a gap and were held back until it was filled (DESIGN 5). */
  heldBack: number
  /** History pages asked for to fill a gap. */
  gapFills: number
  /** Conversation-list syncs after a reconnect. */
  syncs: number
  /** PINGREQs sent to probe a silent link. */
  probes: number
  /** Error replies. */
  errors: number
}

export const noWireStats = (): WireStats => ({
  connects: 0, deadLinks: 0, resends: 0, wireDuplicates: 0, heldBack: 0, gapFills: 0, syncs: 0, probes: 0, errors: 0,
})

export function addWireStats(into: WireStats, from: WireStats, sign = 1): WireStats {
  for (const key of Object.keys(into) as Array<keyof WireStats>) into[key] += sign * from[key]
  return into
}

export interface BenchDevice {
  readonly index: number
  readonly connected: boolean
  readonly stats: WireStats
  /** Connects; resolves at the first CONNACK, rejects when the target refuses the device. */
  start(): Promise<void>
  send(to: SendTarget, text: string, key: number): void
  /** Called often by the generator: gives up a connection on which a request went unanswered. */
  watch(now: number): void
  /** Drops off the network and stays off until rejoin(). */
  leave(): void
  rejoin(): void
  bytes(): { up: number; down: number }
  /** The mqtt.js client, for instruments that watch packets (the bytes scenario); not the SDK's. */
  mqttClient?(): MqttClient
  stop(): Promise<void>
}
