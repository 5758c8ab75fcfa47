// The browser client's files as the broker's HTTP listener serves them (broker/http.ts). The app
// is TypeScript (app.ts and what it imports, the SDK included), bundled by esbuild's JS API on the
// first request and kept in memory for the life of the process: `npm start` serves it with no
// build step. Node only; nothing here reaches the browser.
import { readFile } from 'node:fs/promises'
import { fileURLToPath } from 'node:url'
import { gzipSync } from 'node:zlib'

/** A file and its gzip (the bundle is 650 KB, 155 KB gzipped: it matters on a 2G link). */
export interface WebAsset { type: string, body: Buffer, gzipped: Buffer }

const folder = (file: string) => fileURLToPath(new URL(file, import.meta.url))

/** What the browser may ask for, by path. */
const ASSETS: Record<string, [type: string, make: () => Promise<string>]> = {
  '/': ['text/html; charset=utf-8', () => readFile(folder('index.html'), 'utf8')],
  '/app.css': ['text/css; charset=utf-8', () => readFile(folder('app.css'), 'utf8')],
  '/app.js': ['text/javascript; charset=utf-8', bundleApp],
}

/** app.ts and everything it imports as one ES module for browsers (mqtt.js resolves to its browser build). */
export async function bundleApp (): Promise<string> {
  const { build } = await import('esbuild') // loaded when a browser first asks, not at every broker start
  const result = await build({
    entryPoints: [folder('app.ts')],
    bundle: true,
    format: 'esm',
    platform: 'browser',
    target: 'es2020',
    minify: true,
    write: false,
    logLevel: 'silent',
  })
  return result.outputFiles[0].text
}

const cache = new Map<string, Promise<WebAsset>>()

/** The asset at `path` (built or read once, then from memory), or null when there is none. */
export function webAsset (path: string): Promise<WebAsset> | null {
  const key = path === '/index.html' ? '/' : path
  if (!Object.hasOwn(ASSETS, key)) return null
  let asset = cache.get(key)
  if (!asset) {
    const [type, make] = ASSETS[key]
    asset = make().then(text => {
      const body = Buffer.from(text, 'utf8')
      return { type, body, gzipped: gzipSync(body, { level: 9 }) }
    })
    cache.set(key, asset)
    asset.catch(() => cache.delete(key)) // a failed build is tried again at the next request
  }
  return asset
}
