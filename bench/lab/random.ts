// A small seeded PRNG for the weak-network lab: the same seed gives the same run.
// mulberry32 (Tommy Ettinger, public domain): 32 bits of state, fast, good enough for
// scheduling stalls and jitter. Not for anything that needs cryptographic randomness.

export interface Random {
  /** Uniform in [0, 1). */
  next(): number
  /** Uniform in [lo, hi). */
  between(lo: number, hi: number): number
  /** True with probability p. */
  chance(p: number): boolean
  /** Exponentially distributed with the given mean (the gap between events of a Poisson process). */
  exponential(mean: number): number
  /** Normally distributed (Box-Muller). */
  gaussian(mean: number, deviation: number): number
}

export function createRandom(seed: number): Random {
  let state = seed >>> 0
  const next = (): number => {
    state = (state + 0x6d2b79f5) >>> 0
    let t = state
    t = Math.imul(t ^ (t >>> 15), t | 1)
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61)
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296
  }
  return {
    next,
    between: (lo, hi) => lo + (hi - lo) * next(),
    chance: (p) => p > 0 && next() < p,
    exponential: (mean) => -mean * Math.log(1 - next()),
    gaussian: (mean, deviation) => {
      const u = 1 - next() // (0, 1], so the logarithm is finite
      return mean + deviation * Math.sqrt(-2 * Math.log(u)) * Math.cos(2 * Math.PI * next())
    },
  }
}

/** Derives an independent seed for a sub-stream (one connection, one direction) from a base seed. */
export function deriveSeed(seed: number, ...parts: number[]): number {
  let h = (seed ^ 0x9e3779b9) >>> 0
  for (const part of parts) {
    h = Math.imul(h ^ (part >>> 0), 0x85ebca6b) >>> 0
    h = Math.imul(h ^ (h >>> 13), 0xc2b2ae35) >>> 0
    h = (h ^ (h >>> 16)) >>> 0
  }
  return h
}
