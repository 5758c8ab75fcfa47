// The Node store: the state as one JSON file, replaced atomically (write a temporary file, fsync it,
// rename it over the old one), so a crash at any moment leaves either the old state or the new one.
// Node only: the browser bundle uses store-browser.ts instead.
import { mkdir, open, readFile, rename } from 'node:fs/promises'
import { dirname } from 'node:path'
import type { SavedState, Store } from './store.ts'

export function fileStore (path: string): Store {
  return {
    async load () {
      try {
        return JSON.parse(await readFile(path, 'utf8')) as SavedState
      } catch (err) {
        if ((err as NodeJS.ErrnoException).code === 'ENOENT') return null
        throw err
      }
    },
    async save (state) {
      await mkdir(dirname(path), { recursive: true })
      const temporary = `${path}.tmp`
      const file = await open(temporary, 'w', 0o600)
      try {
        await file.writeFile(JSON.stringify(state))
        await file.sync()
      } finally {
        await file.close()
      }
      await rename(temporary, path)
    },
  }
}
