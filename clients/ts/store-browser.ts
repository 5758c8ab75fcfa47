// Browser stores. IndexedDB is the durable one (asynchronous, no 5 MB cap, survives a tab crash
// once a transaction completes); localStorage is the simple fallback (synchronous, small, fine for
// a state of a few KB). Both keep the state as one JSON document, like the file store.
import type { SavedState, Store } from './store.ts'

/** The part of the Web Storage API this store uses (window.localStorage, or a stand-in in tests). */
export interface KeyValueStorage {
  getItem (key: string): string | null
  setItem (key: string, value: string): void
}

export function localStorageStore (key: string, storage: KeyValueStorage = globalThis.localStorage): Store {
  return {
    async load () {
      const text = storage.getItem(key)
      return text === null ? null : JSON.parse(text) as SavedState
    },
    async save (state) { storage.setItem(key, JSON.stringify(state)) },
  }
}

const OBJECT_STORE = 'state'
const KEY = 'state'

function requestDone<T> (request: IDBRequest<T>): Promise<T> {
  return new Promise((resolve, reject) => {
    request.onsuccess = () => resolve(request.result)
    request.onerror = () => reject(request.error)
  })
}

/** The state in IndexedDB database `name` (one object store, one record). */
export function indexedDbStore (name: string, factory: IDBFactory = globalThis.indexedDB): Store {
  let opened: Promise<IDBDatabase> | null = null
  const database = () => {
    opened ??= new Promise<IDBDatabase>((resolve, reject) => {
      const request = factory.open(name, 1)
      request.onupgradeneeded = () => request.result.createObjectStore(OBJECT_STORE)
      request.onsuccess = () => resolve(request.result)
      request.onerror = () => reject(request.error)
    })
    return opened
  }
  return {
    async load () {
      const db = await database()
      const text = await requestDone(db.transaction(OBJECT_STORE, 'readonly').objectStore(OBJECT_STORE).get(KEY)) as string | undefined
      return text === undefined ? null : JSON.parse(text) as SavedState
    },
    async save (state) {
      const db = await database()
      const transaction = db.transaction(OBJECT_STORE, 'readwrite', { durability: 'strict' })
      transaction.objectStore(OBJECT_STORE).put(JSON.stringify(state), KEY)
      await new Promise<void>((resolve, reject) => {
        transaction.oncomplete = () => resolve()
        transaction.onerror = () => reject(transaction.error)
        transaction.onabort = () => reject(transaction.error)
      })
    },
  }
}
