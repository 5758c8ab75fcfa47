// (a3) bytes: what one 20-character text costs on the wire (DESIGN 7, issue 3: under 100 bytes on
// the sender's link, acknowledgements included, and under 80 on the recipient's). Two devices,
// each behind its own unshaped FlakyLink whose counters see every byte; messages go one at a time,
// each measured from idle to idle. The packets of the first message are listed from mqtt.js'
// packet events, and their sizes must add up to what the links counted.
import { setTimeout as sleep } from 'node:timers/promises'
import type { Packet } from 'mqtt'
import { Generator } from '../generator.ts'
import { TEXT_LENGTH } from '../ledger.ts'
import { profiles } from '../lab/profiles.ts'
import { n0, type Table } from '../report.ts'
import { requireTargets, timingsFor, withTarget, type Arguments, type Scenario } from './common.ts'

export interface PacketSeen {
  link: 'sender' | 'recipient'
  direction: 'up' | 'down'
  cmd: string
  topic?: string
  bytes: number
}

export interface BytesResult {
  target: string
  messages: number
  /** Per message, averaged: bytes each way on each link. */
  sender: { up: number; down: number; total: number }
  recipient: { up: number; down: number; total: number }
  /** Every measured message: [sender total, recipient total]. */
  each: Array<[number, number]>
  firstMessagePackets: PacketSeen[]
  /** The packet sizes of the first message add up to the link counts. */
  packetsMatchLinks: boolean
  settled: boolean
}

const varintLength = (n: number) => (n < 128 ? 1 : n < 16_384 ? 2 : n < 2_097_152 ? 3 : 4)

/** Size of an MQTT 3.1.1 packet on the wire: fixed header, remaining-length varint, the rest. */
export function packetBytes(packet: Packet): number {
  const parsed = (packet as { length?: number }).length
  let remaining: number
  if (typeof parsed === 'number') remaining = parsed
  else if (packet.cmd === 'publish') {
    const payload = typeof packet.payload === 'string' ? Buffer.byteLength(packet.payload) : packet.payload.length
    remaining = 2 + Buffer.byteLength(packet.topic) + (packet.qos > 0 ? 2 : 0) + payload
  } else if (['puback', 'pubrec', 'pubrel', 'pubcomp', 'unsuback'].includes(packet.cmd)) remaining = 2
  else if (['pingreq', 'pingresp', 'disconnect'].includes(packet.cmd)) remaining = 0
  else return NaN
  return 1 + varintLength(remaining) + remaining
}

