// Generates schema/generated/chat.{js,d.ts} from schema/chat.proto with protobufjs-cli.
// Static code gives the broker and the SDK typed messages and the fastest codec protobufjs has;
// `npm install` runs this (prepare), and `npm run proto` after an edit of the .proto.
import { execFileSync } from 'node:child_process'
import { mkdirSync } from 'node:fs'
import { createRequire } from 'node:module'
import { dirname, join } from 'node:path'
import { fileURLToPath } from 'node:url'

const here = dirname(fileURLToPath(import.meta.url))
const out = join(here, 'generated')
const require = createRequire(import.meta.url)
let cli
try {
  cli = dirname(require.resolve('protobufjs-cli/package.json'))
} catch {
  console.log('protobufjs-cli is not installed (production install): using the committed schema as is')
  process.exit(0)
}
mkdirSync(out, { recursive: true })
const run = (bin, args) => execFileSync(process.execPath, [join(cli, 'bin', bin), ...args], { stdio: 'inherit' })
run('pbjs', ['-t', 'static-module', '-w', 'es6', '--force-number', '--no-verify', '--no-delimited',
  '--no-beautify', '-o', join(out, 'chat.js'), join(here, 'chat.proto')])
run('pbts', ['-o', join(out, 'chat.d.ts'), join(out, 'chat.js')])
