// Publishing to devices: replies on `d/{device}`, events on `u/{user}`, always QoS 1 so a device
// that is away gets them from its persistent session (DESIGN 1).
import type { Aedes } from 'aedes'
import { wmq } from '../../schema/generated/chat.js'
import { downlinkTopic, inboxTopic } from '../topics.ts'

export type DownlinkEvent = wmq.IDownlink

export function encodeDownlink (event: DownlinkEvent): Buffer {
  const bytes = wmq.Downlink.encode(event).finish()
  return Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength)
}

function publish (broker: Aedes, topic: string, payload: Buffer, options: { notTo?: string } = {}): Promise<void> {
  // `clientId` + `nl` (no-local) keep aedes from delivering to that one session, e.g. the device
  // that sent the message gets its SendAck, not an echo of what it sent (DESIGN 7).
  const packet = { cmd: 'publish' as const, topic, payload, qos: 1 as const, retain: false, dup: false,
    ...(options.notTo ? { clientId: options.notTo, nl: true } : {}) }
  return new Promise((resolve, reject) => broker.publish(packet, err => err ? reject(err) : resolve()))
}

export function replyTo (broker: Aedes, device: number, event: DownlinkEvent): Promise<void> {
  return publish(broker, downlinkTopic(device), encodeDownlink(event))
}

export function sendToUser (broker: Aedes, user: number, event: DownlinkEvent, exceptDevice?: number): Promise<void> {
  return publish(broker, inboxTopic(user), encodeDownlink(event),
    exceptDevice === undefined ? {} : { notTo: exceptDevice.toString(36) })
}

export function errorReply (ref: number, code: wmq.ErrorCode, detail: string): DownlinkEvent {
  return { ref, error: { code, detail } }
}
