// Where the CPU and memory of a run go, read from /proc (Linux): per process (the generator, the
// broker, Postgres, Mosquitto) and for the whole machine, so a report can say what limited it and
// whether something else was running at the same time.
import { readFileSync, readdirSync } from 'node:fs'
import os from 'node:os'
import { performance } from 'node:perf_hooks'

const CLOCK_TICKS = 100 // USER_HZ on Linux

/** CPU seconds (user + system) a process has used, or null when it is gone. */
export function cpuSeconds(pid: number): number | null {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8')
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ')
    return (Number(fields[11]) + Number(fields[12])) / CLOCK_TICKS
  } catch {
    return null
  }
}

/** The soft open-file limit of a process (Linux), or null when it cannot be read. */
export function openFileLimit(pid: number | 'self'): number | null {
  try {
    const match = /^Max open files\s+(\d+|unlimited)/m.exec(readFileSync(`/proc/${pid}/limits`, 'utf8'))
    return match ? (match[1] === 'unlimited' ? Infinity : Number(match[1])) : null
  } catch {
    return null
  }
}

/** Files a process has open, or null when its fd folder is not readable (another user's). */
export function openFiles(pid: number): number | null {
  try {
    return readdirSync(`/proc/${pid}/fd`).length
  } catch {
    return null
  }
}

/** Resident memory of a process in bytes, or null when it is gone. */
export function rssBytes(pid: number): number | null {
  try {
    const match = /VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'))
    return match ? Number(match[1]) * 1024 : null
  } catch {
    return null
  }
}

/** Processes whose command line (arguments joined by spaces) passes `test`. */
export function processesWhere(test: (cmdline: string) => boolean): number[] {
  const pids: number[] = []
  for (const entry of readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue
    try {
      if (test(readFileSync(`/proc/${entry}/cmdline`, 'utf8').replaceAll('\0', ' '))) pids.push(Number(entry))
    } catch {
      // gone meanwhile
    }
  }
  return pids
}

/**
 * The machine's CPU time since boot, in ticks: busy, all, and stolen (time this virtual machine
 * was ready to run but its host ran something else; nothing inside the machine used it). The
 * fields of /proc/stat's first line: user nice system idle iowait irq softirq steal, then guest
 * time, which user and nice already hold.
 */
export function machineTicksOf(line: string): { busy: number; total: number; stolen: number } {
  const ticks = line.trim().split(/\s+/).slice(1, 9).map(Number)
  const total = ticks.reduce((a, b) => a + b, 0)
  const idle = ticks[3] + (ticks[4] ?? 0)
  return { busy: total - idle, total, stolen: ticks[7] ?? 0 }
}

const machineTicks = () => machineTicksOf(readFileSync('/proc/stat', 'utf8').split('\n')[0])

export interface CpuShare {
  /** Percent of one core, per role, over the measured span. */
  byRole: Record<string, number>
  /**
   * Percent of the whole machine (all cores) busy; the part of it the host took (steal); and the
   * rest that no measured role explains (other processes, interrupts).
   */
  machineBusy: number
  stolen: number
  others: number
  cores: number
  loadAverage: number[]
}

function secondsSinceBoot(): number {
  return Number(readFileSync('/proc/uptime', 'utf8').split(' ')[0])
}

/** When a process started, in seconds since boot; null when it is gone. */
function startedAt(pid: number): number | null {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8')
    return Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[19]) / CLOCK_TICKS
  } catch {
    return null
  }
}

const REFRESH_MS = 500

/**
 * Measures CPU per role from now until stop(). `roles` names the processes of each role; it is
 * asked again every half second, because some come and go during a run (a connection pool opens
 * and closes Postgres backends): a process born during the span counts from its birth, one
 * already running from when it was first seen.
 */
export function startCpuMeter(roles: () => Promise<Record<string, number[]>>): { stop(): Promise<CpuShare> } {
  const started = performance.now()
  const bootSeconds = secondsSinceBoot()
  const machine = machineTicks()
  const seen = new Map<number, { role: string; base: number }>()
  const look = async () => {
    for (const [role, pids] of Object.entries(await roles())) {
      for (const pid of pids) {
        if (seen.has(pid)) continue
        const born = startedAt(pid)
        seen.set(pid, { role, base: born !== null && born >= bootSeconds ? 0 : cpuSeconds(pid) ?? 0 })
      }
    }
  }
  let looking = look().catch(() => {})
  const timer = setInterval(() => { looking = looking.then(look).catch(() => {}) }, REFRESH_MS)
  return {
    async stop() {
      clearInterval(timer)
      await looking
      await look().catch(() => {})
      const seconds = (performance.now() - started) / 1000
      const used: Record<string, number> = {}
      for (const [pid, { role, base }] of seen) used[role] = (used[role] ?? 0) + Math.max(0, (cpuSeconds(pid) ?? base) - base)
      const byRole: Record<string, number> = {}
      for (const role of new Set([...seen.values()].map((entry) => entry.role))) byRole[role] = Math.round(((used[role] ?? 0) / seconds) * 1000) / 10
      const now = machineTicks()
      const cores = os.cpus().length
      const share = (ticks: number) => Math.round((ticks / Math.max(1, now.total - machine.total)) * 1000) / 10
      const machineBusy = share(now.busy - machine.busy)
      const stolen = share(now.stolen - machine.stolen)
      const ours = Object.values(byRole).reduce((a, b) => a + b, 0) / cores
      return { byRole, machineBusy, stolen, others: Math.max(0, Math.round((machineBusy - stolen - ours) * 10) / 10), cores, loadAverage: os.loadavg() }
    },
  }
}

/** How late an event loop ran over some time, in ms: its 99th percentile and its worst. */
export interface LoopDelay {
  p99: number
  max: number
}

/** From a monitorEventLoopDelay histogram (which counts nanoseconds). */
export function loopDelayOf(histogram: { percentile(p: number): number, max: number, count: number }): LoopDelay {
  const ms = (ns: number) => Math.round(ns / 1e4) / 100
  return histogram.count === 0 ? { p99: 0, max: 0 } : { p99: ms(histogram.percentile(99)), max: ms(histogram.max) }
}
