// The storm (bench/scenarios/storm.ts) at a tiny scale on the real services: 20 sessions written to
// by 4 senders in turn, reset by the devices themselves at once, kept away while texts queue for
// them, then back at once; on weakmq (a fresh database on the Postgres server) and on Mosquitto.
// The books must balance and every cut session must come back. No timing assertions: the figures
// belong in BENCHMARKS.md.
import t from 'tap'
import { Progress } from '../../bench/progress.ts'
import { withTarget, type Arguments } from '../../bench/scenarios/common.ts'
import { recipientOf, stormOn, stormPlan, type StormPlan } from '../../bench/scenarios/storm.ts'
import { requireServices, whyNoMosquitto } from '../harness.ts'

const args: Arguments = {
  targets: ['weakmq', 'mosquitto'], seed: 3, sessions: 'memory', broker: 'inprocess', history: 'postgres', plainDeadLink: false,
  cut: 20, senders: 4, offline: 2, interval: 1, drain: 30,
}

t.test('the plan: senders default to one per cut session up to 1,000; --devices N is N/2 pairs', async (t) => {
  const base: Arguments = { targets: [], seed: 1, sessions: 'memory', broker: 'child', plainDeadLink: false }
  t.match(stormPlan({ ...base, cut: 10_000 }), { cut: 10_000, senders: 1000 })
  t.match(stormPlan({ ...base }), { cut: 2000, senders: 1000 })
  t.match(stormPlan({ ...base, devices: 4000 }), { cut: 2000, senders: 2000 })
  t.throws(() => stormPlan({ ...base, cut: 5, senders: 6 }), /no larger than --cut/)
  t.throws(() => stormPlan({ ...base, cut: 5, senders: 2 }), /must be even/)
})

t.test('each sender writes to its cut devices in turn: its first messages reach every one of them once', async (t) => {
  const plan: StormPlan = { cut: 7, senders: 3, cutAt: 10, offline: 20, seconds: 40, interval: 5, drainSeconds: 60 }
  const to = recipientOf(plan)
  const shares = [0, 1, 2].map((s) => Math.ceil((plan.cut - s) / plan.senders))
  t.same(shares, [3, 2, 2])
  const reached = [0, 1, 2].flatMap((s) => Array.from({ length: shares[s] }, (_, k) => to(s, k + 1)))
  t.same(reached.sort((a, b) => a - b), [3, 4, 5, 6, 7, 8, 9], 'the cut devices (3..9), each once')
  t.equal(to(0, 4), to(0, 1), 'then round again')
})

const mosquittoMissing = await whyNoMosquitto(t)

for (const name of ['weakmq', 'mosquitto']) {
  t.test(`${name}: 20 sessions cut at once and back, every text delivered once`, { skip: name === 'mosquitto' && mosquittoMissing }, async (t) => {
    if (!await requireServices(t)) return
    // Short: cut at 2 s, away 2 s, 6 s of sending (20 texts/s, one a second to each cut device).
    const plan = { ...stormPlan(args), cutAt: 2, seconds: 6 }
    const { phase, back } = await withTarget(name, args, (target) => stormOn(target, plan, args, new Progress(process.stderr, true)))
    t.equal(back.sessions, 20)
    t.equal(back.back, 20, 'every cut session came back')
    t.not(back.all, null, 'all back before the end of the phase')
    t.equal(phase.wire.deadLinks, 0, 'no device gave up its link for an unanswered request')
    t.equal(phase.wire.connects, 20, 'the cut devices connected again, once each, and no other device did')
    t.ok(phase.catchUp.count > 0, 'texts queued while away were caught up')
    t.equal(phase.unfinishedCatchUps, 0)
    t.ok(phase.sent > 0)
    t.equal(phase.acknowledged, phase.sent)
    t.equal(phase.delivered, phase.sent, 'one recipient per text')
    t.equal(phase.lost, 0)
    t.equal(phase.duplicates, 0)
    t.equal(phase.orderViolations, 0)
    t.equal(phase.stray, 0)
  })
}
