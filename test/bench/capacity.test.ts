// The capacity scenario (bench/scenarios/capacity.ts) at a tiny scale on the real services: idle
// sessions split over two generator processes (bench/capacity-worker.ts), on weakmq (a fresh
// database on the Postgres server) and on Mosquitto; and a broker whose open-file limit is lower
// than the sessions asked for, where only what fits is tried and the result says so. No timing
// assertions: the figures belong in BENCHMARKS.md.
import { execFileSync } from 'node:child_process'
import { readdirSync } from 'node:fs'
import t from 'tap'
import { Progress } from '../../bench/progress.ts'
import { capacityOn, type CapacityPlan } from '../../bench/scenarios/capacity.ts'
import { withTarget, type Arguments } from '../../bench/scenarios/common.ts'
import { requireServices, whyNoMosquitto } from '../harness.ts'

const args: Arguments = {
  targets: ['weakmq', 'mosquitto'], seed: 5, sessions: 'memory', broker: 'inprocess', history: 'postgres', plainDeadLink: false,
}
const plan: CapacityPlan = { requested: 20, addresses: 2, holdSeconds: 1, workers: 2, concurrency: 4 }
const quiet = new Progress(process.stderr, true)

const mosquittoMissing = await whyNoMosquitto(t)

for (const name of ['weakmq', 'mosquitto']) {
  t.test(`${name}: 20 idle sessions from 2 generator processes`, { skip: name === 'mosquitto' && mosquittoMissing }, async (t) => {
    if (!await requireServices(t)) return
    const result = await withTarget(name, args, (target) => capacityOn(target, plan, args, quiet))
    t.equal(result.workers, 2)
    t.equal(result.sessions, 20, 'the broker has room for 20')
    t.ok(result.room && result.room.limit > 20, 'the broker\'s open-file limit was read')
    t.equal(result.connected, 20)
    t.equal(result.failed, 0)
    t.equal(result.connackLatency.count, 20, 'one CONNACK latency per session, from both processes')
    t.equal(result.stillConnected, 20, 'all still connected after the hold')
    t.ok(result.cpu.byRole.generator !== undefined, 'the generator processes were measured')
  })
}

t.test('a broker with room for fewer sessions than asked: only those are tried, and the result says so', async (t) => {
  if (!await requireServices(t)) return
  try {
    execFileSync('prlimit', ['--version'], { stdio: 'ignore' })
  } catch {
    t.plan(0, 'skipped: needs prlimit (util-linux) to lower the broker process\'s open-file limit')
    return
  }
  // weakmq in its own process, whose limit is lowered to leave room for about 20 sessions.
  const result = await withTarget('weakmq', { ...args, broker: 'child' }, async (target) => {
    const [pid] = (await target.processes()).broker
    const limit = readdirSync(`/proc/${pid}/fd`).length + 100 + 20 // the scenario keeps 100 files spare for the broker itself
    execFileSync('prlimit', [`--pid=${pid}`, `--nofile=${limit}:${limit}`])
    return capacityOn(target, { ...plan, requested: 40 }, args, quiet)
  })
  t.equal(result.requested, 40)
  t.ok(result.sessions < 40 && result.sessions > 0, `tried ${result.sessions}, what the limit leaves room for`)
  t.equal(result.sessions, result.room?.sessions)
  t.equal(result.connected, result.sessions, 'and those all connected')
  t.equal(result.failed, 0)
})
