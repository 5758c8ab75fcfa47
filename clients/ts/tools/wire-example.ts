// Prints the bytes of PROTOCOL.md's worked example, captured on the wire rather than written by
// hand: an in-memory broker, a recording TCP proxy in front of it for each device, alice's phone
// `a1` sending a 20-character text to bob, bob's phone `b1` receiving it. Every MQTT packet of both
// links is printed in hex with its fixed header, topic, packet id and payload, then the totals.
//   npx tsx clients/ts/tools/wire-example.ts
// Not part of the SDK (it starts a broker); the SDK's own files never import it.
import net from 'node:net'
import mqtt, { type MqttClient } from 'mqtt'
import { addUser } from '../../../broker/admin/accounts.ts'
import { loadConfig } from '../../../broker/config.ts'
import { createLogger } from '../../../broker/log.ts'
import { startBroker } from '../../../broker/server.ts'
import { wmq } from '../../../schema/generated/chat.js'

const TEXT = 'see you at 6 at home' // 20 characters
const CLIENT_MSG_ID = Uint8Array.from([1, 2, 3, 4, 5, 6, 7, 8])

interface Chunk { up: boolean, bytes: Buffer }

/** A TCP proxy that records every byte, each direction on its own. */
async function recorder (target: number): Promise<{ port: number, chunks: Chunk[], close (): void }> {
  const chunks: Chunk[] = []
  const sockets: net.Socket[] = []
  const server = net.createServer(client => {
    const upstream = net.connect(target, '127.0.0.1')
    sockets.push(client, upstream)
    client.on('data', bytes => { chunks.push({ up: true, bytes }); upstream.write(bytes) })
    upstream.on('data', bytes => { chunks.push({ up: false, bytes }); client.write(bytes) })
    client.on('close', () => upstream.destroy())
    upstream.on('close', () => client.destroy())
  })
  await new Promise<void>(resolve => server.listen(0, '127.0.0.1', resolve))
  return {
    port: (server.address() as net.AddressInfo).port,
    chunks,
    close () { for (const s of sockets) s.destroy(); server.close() },
  }
}

interface Packet { up: boolean, bytes: Buffer }

/** Splits each direction's byte stream into MQTT packets by their fixed headers. */
function packets (chunks: Chunk[]): Packet[] {
  const result: Packet[] = []
  for (const up of [true, false]) {
    const stream = Buffer.concat(chunks.filter(c => c.up === up).map(c => c.bytes))
    let at = 0
    while (at < stream.length) {
      let length = 0
      let shift = 0
      let i = at + 1
      for (;;) {
        const byte = stream[i++]
        length += (byte & 0x7f) << shift
        shift += 7
        if ((byte & 0x80) === 0) break
      }
      result.push({ up, bytes: stream.subarray(at, i + length) })
      at = i + length
    }
  }
  return result
}

const hex = (bytes: Uint8Array) => Buffer.from(bytes).toString('hex').replace(/(..)/g, '$1 ').trim()
const TYPES = ['', 'CONNECT', 'CONNACK', 'PUBLISH', 'PUBACK', 'PUBREC', 'PUBREL', 'PUBCOMP', 'SUBSCRIBE', 'SUBACK', 'UNSUBSCRIBE', 'UNSUBACK', 'PINGREQ', 'PINGRESP', 'DISCONNECT']

