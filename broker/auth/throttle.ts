// Repeated login failures from one login or one address are slowed down: after `freeFailures`
// failures, each further attempt waits twice as long as the one before (1 s, 2 s, 4 s, ...) up to
// `maxDelayMs`. A success clears the login's count. Entries are forgotten after a quiet 15 minutes.
const FORGET_AFTER_MS = 15 * 60_000
const MAX_KEYS = 100_000

interface Entry { failures: number, last: number }

export interface Throttle {
  /** How long to hold back an attempt from these keys (login, address). */
  delayFor (keys: string[], now?: number): number
  fail (keys: string[], now?: number): void
  succeed (key: string): void
}

export function createThrottle (freeFailures: number, maxDelayMs: number): Throttle {
  const entries = new Map<string, Entry>()
  const live = (key: string, now: number): Entry | undefined => {
    const entry = entries.get(key)
    if (entry && now - entry.last > FORGET_AFTER_MS) {
      entries.delete(key)
      return undefined
    }
    return entry
  }
  return {
    delayFor (keys, now = Date.now()) {
      let failures = 0
      for (const key of keys) failures = Math.max(failures, live(key, now)?.failures ?? 0)
      if (failures < freeFailures) return 0
      return Math.min(maxDelayMs, 1000 * 2 ** (failures - freeFailures))
    },
    fail (keys, now = Date.now()) {
      for (const key of keys) {
        const entry = live(key, now) ?? { failures: 0, last: now }
        entry.failures++
        entry.last = now
        entries.delete(key) // re-insert: the Map keeps insertion order, oldest first
        entries.set(key, entry)
      }
      while (entries.size > MAX_KEYS) entries.delete(entries.keys().next().value!)
    },
    succeed (key) {
      entries.delete(key)
    },
  }
}
