// The progress line on stderr: a text bar redrawn in place on a terminal; elsewhere (a log, CI)
// one plain line every few seconds, so the output stays readable.
import type { PhaseStatus } from './generator.ts'

const BAR = 30

export class Progress {
  private lastDraw = 0
  private drawn = false
  private readonly tty: boolean

  constructor(private readonly stream: NodeJS.WriteStream = process.stderr, private readonly quiet = false) {
    this.tty = Boolean(stream.isTTY)
  }

  /** fraction in [0, 1]; label says what is happening. */
  update(fraction: number, label: string): void {
    if (this.quiet) return
    const now = Date.now()
    if (now - this.lastDraw < (this.tty ? 200 : 5000)) return
    this.lastDraw = now
    const filled = Math.round(Math.min(1, Math.max(0, fraction)) * BAR)
    const line = `[${'#'.repeat(filled)}${'.'.repeat(BAR - filled)}] ${String(Math.floor(fraction * 100)).padStart(3)}% ${label}`
    if (this.tty) {
      const width = this.stream.columns || 120
      this.stream.write(`\r${line.slice(0, width - 1).padEnd(width - 1)}`)
      this.drawn = true
    } else {
      this.stream.write(line + '\n')
    }
  }

  /** A line that stays: ends the bar first. */
  log(text: string): void {
    if (this.quiet) return
    this.clear()
    this.stream.write(text + '\n')
  }

  clear(): void {
    if (this.tty && this.drawn) {
      this.stream.write(`\r${' '.repeat((this.stream.columns || 120) - 1)}\r`)
      this.drawn = false
    }
    this.lastDraw = 0
  }

  /** A generator phase's tick, drawn as one line. */
  phase(prefix: string, status: PhaseStatus): void {
    const { metrics: m } = status
    const total = status.seconds + status.drainSeconds
    const fraction = status.draining ? (status.seconds + Math.min(status.drainSeconds, status.elapsed - m.sendSeconds)) / total : status.elapsed / total
    const what = status.draining ? `draining, ${m.incomplete} open` : `${Math.round(status.elapsed)}/${status.seconds} s`
    this.update(fraction, `${prefix} ${status.name}: ${what}; sent ${m.sent} acked ${m.acknowledged} delivered ${m.delivered} dup ${m.duplicates}`)
  }
}
