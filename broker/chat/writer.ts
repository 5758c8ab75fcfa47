// Group commit (issue 3 §3): sends that arrive while a batch is being committed wait for the next
// batch, so under load many sends share one transaction, and an idle broker commits a lone send at
// once. A batch whose conversations and 1:1 pairs the writer has read before is planned from what
// it read, and written with no read before it (storage/messages.ts checks in the write that it
// still holds). Under load a batch is also taken no sooner than `intervalMs` after the one before it:
// every batch has a cost whatever its size (a statement or two, a commit), and at half the sustained
// rate batches a few milliseconds apart kept Postgres at 46% of a core (BENCHMARKS.md, measured
// before the send path's statements were prepared, which took most of that fixed cost away).
// The delay a send waits is bounded by one commit plus `intervalMs`; the batch size by
// `maxBatch`. Sends are stored in the order they were appended (issue 3 §2).
import type { Logger } from '../log.ts'
import type { Queryable } from '../storage/db.ts'
import {
  cachedFor, createPlanCache, forgetPlanned, isOutdatedPlan, planFromCache, planSends, writePlan,
  type PendingSend, type SendOutcome, type SendPlan,
} from '../storage/messages.ts'

export interface MessageWriter {
  append (send: PendingSend): Promise<SendOutcome>
  /** Resolves when everything appended so far is committed (or failed): for shutdown. */
  flush (): Promise<void>
  /**
   * Transactions committed and sends stored so far (the ratio is the batching), and the batches
   * planned with a read of storage (the others were planned from the writer's cache).
   */
  stats (): { batches: number, sends: number, planReads: number }
}

interface Waiting { send: PendingSend, resolve (outcome: SendOutcome): void, reject (err: Error): void }

const RETRIES = 3

/**
 * The plan missed something: the unique key met a repeat it did not read (another node stored the
 * same (sender, client_msg_id) meanwhile, or a plan from the cache, which reads no repeats), or the
 * members or privacy it relied on have changed.
 */
const isOutdated = (err: unknown) => (err as { code?: string }).code === '23505' || isOutdatedPlan(err)

export function createMessageWriter (db: Queryable, log: Logger, maxBatch: number, intervalMs = 0): MessageWriter {
  let queue: Waiting[] = []
  let running: Promise<void> | null = null
  const counts = { batches: 0, sends: 0, planReads: 0 }
  const cache = createPlanCache()
  let takenAt = -Infinity

  const sinceTaken = () => performance.now() - takenAt
  const take = () => {
    takenAt = performance.now()
    const batch = queue.slice(0, maxBatch)
    queue = queue.slice(batch.length)
    return batch
  }
  const sendsOf = (batch: Waiting[]) => batch.map(w => w.send)
  const plan = (batch: Waiting[], read = false): Promise<SendPlan> => {
    const sends = sendsOf(batch)
    const cached = read ? null : planFromCache(cache, sends)
    if (cached) return Promise.resolve(cached)
    counts.planReads++
    return planSends(db, sends, cache)
  }
  /** The next batch can be planned without a read: then it is taken once the write before it ends. */
  const nextPlannedFromCache = () => cachedFor(cache, sendsOf(queue.slice(0, maxBatch))) !== null

  /**
   * One batch after another, each written once the one before it is committed (deliveries leave
   * in commit order, so in seq order). A batch that needs reads has them go out while the batch
   * before it is being written: it then costs its write, not its reads and its write. Reads taken
   * before the previous commit can miss what it stored: a repeat of one of its sends fails the
   * write with a unique violation and is planned again, and a policy refusal is planned again to
   * be sure (the recipient's reply may be in the batch just written). A batch planned from the
   * cache is taken after the write before it, so it holds every send that came meanwhile; one
   * whose plan is outdated fails its write and is read and planned again. A batch due sooner than
   * `intervalMs` after the last is taken after the write too, once the interval is over.
   */
  async function run (): Promise<void> {
    let next: { batch: Waiting[], planned: Promise<SendPlan> } | null = null
    while (next || queue.length > 0) {
      if (!next && sinceTaken() < intervalMs) await new Promise(resolve => setTimeout(resolve, intervalMs - sinceTaken()))
      const batch = next?.batch ?? take()
      let planned = next?.planned ?? plan(batch)
      const early = next !== null
      next = null
      for (let attempt = 1; ; attempt++) {
        try {
          let ready = await planned
          if (early && attempt === 1 && ready.refusedByPolicy) ready = await plan(batch, true)
          const written = writePlan(db, ready, Date.now())
          if (!next && queue.length > 0 && sinceTaken() >= intervalMs && !nextPlannedFromCache()) {
            const following = take()
            next = { batch: following, planned: plan(following, true) }
            next.planned.catch(() => {}) // awaited in its turn
          }
          const outcomes = await written
          counts.batches++
          counts.sends += batch.length
          batch.forEach((w, i) => w.resolve(outcomes[i]))
          break
        } catch (err) {
          if (isOutdated(err) && attempt < RETRIES) { // a plan read now finds what changed
            forgetPlanned(cache, sendsOf(batch))
            planned = plan(batch, true)
            continue
          }
          log.error('message batch failed', { size: batch.length, error: (err as Error).message })
          for (const w of batch) w.reject(err as Error)
          break
        }
      }
    }
  }

  function drain (): void {
    if (running || queue.length === 0) return
    running = run().finally(() => {
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
