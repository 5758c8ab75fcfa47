// What every request handler gets: the broker to publish with, storage, the writer, the limits.
import type { Aedes } from 'aedes'
import type { Config } from '../config.ts'
import type { Logger } from '../log.ts'
import type { Db } from '../storage/db.ts'
import { directConversation } from '../storage/messages.ts'
import { findUserById } from '../storage/users.ts'
import { wmq } from '../../schema/generated/chat.js'
import { RequestError } from './errors.ts'
import type { MessageWriter } from './writer.ts'

export type ChatLimits = Pick<Config, 'maxPayload' | 'maxBody' | 'historyPage' | 'historyPageMax' | 'historyPageBytes' |
  'maxGroupSize' | 'recallWindowMs' | 'groupReceipts' | 'typingIntervalMs' | 'searchLimit' | 'searchRate'>

export interface ChatContext {
  broker: Aedes
  db: Db
  log: Logger
  writer: MessageWriter
  limits: ChatLimits
  /** The 1:1 conversation of two users (cached: it never changes once made). */
  directConversation (a: number, b: number): Promise<number>
  /** The 1:1 conversation of two users if this broker has it cached, without asking storage. */
  cachedDirectConversation (a: number, b: number): number | undefined
  /**
   * False only when no device of `user` but `device` can take a copy of what `device` sent: none
   * is connected, and no session of another device is subscribed to the user's inbox.
   */
  reachesOtherDevices (user: number, device: number): Promise<boolean>
}

const CACHE_LIMIT = 100_000

const pair = (a: number, b: number) => a < b ? `${a}:${b}` : `${b}:${a}`

type Base = Omit<ChatContext, 'directConversation' | 'cachedDirectConversation' | 'reachesOtherDevices'> &
  Partial<Pick<ChatContext, 'reachesOtherDevices'>>

export function createChatContext (base: Base): ChatContext {
  const direct = new Map<string, number>()
  return {
    reachesOtherDevices: async () => true,
    ...base,
    cachedDirectConversation: (a, b) => direct.get(pair(a, b)),
    async directConversation (a, b) {
      const key = pair(a, b)
      const cached = direct.get(key)
      if (cached !== undefined) return cached
      if (!await findUserById(base.db, b)) throw new RequestError(wmq.ErrorCode.UNKNOWN_USER, `no user ${b}`)
      const id = await base.db.transaction(tx => directConversation(tx, a, b))
      if (direct.size >= CACHE_LIMIT) direct.clear()
      direct.set(key, id)
      return id
    },
  }
}
