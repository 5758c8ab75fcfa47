// `npm run bench -- <scenario> [options]`: runs one benchmark scenario, draws a progress bar on
// stderr, prints a summary table on stdout and writes bench/results/<scenario>-<date>.json with
// SVG charts beside it. Every run is bounded: phases have a set length and a bounded drain, and a
// watchdog ends a run that overstays --limit.
import { execFileSync } from 'node:child_process'
import { readFileSync, writeFileSync } from 'node:fs'
import os from 'node:os'
import { parseArgs } from 'node:util'
import pg from 'pg'
import { Redis } from 'ioredis'
import { Progress } from './progress.ts'
import { deliveriesChartOf, formatTable, latencyChartOf, writeReport, type PhaseSummary, type ScenarioReport } from './report.ts'
import type { Arguments, Scenario } from './scenarios/common.ts'
import { bytes } from './scenarios/bytes.ts'
import { capacity } from './scenarios/capacity.ts'
import { group } from './scenarios/group.ts'
import { storage } from './scenarios/storage.ts'
import { storm } from './scenarios/storm.ts'
import { throughput } from './scenarios/throughput.ts'
import { edge, twoG } from './scenarios/weak-network.ts'
import { BENCH_DATABASE_URL, BENCH_REDIS_URL } from './targets.ts'

export const scenarios: Scenario[] = [throughput, group, bytes, edge, twoG, storm, capacity, storage]

const usage = `usage: npm run bench -- <scenario> [options]
       npm run bench -- redraw <results.json>    (draws the charts of a past run again)

scenarios:
${scenarios.map((s) => `  ${s.name.padEnd(11)} ${s.summary}`).join('\n')}

options (each scenario has its own defaults, shown in its table title and JSON):
  --targets a,b        weakmq, mosquitto (default: both)
  --devices N          simulated devices (capacity: sessions; group: members)
  --seconds S          length of the send phase (capacity: idle hold; storage: each probe)
  --drain S            longest wait, after sending, for what is still on its way
  --window N           closed loop: messages each sender keeps in flight
  --rate N             throughput: a latency phase at this rate as well as at half the sustained rate
  --phases a,b         throughput: max, half, rate (default all three; half needs max; without
                       max, 5 s at --rate warm the broker up first, not measured)
  --repeat N           throughput: run the phase at --rate N times, one after another (default 1)
                       (default 5000, half of issue 3's 10,000 msg/s)
  --interval S         weak networks: mean seconds between two texts of one device (storm: see --cut)
  --profile NAME       network profile: ${['2g-rural', '2g-urban', 'edge-lossy', '3g-average', 'gprs', 'loopback'].join(', ')}, or flaky-<name>
  --stall-every S --reset-every S --drop-every S   flaky profiles: mean seconds between events
  --group-size N --senders N                       group scenario
  --offline S          storm: how long the cut-off sessions stay away
  --cut N              storm: sessions reset at once (default 2000); --senders N: devices writing to them
                       in turn (default min(cut, 1000)); --interval S: mean seconds between texts to one
                       cut device; --devices N: N/2 pairs (--cut N/2 --senders N/2)
  --messages N         bytes: texts measured one at a time
  --addresses N        capacity: loopback source addresses 127.0.0.2.. (default 8)
  --workers N          capacity: generator processes the sessions are split over (default: enough
                       that each holds at most 10,000); sessions beyond what the broker's open-file
                       limit allows are not tried, and the table says so
  --ack-timeout MS     a request unanswered this long ends the connection (0: keepalive only)
  --probe S            weakmq devices probe a link silent this long (PINGREQ; 0: never; default 10 on shaped links)
  --plain-dead-link    give the plain MQTT devices the same rule (PUBACK timeout)
  --keepalive S        MQTT keepalive of the devices
  --concurrency N      connects in flight at once
  --client protocol|sdk     weakmq devices: the generator's protocol client (default) or the SDK in clients/ts
  --sessions memory|redis   weakmq sessions (default memory; redis with --nodes above 1)
  --nodes N            weakmq nodes sharing one database and Redis prefix; device i on node i % N, so
                       the two devices of a pair are on different nodes (default 1; above 1: redis sessions)
  --broker child|inprocess  weakmq in its own process (default) or in the generator's
  --seed N             seed of the links and of the traffic (default 1)
  --limit S            end the run after this long whatever happens (default 900)
  --quiet              no progress line
`

