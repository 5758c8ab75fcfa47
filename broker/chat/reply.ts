// Publishing to devices: replies on `d/{device}`, events on `u/{user}`. QoS 1 so a device that is
// away gets them from its persistent session (DESIGN 1); QoS 0 for what is worthless later (typing).
import type { Aedes } from 'aedes'
import { wmq } from '../../schema/generated/chat.js'
import { downlinkTopic, inboxTopic } from '../topics.ts'

export type DownlinkEvent = wmq.IDownlink

export interface PublishOptions {
  qos?: 0 | 1
  retain?: boolean
  /** A device that must not get this (DESIGN 7: no echo); see authorizeForward in server.ts. */
  notTo?: number
}

export function encodeDownlink (event: DownlinkEvent): Buffer {
  const bytes = wmq.Downlink.encode(event).finish()
  return Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength)
}

export function publishBytes (broker: Aedes, topic: string, payload: Buffer, options: PublishOptions = {}): Promise<void> {
  const packet = {
    cmd: 'publish' as const, topic, payload, qos: options.qos ?? 1, retain: options.retain ?? false, dup: false,
    ...(options.notTo === undefined ? {} : { clientId: options.notTo.toString(36) }),
  }
  return new Promise((resolve, reject) => broker.publish(packet, err => err ? reject(err) : resolve()))
}

export function replyTo (broker: Aedes, device: number, event: DownlinkEvent): Promise<void> {
  return publishBytes(broker, downlinkTopic(device), encodeDownlink(event))
}

export function sendToUser (broker: Aedes, user: number, event: DownlinkEvent, options: PublishOptions = {}): Promise<void> {
  return publishBytes(broker, inboxTopic(user), encodeDownlink(event), options)
}

export function errorReply (ref: number, code: wmq.ErrorCode, detail: string): DownlinkEvent {
  return { ref, error: { code, detail } }
}
