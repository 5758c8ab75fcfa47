// Hand-written SVG charts for the reports (no charting dependency): the latency distribution as
// a percentile curve (the way HdrHistogram plots it: the x axis stretches the tail, 90%, 99%,
// 99.9%...), and deliveries per second over the run.

export interface Chart {
  /** File name suffix: `<scenario>-<date>-<name>.svg`. */
  name: string
  svg: string
}

const WIDTH = 760
const HEIGHT = 420
const MARGIN = { left: 70, right: 40, top: 40, bottom: 60 }
const COLOURS = ['#1f77b4', '#d62728', '#2ca02c', '#ff7f0e', '#9467bd', '#8c564b', '#17becf', '#7f7f7f']

const escape = (text: string) => text.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;')

/** Round numbers for axis ticks: 1, 2, 5 x 10^k. */
function niceStep(span: number, ticks: number): number {
  const raw = span / Math.max(1, ticks)
  const power = 10 ** Math.floor(Math.log10(raw || 1))
  for (const m of [1, 2, 5, 10]) if (m * power >= raw) return m * power
  return 10 * power
}

function formatTick(value: number): string {
  if (value >= 10_000) return `${Math.round(value / 1000)}k`
  if (value >= 1000) return `${(value / 1000).toFixed(1).replace(/\.0$/, '')}k`
  if (value >= 10 || Number.isInteger(value)) return String(Math.round(value))
  return value.toPrecision(2)
}

interface Frame {
  x(value: number): number
  y(value: number): number
  parts: string[]
}

function frame(title: string, xLabel: string, yLabel: string, xTicks: Array<[number, string]>, yMax: number, xMin: number, xMax: number, logY: boolean, yMin: number): Frame {
  const plotW = WIDTH - MARGIN.left - MARGIN.right
  const plotH = HEIGHT - MARGIN.top - MARGIN.bottom
  const x = (v: number) => MARGIN.left + ((v - xMin) / Math.max(1e-9, xMax - xMin)) * plotW
  const yOf = logY
    ? (v: number) => MARGIN.top + plotH - ((Math.log10(Math.max(v, yMin)) - Math.log10(yMin)) / Math.max(1e-9, Math.log10(yMax) - Math.log10(yMin))) * plotH
    : (v: number) => MARGIN.top + plotH - (v / Math.max(1e-9, yMax)) * plotH
  const parts: string[] = [
    `<svg xmlns="http://www.w3.org/2000/svg" width="${WIDTH}" height="${HEIGHT}" viewBox="0 0 ${WIDTH} ${HEIGHT}" font-family="sans-serif" font-size="12">`,
    `<rect width="${WIDTH}" height="${HEIGHT}" fill="white"/>`,
    `<text x="${WIDTH / 2}" y="22" text-anchor="middle" font-size="15">${escape(title)}</text>`,
    `<text x="${MARGIN.left + plotW / 2}" y="${HEIGHT - 14}" text-anchor="middle">${escape(xLabel)}</text>`,
    `<text x="16" y="${MARGIN.top + plotH / 2}" text-anchor="middle" transform="rotate(-90 16 ${MARGIN.top + plotH / 2})">${escape(yLabel)}</text>`,
  ]
  const yTicks: number[] = []
  if (logY) {
    // 1, 2, 5 per decade when there are few decades, else powers of ten.
    const decades = Math.log10(yMax / yMin)
    const steps = decades <= 4 ? [1, 2, 5] : [1]
    for (let p = Math.floor(Math.log10(yMin)); 10 ** p <= yMax; p++) {
      for (const m of steps) if (m * 10 ** p >= yMin && m * 10 ** p <= yMax) yTicks.push(m * 10 ** p)
    }
  } else {
    const step = niceStep(yMax, 6)
    for (let v = 0; v <= yMax * 1.0001; v += step) yTicks.push(v)
  }
  for (const v of yTicks) {
    parts.push(`<line x1="${MARGIN.left}" x2="${MARGIN.left + plotW}" y1="${yOf(v).toFixed(1)}" y2="${yOf(v).toFixed(1)}" stroke="#e5e5e5"/>`)
    parts.push(`<text x="${MARGIN.left - 6}" y="${(yOf(v) + 4).toFixed(1)}" text-anchor="end">${formatTick(v)}</text>`)
  }
  for (const [v, label] of xTicks) {
    parts.push(`<line x1="${x(v).toFixed(1)}" x2="${x(v).toFixed(1)}" y1="${MARGIN.top}" y2="${MARGIN.top + plotH}" stroke="#e5e5e5"/>`)
    parts.push(`<text x="${x(v).toFixed(1)}" y="${MARGIN.top + plotH + 18}" text-anchor="middle">${escape(label)}</text>`)
  }
  parts.push(`<rect x="${MARGIN.left}" y="${MARGIN.top}" width="${plotW}" height="${plotH}" fill="none" stroke="#555"/>`)
  return { x, y: yOf, parts }
}

