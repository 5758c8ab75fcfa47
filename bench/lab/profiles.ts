// Network profiles the weak-network lab reproduces (DESIGN §Weak networks: profiles the lab reproduces).
//
// Modelling choices, because the lab shapes a TCP stream in user space, not packets in the kernel:
// - "down" is broker to device (the proxy's target to its client), "up" is device to broker.
// - Bandwidth is a serialisation time per chunk: N bytes occupy the direction for N*8/bps seconds.
// - Delay is the one-way propagation delay; jitter adds a uniform extra in [0, jitterMs) per chunk
//   without ever reordering bytes (a chunk is never delivered before the one written ahead of it).
// - Loss: TCP retransmits, so an application never sees a lost packet, only a late one, and every
//   byte behind it waits too (head-of-line blocking). The lab therefore models loss as a stall of
//   retransmission length: each chunk (at most 1 KB, about one TCP segment) is, with probability
//   `loss`, held an extra retransmission timeout of max(1 s, 3 x RTT) (see retransmissionMs).
// - Flaky variants (flaky()) add, per connection, at seeded random times (a Poisson process each):
//   stalls (a dead cell: nothing moves either way for a while, then everything queued arrives),
//   resets (both ends get RST) and silent drops (a NAT that forgets the connection: no FIN, no RST,
//   nothing is forwarded any more either way). A reset or a drop ends that connection's schedule.

export interface Direction {
  /** Link rate in bits per second; Infinity means unshaped. */
  bitsPerSecond: number
  /** One-way delay in milliseconds. */
  delayMs: number
  /** Extra delay per chunk, uniform in [0, jitterMs). */
  jitterMs: number
  /** Probability that a chunk (about one TCP segment) needs a retransmission. */
  loss: number
}

export interface FlakyOptions {
  /** Mean gap between stalls, from the end of one to the start of the next; Infinity: never. */
  stallEveryMs: number
  /** A stall lasts a uniform time in [stallMinMs, stallMaxMs). */
  stallMinMs: number
  stallMaxMs: number
  /** Mean time from connect to a reset; Infinity: never. */
  resetEveryMs: number
  /** Mean time from connect to a silent drop; Infinity: never. */
  dropEveryMs: number
}

export interface Profile {
  name: string
  down: Direction
  up: Direction
  /** Present on flaky variants only. */
  flaky?: FlakyOptions
}

const unshaped: Direction = { bitsPerSecond: Infinity, delayMs: 0, jitterMs: 0, loss: 0 }

function direction(kbitPerSecond: number, delayMs: number, loss = 0, jitterMs = 0): Direction {
  return { bitsPerSecond: kbitPerSecond * 1000, delayMs, jitterMs, loss }
}

// Values from the DESIGN table; sources: Apple's Network Link Conditioner (ATC) presets and the
// Android emulator's `gprs` speed and delay.
export const profiles = {
  '2g-rural': { name: '2g-rural', down: direction(20, 650, 0.02), up: direction(18, 650, 0.02) },
  '2g-urban': { name: '2g-urban', down: direction(35, 650), up: direction(32, 650) },
  'edge-lossy': { name: 'edge-lossy', down: direction(240, 400, 0.01), up: direction(200, 440, 0.01) },
  '3g-average': { name: '3g-average', down: direction(780, 100), up: direction(330, 100) },
  // The emulator's gprs delay is a range, 150-550 ms: a base of 150 ms plus up to 400 ms of jitter.
  gprs: { name: 'gprs', down: direction(80, 150, 0, 400), up: direction(40, 150, 0, 400) },
  loopback: { name: 'loopback', down: unshaped, up: unshaped },
} satisfies Record<string, Profile>

export type ProfileName = keyof typeof profiles

// A dead cell every minute or so for a few seconds; a reset or a NAT drop every few minutes.
// Frequent enough that a bench run of ten minutes meets each of them on most device links.
export const defaultFlakyOptions: FlakyOptions = {
  stallEveryMs: 45_000,
  stallMinMs: 2_000,
  stallMaxMs: 15_000,
  resetEveryMs: 180_000,
  dropEveryMs: 300_000,
}

/** The profile with periodic stalls, resets and silent drops added, named `flaky-<name>`. */
export function flaky(profile: Profile, options: Partial<FlakyOptions> = {}): Profile {
  return { ...profile, name: `flaky-${profile.name}`, flaky: { ...defaultFlakyOptions, ...options } }
}

/** Round-trip time of the profile, counting half the jitter of each direction. */
export function roundTripMs(profile: Profile): number {
  const { up, down } = profile
  return up.delayMs + up.jitterMs / 2 + down.delayMs + down.jitterMs / 2
}

/** How long a "lost" chunk is held: a TCP retransmission timeout, max(1 s, 3 x RTT). */
export function retransmissionMs(profile: Profile): number {
  return Math.max(1000, 3 * roundTripMs(profile))
}

export const profileNames: string[] = Object.keys(profiles).flatMap((name) => [name, `flaky-${name}`])

/** Looks a profile up by its command-line name: `2g-rural`, ..., `loopback`, or `flaky-<name>`. */
export function profileByName(name: string): Profile {
  const base = name.startsWith('flaky-') ? name.slice('flaky-'.length) : name
  if (!Object.hasOwn(profiles, base)) {
    throw new Error(`unknown network profile "${name}"; known: ${profileNames.join(', ')}`)
  }
  const profile: Profile = profiles[base as ProfileName]
  return base === name ? profile : flaky(profile)
}
