// The screen and the keyboard. On a terminal: a readline prompt that stays usable while output
// arrives (each printed line clears the prompt row, is written above it, and the prompt is drawn
// again with what was typed so far, cursor kept), colours unless NO_COLOR is set, and a keypress
// hook for the typing hint. Through pipes (scripts, tests): plain lines, no prompt, no colours.
import readline from 'node:readline'

export interface Paint {
  dim (text: string): string
  bold (text: string): string
  red (text: string): string
  green (text: string): string
  yellow (text: string): string
  cyan (text: string): string
  magenta (text: string): string
}

const sgr = (open: number, close: number) => (text: string) => `\x1b[${open}m${text}\x1b[${close}m`
const colours: Paint = { dim: sgr(2, 22), bold: sgr(1, 22), red: sgr(31, 39), green: sgr(32, 39), yellow: sgr(33, 39), cyan: sgr(36, 39), magenta: sgr(35, 39) }
const plain: Paint = { dim: t => t, bold: t => t, red: t => t, green: t => t, yellow: t => t, cyan: t => t, magenta: t => t }

export interface TerminalHandlers {
  /** A line the person entered. */
  line (text: string): void
  /** The input ended (Ctrl-D, end of the pipe) or Ctrl-C was pressed. */
  end (): void
  /** A key changed the line being typed (terminals only): `text` is the line so far. */
  editing (text: string): void
}

export interface Terminal {
  /** A person at a terminal (stdin and stdout are TTYs). */
  readonly interactive: boolean
  readonly paint: Paint
  /** Writes lines above the prompt; the prompt and the half-typed line come back below them. */
  print (...lines: string[]): void
  /** Writes a line to stderr (an error that ends the program). */
  fail (line: string): void
  setPrompt (text: string): void
  /** Shows the prompt (the first time, and after each entered line). */
  prompt (): void
  /** Takes an entered line off the screen (the program shows it in its own words). */
  eraseEntered (text: string): void
  close (): void
}

export function openTerminal (handlers: TerminalHandlers, input: NodeJS.ReadStream = process.stdin,
  output: NodeJS.WriteStream = process.stdout, env: NodeJS.ProcessEnv = process.env): Terminal {
  const interactive = Boolean(input.isTTY && output.isTTY)
  const paint = interactive && !env.NO_COLOR ? colours : plain
  const rl = readline.createInterface({ input, output: interactive ? output : undefined, terminal: interactive, historySize: 200, prompt: '' })
  let closed = false
  let prompted = false
  rl.on('line', text => handlers.line(text))
  rl.on('close', () => {
    if (!closed) {
      closed = true
      handlers.end()
    }
  })
  if (interactive) {
    rl.on('SIGINT', () => rl.close())
    // readline's own keypress listener runs first, so rl.line already holds the edit.
    input.on('keypress', () => { if (!closed) handlers.editing(rl.line) })
  }
  return {
    interactive,
    paint,
    print (...lines) {
      if (!interactive || closed || !prompted) {
        output.write(lines.join('\n') + '\n')
        return
      }
      readline.clearLine(output, 0)
      readline.cursorTo(output, 0)
      output.write(lines.join('\n') + '\n')
      rl.prompt(true)
    },
    fail (line) {
      if (interactive && prompted && !closed) {
        readline.clearLine(output, 0)
        readline.cursorTo(output, 0)
      }
      process.stderr.write(line + '\n')
    },
    setPrompt (text) {
      rl.setPrompt(text)
      if (interactive && prompted && !closed) rl.prompt(true)
    },
    prompt () {
      if (!interactive || closed) return
      prompted = true
      rl.prompt(true)
    },
    eraseEntered (text) {
      if (!interactive) return
      const width = Math.max(1, output.columns || 80)
      const rows = Math.max(1, Math.ceil(visibleLength(rl.getPrompt() + text) / width))
      output.write(`\x1b[${rows}A\r\x1b[J`)
    },
    close () {
      if (closed) return
      closed = true
      if (interactive && prompted) {
        readline.clearLine(output, 0)
        readline.cursorTo(output, 0)
      }
      rl.close()
    },
  }
}

// eslint-disable-next-line no-control-regex
const ANSI = /\x1b\[[0-9;]*[A-Za-z]/g

/** Characters a line takes on screen: escape sequences take none (wide characters are counted as one). */
export const visibleLength = (text: string): number => [...text.replace(ANSI, '')].length

export const stripAnsi = (text: string): string => text.replace(ANSI, '')
