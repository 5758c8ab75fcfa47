// The stores of clients/ts: the Node file (replaced atomically), localStorage (with a stand-in for
// window.localStorage), coalesced writes, and a state that belongs to another device refused.
import t from 'tap'
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { connect } from '../../../clients/ts/index.ts'
import { localStorageStore } from '../../../clients/ts/store-browser.ts'
import { fileStore } from '../../../clients/ts/store-file.ts'
import { checkState, createStateWriter, emptyState, memoryStore, type SavedState, type Store } from '../../../clients/ts/store.ts'
import { waitFor } from './sdk.ts'

const sample = (device: string): SavedState => ({
  ...emptyState(device),
  user: 7,
  started: true,
  cursor: 'AQEC',
  applied: { 3: 10 },
  outbox: [{ id: '0102030405060708', to: { user: 2 }, content: 'CgJoaQ==', createdAt: 1 }],
})

t.test('the file store keeps the state across instances and replaces it whole', async t => {
  const folder = mkdtempSync(join(tmpdir(), 'wmq-store-'))
  t.teardown(() => rmSync(folder, { recursive: true, force: true }))
  const path = join(folder, 'nested', 'device.json')
  t.equal(await fileStore(path).load(), null, 'no file: a new device')
  await fileStore(path).save(sample('a1'))
  t.same(await fileStore(path).load(), sample('a1'), 'what was saved loads in another instance')
  t.notOk(existsSync(`${path}.tmp`), 'the temporary file was renamed into place')
  t.same(JSON.parse(readFileSync(path, 'utf8')), sample('a1'), 'plain JSON')
})

t.test('the localStorage store', async t => {
  const items = new Map<string, string>()
  const storage = { getItem: (key: string) => items.get(key) ?? null, setItem: (key: string, value: string) => { items.set(key, value) } }
  const store = localStorageStore('wmq:a1', storage)
  t.equal(await store.load(), null)
  await store.save(sample('a1'))
  t.same(await localStorageStore('wmq:a1', storage).load(), sample('a1'))
  t.same([...items.keys()], ['wmq:a1'], 'one key')
})

t.test('writes are serialised and coalesced', async t => {
  const saved: string[] = []
  let release: () => void = () => {}
  const slow: Store = {
    async load () { return null },
    save: state => new Promise(resolve => { saved.push(state.cursor); release = resolve }),
  }
  let cursor = 'c0'
  const writer = createStateWriter(slow, () => ({ ...emptyState('a1'), cursor }))
  cursor = 'c1'
  const first = writer.write()
  await waitFor(() => saved.length === 1, 'the first save started')
  cursor = 'c2'
  const second = writer.write()
  cursor = 'c3'
  const third = writer.write()
  t.equal(second, third, 'writes made while a save runs share the next save')
  release()
  await first
  await waitFor(() => saved.length === 2, 'the second save started')
  release()
  await third
  t.same(saved, ['c1', 'c3'], 'two saves, the second with the latest state')
})

t.test('a state of another device or version is refused', async t => {
  t.throws(() => checkState(sample('a1'), 'b1'), /belongs to device "a1"/)
  t.throws(() => checkState({ version: 99 }, 'a1'), /version 1/)
  t.same(checkState(sample('a1'), 'a1'), sample('a1'))
  t.equal(checkState({ ...sample('a1'), cursor: 42 }, 'a1').cursor, '', "an older SDK's numeric cursor is read as '' (the whole list), not trusted")

  const store = memoryStore()
  await store.save(sample('a1'))
  const client = connect({ url: 'mqtt://127.0.0.1:1', login: 'bob', password: 'x', device: 'b1', store })
  const errors: Error[] = []
  client.on('error', err => errors.push(err))
  await waitFor(() => client.state === 'offline', 'the client gives up')
  t.match(errors[0]?.message, /belongs to device "a1"/, 'and says why')
  await client.close()
})

t.test('connect checks its options', async t => {
  t.throws(() => connect({ url: 'mqtt://127.0.0.1:1', login: 'a', password: 'x', device: 'A1' }), /not a device id/)
  t.throws(() => connect({ url: 'mqtt://127.0.0.1:1', login: 'a', device: 'a1' }), /token or a password/)
})