function describe (packet: Packet): string {
  const { bytes } = packet
  const type = bytes[0] >> 4
  let headerLength = 2
  while (bytes[headerLength - 1] & 0x80) headerLength++
  const lines = [`${packet.up ? 'device -> broker' : 'broker -> device'}  ${TYPES[type]}  ${bytes.length} bytes`,
    `  all:           ${hex(bytes)}`,
    `  fixed header:  ${hex(bytes.subarray(0, headerLength))}`]
  if (type === 3) {
    const qos = (bytes[0] >> 1) & 3
    const topicLength = bytes.readUInt16BE(headerLength)
    const topicEnd = headerLength + 2 + topicLength
    lines.push(`  topic:         ${hex(bytes.subarray(headerLength, topicEnd))}  ("${bytes.subarray(headerLength + 2, topicEnd).toString()}")`)
    let payloadStart = topicEnd
    if (qos > 0) {
      lines.push(`  packet id:     ${hex(bytes.subarray(topicEnd, topicEnd + 2))}`)
      payloadStart += 2
    }
    const payload = bytes.subarray(payloadStart)
    lines.push(`  payload:       ${hex(payload)}  (${payload.length} bytes)`)
    const decoded = packet.up ? wmq.Uplink.decode(payload) : wmq.Downlink.decode(payload)
    lines.push(`  decoded:       ${JSON.stringify(decoded.toJSON())}`)
  } else if (bytes.length > headerLength) {
    lines.push(`  rest:          ${hex(bytes.subarray(headerLength))}`)
  }
  return lines.join('\n')
}

function connectThrough (port: number, clientId: string, username: string, password: string): Promise<MqttClient> {
  return new Promise((resolve, reject) => {
    const client = mqtt.connect(`mqtt://127.0.0.1:${port}`, { clientId, username, password, protocolVersion: 4, clean: false, keepalive: 60, reconnectPeriod: 0 })
    client.once('connect', () => resolve(client))
    client.once('error', reject)
  })
}

async function until (condition: () => boolean): Promise<void> {
  for (let i = 0; i < 500 && !condition(); i++) await new Promise(resolve => setTimeout(resolve, 10))
  if (!condition()) throw new Error('the example did not complete')
}

const config = { ...loadConfig([], {}), host: '127.0.0.1', mqttPort: 0, wsPort: null, httpPort: null, dataDir: 'memory', logLevel: 'error' as const }
const broker = await startBroker(config, createLogger('error'))
try {
  const alice = (await addUser(broker.db, 'alice', 'correct horse')).id
  const bob = (await addUser(broker.db, 'bob', 'battery staple')).id
  const linkA = await recorder(broker.ports.MQTT)
  const linkB = await recorder(broker.ports.MQTT)
  const a1 = await connectThrough(linkA.port, 'a1', 'alice', 'correct horse')
  const b1 = await connectThrough(linkB.port, 'b1', 'bob', 'battery staple')
  const connectA = packets(linkA.chunks)
  linkA.chunks.length = 0
  linkB.chunks.length = 0

  const uplink = wmq.Uplink.encode({ ref: 1, send: { clientMsgId: CLIENT_MSG_ID, user: bob, content: { text: TEXT } } }).finish()
  a1.publish('s', Buffer.from(uplink), { qos: 0 })
  const isPuback = (p: Packet) => p.up && p.bytes[0] >> 4 === 4
  await until(() => packets(linkA.chunks).some(isPuback) && packets(linkB.chunks).some(isPuback))

  console.log(`users: alice = ${alice}, bob = ${bob}; devices a1 = ${parseInt('a1', 36)}, b1 = ${parseInt('b1', 36)}; text "${TEXT}" (${TEXT.length} characters)\n`)
  console.log('== connect (a1) ==\n')
  for (const p of connectA) console.log(describe(p) + '\n')
  for (const [name, link] of [['sender a1', linkA], ['recipient b1', linkB]] as const) {
    console.log(`== ${name} ==\n`)
    const list = packets(link.chunks)
    for (const p of list) console.log(describe(p) + '\n')
    const up = list.filter(p => p.up).reduce((n, p) => n + p.bytes.length, 0)
    const down = list.filter(p => !p.up).reduce((n, p) => n + p.bytes.length, 0)
    console.log(`total on the ${name} link: ${up} up + ${down} down = ${up + down} bytes of MQTT\n`)
  }
  await Promise.all([a1, b1].map(c => new Promise<void>(resolve => c.end(false, {}, () => resolve()))))
  linkA.close()
  linkB.close()
} finally {
  await broker.close()
}
