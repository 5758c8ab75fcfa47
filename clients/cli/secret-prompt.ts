// Asks for a password on the terminal without echoing it. Raw mode is switched on before the
// question is written, so nothing typed after the question reaches the screen.

/** The typed secret, or null when the person gave up (Ctrl-C, or Ctrl-D on an empty line). */
export function promptSecret (question: string, input: NodeJS.ReadStream = process.stdin,
  output: NodeJS.WriteStream = process.stdout): Promise<string | null> {
  return new Promise(resolve => {
    let typed = ''
    const finish = (secret: string | null) => {
      input.off('data', onData)
      input.setRawMode(false)
      input.pause()
      output.write('\n')
      resolve(secret)
    }
    const onData = (chunk: Buffer | string) => {
      for (const char of chunk.toString('utf8')) {
        if (char === '\r' || char === '\n') return finish(typed)
        if (char === '\u0003') return finish(null) // Ctrl-C
        if (char === '\u0004') { // Ctrl-D
          if (typed === '') return finish(null)
          continue
        }
        if (char === '\u007f' || char === '\b') typed = [...typed].slice(0, -1).join('')
        else if (char === '\u0015') typed = '' // Ctrl-U
        else if (char >= ' ') typed += char
      }
    }
    input.setRawMode(true)
    input.resume()
    input.on('data', onData)
    output.write(question)
  })
}
