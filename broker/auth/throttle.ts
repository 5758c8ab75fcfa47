// Repeated login failures from one login or one address are slowed down: after `freeFailures`
// failures of a login, each further attempt waits twice as long as the one before (1 s, 2 s, 4 s,
// ...) up to `maxDelayMs`. An address gets ten times as many free failures: mobile carriers put
// many subscribers behind one NAT address, and one user's typos must not slow the others down.
// A success clears the login's count. Entries are forgotten after a quiet 15 minutes.
const FORGET_AFTER_MS = 15 * 60_000
const MAX_KEYS = 100_000

interface Entry { failures: number, last: number }

const ADDRESS_FACTOR = 10

export interface Attempt { login: string, address: string }

export interface Throttle {
  /** How long to hold back this attempt. */
  delayFor (attempt: Attempt, now?: number): number
  fail (attempt: Attempt, now?: number): void
  succeed (attempt: Attempt): void
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
  const keys = (attempt: Attempt) => [`login:${attempt.login}`, `address:${attempt.address}`]
  const over = (failures: number, free: number) => failures < free ? 0 : Math.min(maxDelayMs, 1000 * 2 ** (failures - free))
  return {
    delayFor (attempt, now = Date.now()) {
      const [login, address] = keys(attempt)
      return Math.max(over(live(login, now)?.failures ?? 0, freeFailures),
        over(live(address, now)?.failures ?? 0, freeFailures * ADDRESS_FACTOR))
    },
    fail (attempt, now = Date.now()) {
      for (const key of keys(attempt)) {
        const entry = live(key, now) ?? { failures: 0, last: now }
        entry.failures++
        entry.last = now
        entries.delete(key) // re-insert: the Map keeps insertion order, oldest first
        entries.set(key, entry)
      }
      while (entries.size > MAX_KEYS) entries.delete(entries.keys().next().value!)
    },
    succeed (attempt) {
      entries.delete(keys(attempt)[0])
    },
  }
}