function parse(argv: string[]): { scenario: Scenario; args: Arguments; limitSeconds: number; quiet: boolean } {
  const { values, positionals } = parseArgs({
    args: argv,
    allowPositionals: true,
    options: {
      targets: { type: 'string' }, devices: { type: 'string' }, seconds: { type: 'string' }, drain: { type: 'string' },
      window: { type: 'string' }, interval: { type: 'string' }, profile: { type: 'string' }, rate: { type: 'string' },
      phases: { type: 'string' }, repeat: { type: 'string' },
      'stall-every': { type: 'string' }, 'reset-every': { type: 'string' }, 'drop-every': { type: 'string' },
      'group-size': { type: 'string' }, senders: { type: 'string' }, offline: { type: 'string' }, messages: { type: 'string' },
      addresses: { type: 'string' }, 'ack-timeout': { type: 'string' }, probe: { type: 'string' }, 'plain-dead-link': { type: 'boolean' },
      cut: { type: 'string' }, workers: { type: 'string' },
      keepalive: { type: 'string' }, concurrency: { type: 'string' }, sessions: { type: 'string' }, nodes: { type: 'string' }, broker: { type: 'string' },
      seed: { type: 'string' }, limit: { type: 'string' }, client: { type: 'string' }, quiet: { type: 'boolean' }, help: { type: 'boolean' },
    },
  })
  if (values.help || positionals.length !== 1) {
    process.stdout.write(usage)
    process.exit(values.help ? 0 : 2)
  }
  const scenario = scenarios.find((s) => s.name === positionals[0])
  if (!scenario) throw new Error(`unknown scenario "${positionals[0]}"; known: ${scenarios.map((s) => s.name).join(', ')}`)
  const number = (name: string, value: string | undefined, positive = true): number | undefined => {
    if (value === undefined) return undefined
    const n = Number(value)
    if (!Number.isFinite(n) || n < 0 || (positive && n === 0)) throw new Error(`--${name} must be a ${positive ? 'positive ' : ''}number, not "${value}"`)
    return n
  }
  const nodes = number('nodes', values.nodes) ?? 1
  if (!Number.isInteger(nodes)) throw new Error(`--nodes must be a whole number, not "${values.nodes}"`)
  // Several nodes share sessions and fan-out through Redis: --nodes 2 means Redis sessions.
  const sessions = values.sessions ?? (nodes > 1 ? 'redis' : 'memory')
  if (sessions !== 'memory' && sessions !== 'redis') throw new Error('--sessions is memory or redis')
  if (nodes > 1 && sessions !== 'redis') throw new Error('--nodes above 1 needs --sessions redis: the nodes share sessions through Redis')
  const client = values.client ?? 'protocol'
  if (client !== 'protocol' && client !== 'sdk') throw new Error('--client is protocol or sdk')
  const broker = values.broker ?? 'child'
  if (broker !== 'child' && broker !== 'inprocess') throw new Error('--broker is child or inprocess')
  return {
    scenario,
    limitSeconds: number('limit', values.limit) ?? 900,
    quiet: Boolean(values.quiet),
    args: {
      targets: (values.targets ?? 'weakmq,mosquitto').split(',').map((t) => t.trim()).filter(Boolean),
      devices: number('devices', values.devices),
      seconds: number('seconds', values.seconds),
      drain: number('drain', values.drain, false),
      window: number('window', values.window),
      rate: number('rate', values.rate),
      phases: values.phases?.split(',').map((p) => p.trim()).filter(Boolean),
      repeat: number('repeat', values.repeat),
      interval: number('interval', values.interval),
      profile: values.profile,
      stallEvery: number('stall-every', values['stall-every']),
      resetEvery: number('reset-every', values['reset-every']),
      dropEvery: number('drop-every', values['drop-every']),
      groupSize: number('group-size', values['group-size']),
      senders: number('senders', values.senders),
      offline: number('offline', values.offline),
      messages: number('messages', values.messages),
      addresses: number('addresses', values.addresses),
      cut: number('cut', values.cut),
      workers: number('workers', values.workers),
      ackTimeout: number('ack-timeout', values['ack-timeout'], false),
      probe: number('probe', values.probe, false),
      plainDeadLink: Boolean(values['plain-dead-link']),
      keepalive: number('keepalive', values.keepalive),
      concurrency: number('concurrency', values.concurrency),
      sessions,
      nodes,
      broker,
      client,
      seed: number('seed', values.seed, false) ?? 1,
    },
  }
}

function versionOf(command: string, args: string[], pattern: RegExp): string {
  try {
    const out = execFileSync(command, args, { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] })
    return pattern.exec(out)?.[1] ?? 'unknown'
  } catch (err) {
    const out = String((err as { stdout?: string }).stdout ?? '')
    return pattern.exec(out)?.[1] ?? 'unknown'
  }
}

