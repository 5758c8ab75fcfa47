// The broker in a process of its own for a benchmark run (bench/targets.ts starts it): its own
// event loop, so the generator does not share one with it, and its own memory, so RSS per
// connection is the broker's alone. Driven over the IPC channel:
//   parent -> child: { type: 'start', config } | { type: 'stats' } | { type: 'loop' } | { type: 'close' }
//   child -> parent: { type: 'ready', ports } | { type: 'stats', ... } | { type: 'loop', ... } | { type: 'closed' } | { type: 'failed', error }
import { monitorEventLoopDelay } from 'node:perf_hooks'
import type { Config } from '../broker/config.ts'
import { createLogger } from '../broker/log.ts'
import { startBroker, type Broker } from '../broker/server.ts'
import { loopDelayOf, type LoopDelay } from './system.ts'

export type ChildRequest = { type: 'start'; config: Config } | { type: 'stats' } | { type: 'loop' } | { type: 'close' }

export interface ChildStats {
  type: 'stats'
  rss: number
  heapUsed: number
  clients: number
}

export type ChildReply =
  | { type: 'ready'; ports: Record<string, number> }
  | ChildStats
  | ({ type: 'loop' } & LoopDelay)
  | { type: 'closed' }
  | { type: 'failed'; error: string }

let broker: Broker | null = null
// Every packet, commit and fan-out of the broker runs on this loop: while it is late, everything
// waits. 1 ms resolution, so a burst of a few milliseconds shows.
const loop = monitorEventLoopDelay({ resolution: 1 })
loop.enable()
const reply = (message: ChildReply) => process.send?.(message)

process.on('message', (message: ChildRequest) => {
  if (message.type === 'start') {
    startBroker(message.config, createLogger(message.config.logLevel)).then((started) => {
      broker = started
      reply({ type: 'ready', ports: started.ports })
    }, (err: Error) => reply({ type: 'failed', error: err.message }))
  } else if (message.type === 'stats') {
    const memory = process.memoryUsage()
    reply({ type: 'stats', rss: memory.rss, heapUsed: memory.heapUsed, clients: broker?.aedes.connectedClients ?? 0 })
  } else if (message.type === 'loop') {
    reply({ type: 'loop', ...loopDelayOf(loop) })
    loop.reset()
  } else if (message.type === 'close') {
    const closing = broker ? broker.close() : Promise.resolve()
    closing.catch(() => {}).then(() => {
      reply({ type: 'closed' })
      process.disconnect?.()
      process.exit(0)
    })
  }
})

// The parent gone means the run is over: never outlive it.
process.on('disconnect', () => process.exit(0))
