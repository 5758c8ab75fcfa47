// Repeated login failures from one login or one address are slowed down: after `freeFailures`
// failures of a login, each further attempt waits twice as long as the one before (1 s, 2 s, 4 s,
// ...) up to `maxDelayMs`. An address gets ten times as many free failures: mobile carriers put
// many subscribers behind one NAT address, and one user's typos must not slow the others down.
// A success clears the login's count; counts are forgotten after a quiet 15 minutes. The counts
// are shared by every node (SharedState), so moving to another node does not reset them.
import type { SharedState } from '../shared-state.ts'

const ADDRESS_FACTOR = 10

export interface Attempt { login: string, address: string }

export interface Throttle {
  /** How long to hold back this attempt. */
  delayFor (attempt: Attempt): Promise<number>
  fail (attempt: Attempt): Promise<void>
  succeed (attempt: Attempt): Promise<void>
}

export function createThrottle (state: SharedState, freeFailures: number, maxDelayMs: number): Throttle {
  const loginKey = (attempt: Attempt) => `login:${attempt.login}`
  const addressKey = (attempt: Attempt) => `address:${attempt.address}`
  const over = (failures: number, free: number) => failures < free ? 0 : Math.min(maxDelayMs, 1000 * 2 ** (failures - free))
  return {
    async delayFor (attempt) {
      const [login, address] = await Promise.all([state.failures(loginKey(attempt)), state.failures(addressKey(attempt))])
      return Math.max(over(login, freeFailures), over(address, freeFailures * ADDRESS_FACTOR))
    },
    async fail (attempt) {
      await Promise.all([state.fail(loginKey(attempt)), state.fail(addressKey(attempt))])
    },
    async succeed (attempt) {
      await state.clearFailures(loginKey(attempt))
    },
  }
}