async function machine(): Promise<Record<string, unknown>> {
  const info: Record<string, unknown> = {
    cores: os.cpus().length,
    cpu: os.cpus()[0]?.model ?? 'unknown',
    memoryGiB: Math.round(os.totalmem() / 2 ** 30),
    kernel: os.release(),
    node: process.version,
    mosquitto: versionOf('mosquitto', ['-h'], /mosquitto version (\S+)/),
    loadAverageAtStart: os.loadavg().map((v) => Math.round(v * 100) / 100),
    // What was measured: the commit and how many files differed from it (others work in this tree).
    gitHead: versionOf('git', ['rev-parse', '--short', 'HEAD'], /^(\S+)/),
    gitChangedFiles: versionOf('git', ['status', '--porcelain', '--untracked-files=no'], /^([\s\S]*)$/).split('\n').filter(Boolean).length,
  }
  try {
    const client = new pg.Client({ connectionString: BENCH_DATABASE_URL })
    await client.connect()
    info.postgres = (await client.query<{ server_version: string }>('SHOW server_version')).rows[0]?.server_version ?? null
    info.postgresSettings = Object.fromEntries((await client.query<{ name: string; setting: string }>(
      "SELECT name, setting FROM pg_settings WHERE name IN ('fsync', 'synchronous_commit', 'shared_buffers', 'max_connections')")).rows.map((r) => [r.name, r.setting]))
    await client.end()
  } catch (err) {
    info.postgres = `unreachable (${(err as Error).message})`
  }
  try {
    const redis = new Redis(BENCH_REDIS_URL, { lazyConnect: true, maxRetriesPerRequest: 0 })
    await redis.connect()
    info.redis = /redis_version:(\S+)/.exec(await redis.info('server'))?.[1] ?? 'unknown'
    redis.disconnect()
  } catch (err) {
    info.redis = `unreachable (${(err as Error).message})`
  }
  return info
}

/** Draws the charts of a results file again (after a change to the charts). */
function redraw(file: string): void {
  const report = JSON.parse(readFileSync(file, 'utf8')) as Omit<ScenarioReport, 'charts'> & { data: { phases?: PhaseSummary[] } }
  const phases = report.data.phases ?? []
  const base = file.replace(/\.json$/, '')
  if (phases.length === 0) return void process.stdout.write(`${file}: no phases, no charts\n`)
  for (const chart of [latencyChartOf(`${report.scenario}: delivery latency`, phases), deliveriesChartOf(`${report.scenario}: deliveries per second`, phases)]) {
    writeFileSync(`${base}-${chart.name}.svg`, chart.svg + '\n')
    process.stdout.write(`written: ${base}-${chart.name}.svg\n`)
  }
}

async function main(): Promise<void> {
  if (process.argv[2] === 'redraw') {
    for (const file of process.argv.slice(3)) redraw(file)
    return
  }
  const { scenario, args, limitSeconds, quiet } = parse(process.argv.slice(2))
  const progress = new Progress(process.stderr, quiet)
  const watchdog = setTimeout(() => {
    progress.log(`bench: ${scenario.name} still running after ${limitSeconds} s (--limit): stopping; a bench_* database or wmqbench:* Redis keys may be left behind`)
    process.exit(3)
  }, limitSeconds * 1000)
  watchdog.unref()
  const startedAt = new Date().toISOString()
  const machineInfo = await machine()
  progress.log(`bench ${scenario.name}: ${scenario.summary}`)
  const outcome = await scenario.run({ args, progress })
  progress.clear()
  const report: ScenarioReport = {
    ...outcome,
    startedAt,
    finishedAt: new Date().toISOString(),
    command: `npm run bench -- ${process.argv.slice(2).join(' ')}`,
    machine: { ...machineInfo, loadAverageAtEnd: os.loadavg().map((v) => Math.round(v * 100) / 100) },
  }
  const files = writeReport(report)
  process.stdout.write(`\n${report.title}\n${startedAt}, ${machineInfo.cores} cores, Node ${process.version}\n\n${formatTable(report.table)}\n\n`)
  for (const note of report.notes) if (note) process.stdout.write(`- ${note}\n`)
  process.stdout.write(`\nwritten: ${files.join(', ')}\n`)
}

main().then(() => process.exit(0), (err: Error) => {
  process.stderr.write(`\nbench: ${err.stack ?? err.message}\n`)
  process.exit(1)
})
