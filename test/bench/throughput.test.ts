// `npm run bench -- throughput --phases rate --repeat N`: only the phase at --rate, N times, each a
// column of its own with its own verdict, so a comparison of two settings takes minutes and shows
// how far the p99 moves between runs of one setting. A tiny run on PGlite in this process: no
// timing assertions (the figures belong in BENCHMARKS.md), only that the phases asked for ran,
// balanced, and are reported.
import { readFileSync } from 'node:fs'
import t from 'tap'
import { Progress } from '../../bench/progress.ts'
import type { Arguments } from '../../bench/scenarios/common.ts'
import { throughput } from '../../bench/scenarios/throughput.ts'
import { machineTicksOf } from '../../bench/system.ts'
import { BROKER_NODE_FLAGS } from '../../bench/targets.ts'

const quiet = new Progress(process.stderr, true)
const tiny: Arguments = {
  targets: ['weakmq'], history: 'pglite', broker: 'inprocess', sessions: 'memory', seed: 1,
  devices: 4, seconds: 1, drain: 10, rate: 20, plainDeadLink: false,
}

t.test('--phases rate --repeat 2: two phases at the set rate, nothing else, each with its verdict', async (t) => {
  const report = await throughput.run({ args: { ...tiny, phases: ['rate'], repeat: 2 }, progress: quiet })
  const phases = (report.data as { phases: Array<{ phase: string, sent: number, delivered: number, lost: number, duplicates: number }> }).phases
  t.same(phases.map(p => p.phase), ['at 20/s (1 of 2)', 'at 20/s (2 of 2)'])
  for (const p of phases) {
    t.ok(p.sent > 0, `${p.phase}: sent ${p.sent}`)
    t.equal(p.delivered, p.sent, `${p.phase}: every message delivered`)
    t.equal(p.lost, 0)
    t.equal(p.duplicates, 0)
  }
  t.same(report.table.columns, ['', 'weakmq at 20/s (1 of 2)', 'weakmq at 20/s (2 of 2)'])
  const verdicts = report.notes.filter(n => n.startsWith('issue 3 target p99 < 50 ms at 20 msg/s'))
  t.equal(verdicts.length, 2, 'a verdict per repeat')
  t.match(verdicts[1], /\(2 of 2\): weakmq measured p99 /)
  t.notOk(report.notes.some(n => n.includes('sustained')), 'no sustained rate without the max phase')
  t.same((report.parameters as { phases: string[], repeat: number }).phases, ['rate'])
  const loop = (phases[0] as unknown as { loop: { broker: unknown, generator: { p99: number, max: number } } }).loop
  t.equal(loop.broker, null, 'the broker in this process: its loop is the generator\'s, not measured apart')
  t.ok(loop.generator.max > 0, 'the generator\'s event-loop delay is measured per phase')
  t.ok(report.table.rows.some(row => row[0] === 'event-loop delay p99 / max: generator'), 'and reported')
  const cpu = (phases[0] as unknown as { cpu: { machineBusy: number, stolen: number, others: number } }).cpu
  t.ok(cpu.stolen >= 0 && cpu.stolen <= cpu.machineBusy, `the host's share (steal) is measured per phase: ${cpu.stolen}% of ${cpu.machineBusy}% busy`)
  const machine = report.table.rows.find(row => row[0] === 'machine busy / outside the run / taken by the host')
  t.match(machine?.[1], /^[\d.]+% \/ [\d.]+% \/ [\d.]+%$/, 'and reported beside what other processes took')
})

t.test('the machine\'s CPU time: steal is the host\'s, and guest time is not counted twice', async (t) => {
  // user nice system idle iowait irq softirq steal guest guest_nice, as /proc/stat writes them
  const ticks = machineTicksOf('cpu  700 0 100 900 50 0 30 120 40 0')
  t.same(ticks, { busy: 700 + 100 + 30 + 120, total: 700 + 100 + 900 + 50 + 30 + 120, stolen: 120 },
    'steal counts as busy (the machine could not run), idle and iowait do not, guest is inside user')
  t.same(machineTicksOf('cpu  5 0 1 90 4 0 0'), { busy: 6, total: 100, stolen: 0 }, 'a kernel without a steal field: none stolen')
})

t.test('phases it cannot run are refused before anything starts', async (t) => {
  await t.rejects(throughput.run({ args: { ...tiny, phases: ['half', 'rate'] }, progress: quiet }), /half .* needs max/)
  await t.rejects(throughput.run({ args: { ...tiny, phases: ['fast'] }, progress: quiet }), /unknown phase "fast"; known: max, half, rate/)
  await t.rejects(throughput.run({ args: { ...tiny, phases: ['rate'], repeat: 1.5 }, progress: quiet }), /--repeat must be a whole number/)
})

t.test('the bench runs the broker with the Node flags npm start gives it', async (t) => {
  const start: string = JSON.parse(readFileSync(new URL('../../package.json', import.meta.url), 'utf8')).scripts.start
  t.ok(BROKER_NODE_FLAGS.length > 0)
  for (const flag of BROKER_NODE_FLAGS) t.ok(start.split(' ').includes(flag), `npm start ("${start}") has ${flag}`)
})
