// Generates schema/generated/chat.{js,d.ts} from schema/chat.proto with protobufjs-cli.
// Static code gives the broker and the SDK typed messages and the fastest codec protobufjs has;
// `npm install` runs this (prepare), and `npm run proto` after an edit of the .proto.
import { execFileSync } from 'node:child_process'
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs'
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

// --force-number types every 64-bit field as a JS number, but protobufjs still decodes them to Long
// objects whenever the `long` package is installed. Ids and seqs stay below 2^53 (DESIGN 7), so the
// generated module makes the runtime agree with its types.
const file = join(out, 'chat.js')
const code = readFileSync(file, 'utf8')
const runtime = 'import $protobuf from "protobufjs/minimal.js";'
if (!code.includes(runtime)) throw new Error(`unexpected pbjs output: no "${runtime}" line`)
writeFileSync(file, code.replace(runtime, `${runtime}\n$protobuf.util.Long = undefined;\n$protobuf.configure();`))
