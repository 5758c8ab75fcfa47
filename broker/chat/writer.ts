// Group commit (issue 3 §3): sends that arrive while a batch is being committed wait for the next
// batch, so under load many sends share one transaction, and an idle broker commits a lone send at
// once. The delay a send waits is bounded by one commit; the batch size by `maxBatch`. Sends are
// stored in the order they were appended (issue 3 §2).
import type { Logger } from '../log.ts'
import type { Queryable } from '../storage/db.ts'
import { storeSends, type PendingSend, type SendOutcome } from '../storage/messages.ts'

export interface MessageWriter {
  append (send: PendingSend): Promise<SendOutcome>
  /** Resolves when everything appended so far is committed (or failed): for shutdown. */
  flush (): Promise<void>
  /** Transactions committed and sends stored so far (the ratio is the batching). */
  stats (): { batches: number, sends: number }
}

interface Waiting { send: PendingSend, resolve (outcome: SendOutcome): void, reject (err: Error): void }

const RETRIES = 3

/** A unique-key clash: another node stored the same (sender, client_msg_id) meanwhile. */
const isRace = (err: unknown) => (err as { code?: string }).code === '23505'

export function createMessageWriter (db: Queryable, log: Logger, maxBatch: number): MessageWriter {
  let queue: Waiting[] = []
  let running: Promise<void> | null = null
  const counts = { batches: 0, sends: 0 }

  async function commit (batch: Waiting[]): Promise<void> {
    for (let attempt = 1; ; attempt++) {
      try {
        const outcomes = await storeSends(db, batch.map(w => w.send), Date.now())
        counts.batches++
        counts.sends += batch.length
        batch.forEach((w, i) => w.resolve(outcomes[i]))
        return
      } catch (err) {
        if (isRace(err) && attempt < RETRIES) continue // the retry finds the other node's row
        log.error('message batch failed', { size: batch.length, error: (err as Error).message })
        for (const w of batch) w.reject(err as Error)
        return
      }
    }
  }

  function drain (): void {
    if (running || queue.length === 0) return
    const batch = queue.slice(0, maxBatch)
    queue = queue.slice(batch.length)
    running = commit(batch).finally(() => {
      running = null
      drain()
    })
  }

  return {
    append (send) {
      return new Promise((resolve, reject) => {
        queue.push({ send, resolve, reject })
        drain()
      })
    },
    async flush () {
      while (running) await running
    },
    stats: () => ({ ...counts }),
  }
}
