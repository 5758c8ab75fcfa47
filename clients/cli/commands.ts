// What a typed line means. A line starting with `/` is a command; anything else is a message to
// the open conversation (`//` at the start sends a message that starts with `/`). Parsing is pure:
// chat.ts carries the commands out.

export type Command =
  | { kind: 'say', text: string }
  | { kind: 'list' }
  | { kind: 'open', target: string }
  | { kind: 'history' }
  | { kind: 'dm', user: string }
  | { kind: 'group create', name: string, users: string[] }
  | { kind: 'group add' | 'group remove', group: string, users: string[] }
  | { kind: 'group leave', group: string }
  | { kind: 'groups' }
  | { kind: 'members', group: string }
  | { kind: 'who', user: string }
  | { kind: 'recall', seq: number }
  | { kind: 'help' }
  | { kind: 'quit' }
  | { kind: 'nothing' }
  /** A command used wrongly: `reason` says how to use it. */
  | { kind: 'invalid', reason: string }

export const HELP = [
  'Commands (anything else you type is a message to the open conversation):',
  '  /list                              conversations, unread counts, last messages',
  '  /open <user | #group>              open a conversation: recent messages, marked read',
  '  /history                           older messages of the open conversation',
  '  /dm <user>                         open or start a conversation with a user',
  '  /group create <name> <users...>    make a group with these users, and open it',
  '  /group add <group> <users...>      add users (admins and the owner)',
  '  /group remove <group> <users...>   remove users (admins and the owner)',
  '  /group leave <group>               leave a group',
  '  /groups                            your groups',
  '  /members <group>                   who is in a group',
  '  /who <user>                        online, or when last seen',
  '  /recall <seq>                      take back your message #seq (within minutes of sending)',
  '  /help                              this list',
  '  /quit                              leave (Ctrl-D and Ctrl-C too); unsent messages wait for next time',
  'A user is a login (bob) or a user id (2); a group is #id (#7), its id, or its name ("trip to rome" in quotes).',
]

/** Splits on blanks; "double" or 'single' quotes keep blanks inside one word. */
export function words (text: string): string[] {
  const found: string[] = []
  const pattern = /"([^"]*)"|'([^']*)'|(\S+)/g
  for (const match of text.matchAll(pattern)) found.push(match[1] ?? match[2] ?? match[3])
  return found
}

const usage = (reason: string): Command => ({ kind: 'invalid', reason })

export function parseCommand (line: string): Command {
  const trimmed = line.trim()
  if (trimmed === '') return { kind: 'nothing' }
  if (trimmed.startsWith('//')) return { kind: 'say', text: line.trimEnd().replace(/^\s*\//, '') }
  if (!trimmed.startsWith('/')) return { kind: 'say', text: line.trimEnd() }
  const [head, ...args] = words(trimmed.slice(1))
  const name = (head ?? '').toLowerCase()
  switch (name) {
    case 'list': case 'ls': return { kind: 'list' }
    case 'open': case 'o':
      return args.length === 1 ? { kind: 'open', target: args[0] } : usage('/open <user | #group>, e.g. /open bob or /open #7')
    case 'history': case 'more': return { kind: 'history' }
    case 'dm': case 'msg':
      return args.length === 1 ? { kind: 'dm', user: args[0] } : usage('/dm <user>, e.g. /dm bob')
    case 'group': return parseGroup(args)
    case 'groups': return { kind: 'groups' }
    case 'members':
      return args.length === 1 ? { kind: 'members', group: args[0] } : usage('/members <group>, e.g. /members #7')
    case 'who':
      return args.length === 1 ? { kind: 'who', user: args[0] } : usage('/who <user>, e.g. /who bob')
    case 'recall': {
      const seq = Number(args[0]?.replace(/^#/, ''))
      return args.length === 1 && Number.isSafeInteger(seq) && seq > 0 ? { kind: 'recall', seq } : usage('/recall <seq>: the number after # at the end of your message, e.g. /recall 12')
    }
    case 'help': case 'h': case '?': return { kind: 'help' }
    case 'quit': case 'exit': case 'q': return { kind: 'quit' }
    default: return usage(`unknown command /${head ?? ''}: /help lists the commands (start a message with // to send a leading /)`)
  }
}

function parseGroup (args: string[]): Command {
  const [action, ...rest] = args
  switch ((action ?? '').toLowerCase()) {
    case 'create': case 'new':
      return rest.length >= 2 ? { kind: 'group create', name: rest[0], users: rest.slice(1) } : usage('/group create <name> <users...>, e.g. /group create trip bob carol')
    case 'add':
      return rest.length >= 2 ? { kind: 'group add', group: rest[0], users: rest.slice(1) } : usage('/group add <group> <users...>, e.g. /group add #7 dave')
    case 'remove': case 'kick':
      return rest.length >= 2 ? { kind: 'group remove', group: rest[0], users: rest.slice(1) } : usage('/group remove <group> <users...>, e.g. /group remove #7 dave')
    case 'leave':
      return rest.length === 1 ? { kind: 'group leave', group: rest[0] } : usage('/group leave <group>, e.g. /group leave #7')
    default: return usage('/group create | add | remove | leave ...: /help shows how')
  }
}
