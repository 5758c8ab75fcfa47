// `npm start`: the broker with the configuration from flags and the environment (README §Settings).
// Expected failures (a taken port, an unreachable DATABASE_URL, a bad setting) are one line on
// stderr and exit code 1. SIGINT and SIGTERM shut down gracefully and exit 0.
import { resolve } from 'node:path'
import { ConfigError, StartError, loadConfig } from './config.ts'
import { ListenError, WS_PATH } from './listeners.ts'
import { createLogger } from './log.ts'
import { inMemory, startBroker } from './server.ts'

async function main (): Promise<void> {
  const config = loadConfig(process.argv.slice(2))
  const log = createLogger(config.logLevel)
  const broker = await startBroker(config, log)
  const where = Object.entries(broker.ports)
    .map(([name, port]) => `${name} ${port}${name.startsWith('W') ? WS_PATH : ''}`).join(', ')
  log.info(`broker ${broker.aedes.id} listening: ${where}`, {
    history: config.databaseUrl ? 'postgres (DATABASE_URL)' : inMemory(config) ? 'pglite in memory (DATA_DIR=memory)' : `pglite in ${resolve(config.dataDir)}`,
    sessions: config.redisUrl ? (config.redisCluster ? 'redis cluster (REDIS_URL)' : 'redis (REDIS_URL)') : 'memory',
  })
  let stopping = false
  const stop = (signal: string) => {
    if (stopping) return
    stopping = true
    log.info('shutting down', { signal })
    broker.close().then(() => {
      log.info('stopped')
      process.exit(0)
    }, (err: Error) => {
      log.error('shutdown failed', { error: err.message })
      process.exit(1)
    })
  }
  // A promise some library left without a handler (seen around a lost Redis connection) is logged,
  // not fatal: Node would otherwise stop every session on this node for one failed command.
  process.on('unhandledRejection', err => log.error('unhandled rejection', { error: (err as Error)?.message ?? String(err) }))
  process.on('SIGINT', () => stop('SIGINT'))
  process.on('SIGTERM', () => stop('SIGTERM'))
}

main().catch((err: Error) => {
  const expected = err instanceof ConfigError || err instanceof ListenError || err instanceof StartError
  process.stderr.write(`error: ${expected ? err.message : err.stack ?? err.message}\n`)
  process.exit(1)
})
