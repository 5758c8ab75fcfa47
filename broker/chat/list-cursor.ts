// The conversation-list cursor (issue 3 §6): opaque bytes to a device, a Postgres snapshot here.
// A list returns the conversations changed in a transaction the device's snapshot did not see
// (committed after it, or still running when it was taken), so no change is skipped whatever order
// transactions commit in. A list longer than a page is a round: its pages go through conversations
// in id order, and the cursor that ends the round is the snapshot its first page was read at; a
// conversation changed again after that is listed again in the next round.
//
// Bytes: a version (1), flags (1: a snapshot was seen; 2: a round goes on), then the snapshot
// seen, then, in a round, the round's snapshot and the last conversation listed. A snapshot is its
// xmin, xmax - xmin, the count of transactions running and each of them - xmin. All are varints
// (7 bits a byte, low first), about 12 bytes in all.
import { wmq } from '../../schema/generated/chat.js'
import { RequestError } from './errors.ts'

/** A pg_snapshot: transactions below xmin are done, from xmax on not yet started, `running` between. */
export interface Snapshot { xmin: number, xmax: number, running: number[] }

export interface ListCursor {
  /** What the device has seen; null: nothing (the whole list). */
  seen: Snapshot | null
  /** In a round of pages: the first page's snapshot, and the last conversation listed. */
  round: { snapshot: Snapshot, after: number } | null
}

const VERSION = 1
const SEEN = 1
const ROUND = 2
/** More transactions running at once than any Postgres allows (max_connections is far lower). */
const MAX_RUNNING = 100_000

export const parseSnapshot = (text: string): Snapshot => {
  const [xmin, xmax, running] = text.split(':')
  return { xmin: Number(xmin), xmax: Number(xmax), running: running ? running.split(',').map(Number) : [] }
}

export const snapshotText = (s: Snapshot): string => `${s.xmin}:${s.xmax}:${s.running.join(',')}`

export function listCursorBytes (cursor: ListCursor): Uint8Array {
  const out: number[] = [VERSION, (cursor.seen ? SEEN : 0) | (cursor.round ? ROUND : 0)]
  const varint = (n: number) => {
    while (n >= 0x80) {
      out.push((n % 0x80) | 0x80)
      n = Math.floor(n / 0x80)
    }
    out.push(n)
  }
  const snapshot = (s: Snapshot) => {
    varint(s.xmin)
    varint(s.xmax - s.xmin)
    varint(s.running.length)
    for (const xid of s.running) varint(xid - s.xmin)
  }
  if (cursor.seen) snapshot(cursor.seen)
  if (cursor.round) {
    snapshot(cursor.round.snapshot)
    varint(cursor.round.after)
  }
  return Uint8Array.from(out)
}

/** The cursor a device passed; empty bytes: the whole list. Anything else unreadable is refused. */
export function readListCursor (bytes: Uint8Array | null | undefined): ListCursor {
  if (!bytes || bytes.length === 0) return { seen: null, round: null }
  const refuse = (why: string): never => {
    throw new RequestError(wmq.ErrorCode.INVALID_ARGUMENT, `the list cursor is not one this broker gave: ${why}`)
  }
  let at = 0
  const varint = () => {
    let n = 0
    for (let scale = 1; ; scale *= 0x80) {
      if (at >= bytes.length) refuse('it ends too soon')
      const byte = bytes[at++]
      n += (byte & 0x7f) * scale
      if (n > Number.MAX_SAFE_INTEGER) refuse('a number is too large')
      if (byte < 0x80) return n
    }
  }
  const snapshot = (): Snapshot => {
    const xmin = varint()
    const xmax = xmin + varint()
    const count = varint()
    if (count > MAX_RUNNING || count > xmax - xmin) refuse('too many running transactions')
    const running: number[] = []
    for (let i = 0; i < count; i++) {
      const xid = xmin + varint()
      if (xid >= xmax || (i > 0 && xid <= running[i - 1])) refuse('a running transaction is out of order')
      running.push(xid)
    }
    // pg_snapshot's input rules: a valid xid is never 0 in its low 32 bits (the epoch is above them).
    if (xmin % 2 ** 32 === 0 || xmax % 2 ** 32 === 0 || xmax > Number.MAX_SAFE_INTEGER) refuse('not a snapshot')
    return { xmin, xmax, running }
  }
  if (varint() !== VERSION) refuse('unknown version')
  const flags = varint()
  if (flags & ~(SEEN | ROUND)) refuse('unknown flags')
  const seen = flags & SEEN ? snapshot() : null
  const round = flags & ROUND ? { snapshot: snapshot(), after: varint() } : null
  if (at !== bytes.length) refuse('bytes after its end')
  return { seen, round }
}