function legend(parts: string[], names: string[]): void {
  const width = 24 + 7 * Math.max(0, ...names.map((n) => n.length))
  parts.push(`<rect x="${MARGIN.left + 4}" y="${MARGIN.top + 2}" width="${width}" height="${names.length * 16 + 6}" fill="white" fill-opacity="0.85" stroke="#ccc"/>`)
  names.forEach((name, i) => {
    const y = MARGIN.top + 14 + i * 16
    parts.push(`<rect x="${MARGIN.left + 10}" y="${y - 9}" width="12" height="3" fill="${COLOURS[i % COLOURS.length]}"/>`)
    parts.push(`<text x="${MARGIN.left + 28}" y="${y - 4}">${escape(name)}</text>`)
  })
}

/** Percentile curves: x = -log10(1 - p), so 90%, 99%, 99.9% are evenly spaced. */
export function latencyChart(title: string, series: Array<{ name: string; points: Array<[number, number]> }>): string {
  const shown = series.filter((s) => s.points.length > 0)
  const toX = (p: number) => -Math.log10(Math.max(1e-5, 1 - p / 100))
  const xMax = 5
  const yMax = Math.max(1, ...shown.flatMap((s) => s.points.map(([, ms]) => ms))) * 1.1
  const yMin = Math.max(0.01, Math.min(...shown.flatMap((s) => s.points.map(([, ms]) => ms)).filter((v) => v > 0), yMax) / 1.5)
  const logY = yMax / yMin > 50
  const ticks: Array<[number, string]> = [[0, '0%'], [1, '90%'], [2, '99%'], [3, '99.9%'], [4, '99.99%'], [5, '99.999%']]
  const f = frame(title, 'percentile', `delivery latency (ms${logY ? ', log scale' : ''})`, ticks, yMax, 0, xMax, logY, yMin)
  shown.forEach((s, i) => {
    const d = s.points.map(([p, ms], k) => `${k ? 'L' : 'M'}${f.x(Math.min(xMax, toX(p))).toFixed(1)},${f.y(ms).toFixed(1)}`).join(' ')
    f.parts.push(`<path d="${d}" fill="none" stroke="${COLOURS[i % COLOURS.length]}" stroke-width="2"/>`)
  })
  legend(f.parts, shown.map((s) => s.name))
  f.parts.push('</svg>')
  return f.parts.join('\n')
}

/** Per-second values over time, one line per series. */
export function timeChart(title: string, yLabel: string, series: Array<{ name: string; perSecond: number[]; bucketSeconds: number }>): string {
  const xMax = Math.max(1, ...series.map((s) => s.perSecond.length * s.bucketSeconds))
  const yMax = Math.max(1, ...series.flatMap((s) => s.perSecond)) * 1.1
  const step = niceStep(xMax, 8)
  const ticks: Array<[number, string]> = []
  for (let v = 0; v <= xMax; v += step) ticks.push([v, `${formatTick(v)} s`])
  const f = frame(title, 'time since the phase started', yLabel, ticks, yMax, 0, xMax, false, 0)
  series.forEach((s, i) => {
    const d = s.perSecond.map((v, k) => `${k ? 'L' : 'M'}${f.x((k + 0.5) * s.bucketSeconds).toFixed(1)},${f.y(v).toFixed(1)}`).join(' ')
    if (d) f.parts.push(`<path d="${d}" fill="none" stroke="${COLOURS[i % COLOURS.length]}" stroke-width="1.5"/>`)
  })
  legend(f.parts, series.map((s) => s.name))
  f.parts.push('</svg>')
  return f.parts.join('\n')
}