/** Sends `messages` texts one at a time from device 0 to device 1 and counts their bytes. */
export async function measureBytes(targetName: string, args: Arguments, messages: number): Promise<BytesResult> {
  return withTarget(targetName, args, async (target) => {
    const generator = await Generator.create({
      target, devices: 2, topology: { kind: 'pairs' }, profile: profiles.loopback, seed: args.seed,
      ...timingsFor(target, undefined, args, 600), connectConcurrency: 2,
    })
    try {
      await generator.connectAll()
      await sleep(300)
      const [senderLink, recipientLink] = generator.links
      const packets: PacketSeen[] = []
      let recording = false
      const watch = (index: 0 | 1) => {
        const client = generator.devices[index].mqttClient?.()
        if (!client) throw new Error('the bytes scenario watches mqtt.js packets: use the protocol client, not the SDK')
        const link = index === 0 ? 'sender' : 'recipient'
        client.on('packetsend', (packet: Packet) => { if (recording) packets.push(seen(link, 'up', packet)) })
        client.on('packetreceive', (packet: Packet) => { if (recording) packets.push(seen(link, 'down', packet)) })
      }
      watch(0)
      watch(1)
      const each: Array<[number, number]> = []
      const sums = { sender: { up: 0, down: 0 }, recipient: { up: 0, down: 0 } }
      let settled = true
      let firstTotal = 0
      for (let k = 0; k < messages; k++) {
        const before = { s: { ...senderLink.counters }, r: { ...recipientLink.counters } }
        recording = k === 0
        const phase = await generator.runPhase({ name: `message ${k + 1}`, traffic: { kind: 'window', window: 1 }, maxMessages: 1, senders: [0], seconds: 30, drainSeconds: 10 })
        settled &&= phase.settled && phase.metrics.delivered === 1
        await sleep(200) // the recipient's PUBACK and any late packet
        recording = false
        const s = { up: senderLink.counters.bytesUp - before.s.bytesUp, down: senderLink.counters.bytesDown - before.s.bytesDown }
        const r = { up: recipientLink.counters.bytesUp - before.r.bytesUp, down: recipientLink.counters.bytesDown - before.r.bytesDown }
        sums.sender.up += s.up
        sums.sender.down += s.down
        sums.recipient.up += r.up
        sums.recipient.down += r.down
        each.push([s.up + s.down, r.up + r.down])
        if (k === 0) firstTotal = s.up + s.down + r.up + r.down
      }
      const average = (x: { up: number; down: number }) => ({
        up: x.up / messages, down: x.down / messages, total: (x.up + x.down) / messages,
      })
      return {
        target: target.name,
        messages,
        sender: average(sums.sender),
        recipient: average(sums.recipient),
        each,
        firstMessagePackets: packets,
        packetsMatchLinks: packets.reduce((sum, p) => sum + p.bytes, 0) === firstTotal,
        settled,
      }
    } finally {
      await generator.close()
    }
  })
}

function seen(link: PacketSeen['link'], direction: PacketSeen['direction'], packet: Packet): PacketSeen {
  return { link, direction, cmd: packet.cmd, ...(packet.cmd === 'publish' ? { topic: packet.topic } : {}), bytes: packetBytes(packet) }
}

const f1 = (n: number) => (Number.isInteger(n) ? String(n) : n.toFixed(1))

export const bytes: Scenario = {
  name: 'bytes',
  summary: `bytes on the wire for one ${TEXT_LENGTH}-character text, every MQTT packet counted on both links`,
  async run({ args, progress }) {
    const messages = args.messages ?? 10
    const results: BytesResult[] = []
    const targets: Record<string, Record<string, string>> = {}
    for (const name of requireTargets(args)) {
      progress.update(results.length / args.targets.length, `${name}: sending ${messages} texts one at a time`)
      results.push(await measureBytes(name, args, messages))
      targets[name] = { broker: name }
    }
    progress.clear()
    const table: Table = {
      columns: ['', ...results.map((r) => r.target)],
      rows: [
        ['sender link, up (bytes)', ...results.map((r) => f1(r.sender.up))],
        ['sender link, down', ...results.map((r) => f1(r.sender.down))],
        ['sender link, total (target < 100)', ...results.map((r) => f1(r.sender.total))],
        ['recipient link, up', ...results.map((r) => f1(r.recipient.up))],
        ['recipient link, down', ...results.map((r) => f1(r.recipient.down))],
        ['recipient link, total (target < 80)', ...results.map((r) => f1(r.recipient.total))],
        ['packet sizes add up to the link counts', ...results.map((r) => (r.packetsMatchLinks ? 'yes' : 'NO'))],
        ['every text delivered once', ...results.map((r) => (r.settled ? 'yes' : 'NO'))],
      ],
    }
    const notes = results.map((r) => `${r.target}, packets of the first message: ` +
      r.firstMessagePackets.map((p) => `${p.link} ${p.direction} ${p.cmd.toUpperCase()}${p.topic ? ` ${p.topic}` : ''} ${n0(p.bytes)} B`).join('; '))
    return {
      scenario: 'bytes',
      title: `Bytes on the wire for one ${TEXT_LENGTH}-character text (average of ${messages}, one at a time)`,
      parameters: { messages, textLength: TEXT_LENGTH, seed: args.seed },
      targets,
      table,
      notes,
      data: { results },
      charts: [],
    }
  },
}
