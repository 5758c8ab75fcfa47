// One line per event, `time level message key=value ...`, filtered by LOG_LEVEL. Callers pass
// only what is safe to print: no password or token is ever a field (test/auth/authenticate.test.ts
// checks the log of failed and successful logins for them).
import type { LogLevel } from './config.ts'

const rank: Record<LogLevel, number> = { error: 0, warn: 1, info: 2, debug: 3 }

export type Fields = Record<string, string | number | boolean | null | undefined>

export interface Logger {
  error (message: string, fields?: Fields): void
  warn (message: string, fields?: Fields): void
  info (message: string, fields?: Fields): void
  debug (message: string, fields?: Fields): void
}

function format (value: string | number | boolean | null): string {
  const text = String(value)
  return /^[\w.:/@+-]*$/.test(text) && text !== '' ? text : JSON.stringify(text)
}

export function createLogger (level: LogLevel, write: (line: string) => void = line => process.stderr.write(line + '\n')): Logger {
  const emit = (at: LogLevel) => (message: string, fields: Fields = {}) => {
    if (rank[at] > rank[level]) return
    let line = `${new Date().toISOString()} ${at.toUpperCase()} ${message}`
    for (const [key, value] of Object.entries(fields)) {
      if (value !== undefined) line += ` ${key}=${format(value)}`
    }
    write(line)
  }
  return { error: emit('error'), warn: emit('warn'), info: emit('info'), debug: emit('debug') }
}
