// Reconnect delays: exponential with "equal jitter" (a random point in the upper half of the
// doubled delay), as Mars and most mobile stacks do, so that thousands of phones that lost the
// same cell or broker do not come back in the same second, while one phone retries fast at first.

export interface BackoffOptions {
  /** The first delay's upper bound. */
  minMs: number
  /** The cap of every delay. */
  maxMs: number
}

export interface Backoff {
  /** The delay before the next attempt; each call doubles the bound up to the cap. */
  next (): number
  /** After a connection that worked: the next failure retries fast again. */
  reset (): void
  readonly attempts: number
}

export function createBackoff ({ minMs, maxMs }: BackoffOptions, random: () => number = Math.random): Backoff {
  let attempts = 0
  return {
    next () {
      const bound = Math.min(maxMs, minMs * 2 ** Math.min(attempts, 30))
      attempts++
      return Math.round(bound / 2 + random() * bound / 2)
    },
    reset () { attempts = 0 },
    get attempts () { return attempts },
  }
}
