// The weakmq SDK for Node and browsers: connect(), then listen and call. PROTOCOL.md describes
// the wire it speaks; options.ts argues every default. Node-only pieces are imported from their
// own files so a browser bundle never pulls them in:
//   import { fileStore } from './store-file.ts'                              (Node)
//   import { indexedDbStore, localStorageStore } from './store-browser.ts'   (browsers)
export { connect, ChatClient, type ClientStats } from './client.ts'
export type { ConnectOptions } from './options.ts'
export { defaults } from './options.ts'
export type { ChatEvents, ConnectionState } from './events.ts'
export type { PendingSend } from './outbox.ts'
export { memoryStore, type SavedSend, type SavedState, type Store } from './store.ts'
export { ChatError, ClosedError, ConnectRefusedError, LinkLostError, TimeoutError, connackMeaning } from './errors.ts'
export { newDeviceId, isDeviceId } from './topics.ts'
export {
  ErrorCode, Role, wmq,
  type ChatMessage, type Content, type ConversationSummary, type DeletedEvent, type GroupChange, type GroupInfo,
  type HistoryPage, type Member, type Presence, type Receipt, type RecallEvent, type Recipient, type SendResult, type TypingEvent,
} from './wire.ts'
