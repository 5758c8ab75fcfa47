// Issue 2 §2: every setting has a default, an environment variable, a flag and a README row.
import t from 'tap'
import { readFileSync } from 'node:fs'
import { ConfigError, loadConfig, parseDuration, settings } from '../broker/config.ts'

t.test('the README documents every setting, with its flag and default', async t => {
  const readme = readFileSync(new URL('../README.md', import.meta.url), 'utf8')
  for (const s of Object.values(settings)) {
    const fallback = s.default === '' ? '(empty)' : `\`${s.default}\``
    t.ok(readme.includes(`| \`${s.env}\` | \`--${s.flag}\` | ${fallback} |`), `README row for ${s.env}`)
  }
  const rows = [...readme.matchAll(/^\| `([A-Z_]+)` \| `--/gm)].map(m => m[1])
  const known = new Set<string>(Object.values(settings).map(s => s.env))
  t.same(rows.filter(env => !known.has(env)), [], 'and no row for a setting that does not exist')
})

t.test('precedence: flag over environment over default', async t => {
  t.equal(loadConfig([], {}).mqttPort, 1883, 'default')
  t.equal(loadConfig([], { MQTT_PORT: '1884' }).mqttPort, 1884, 'environment')
  t.equal(loadConfig(['--mqtt-port', '1885'], { MQTT_PORT: '1884' }).mqttPort, 1885, 'flag')
  t.equal(loadConfig([], { WS_PORT: 'off' }).wsPort, null, '"off" switches a listener off')
  t.equal(loadConfig([], { GROUP_RECEIPTS: 'off' }).groupReceipts, false)
  t.equal(loadConfig([], { RECALL_WINDOW: '90s' }).recallWindowMs, 90_000)
})

t.test('bad settings are one clear error', async t => {
  t.throws(() => loadConfig([], { MQTT_PORT: '70000' }), new ConfigError('MQTT_PORT must be a port from 0 to 65535 or "off", not "70000"'))
  t.throws(() => loadConfig([], { LOG_LEVEL: 'loud' }), /LOG_LEVEL must be one of error, warn, info, debug/)
  t.throws(() => loadConfig([], { TLS_KEY: 'k.pem' }), /TLS_KEY and TLS_CERT go together/)
  t.throws(() => loadConfig(['--mqtt-prot', '1']), /Unknown option '--mqtt-prot'.*README/, 'a mistyped flag is refused, not ignored')
  t.throws(() => loadConfig([], { GROUP_RECEIPTS: 'yes' }), /GROUP_RECEIPTS must be "on" or "off"/)
  t.throws(() => parseDuration('soon'), /not a duration/)
  t.same(['90s', '15m', '12h', '30d', '250'].map(parseDuration), [90_000, 900_000, 43_200_000, 2_592_000_000, 250])
})
