// Who is who: user ids (what the protocol carries) and logins (what people type and read). Names
// are learned from what passes by (member lists, search results) and asked for in one ProfileGet
// for the ids still unknown; a user whose profile this user may not read stays "user 7".
import { ChatError, ErrorCode, type ChatClient } from '../ts/index.ts'

const PROFILES_PER_REQUEST = 100 // the broker's limit for one ProfileGet

export class Directory {
  private readonly logins = new Map<number, string>()
  private readonly asked = new Set<number>()
  self = 0

  constructor (private readonly client: ChatClient, readonly login: string) {}

  /** Reads the user's own profile: this device learns its user id at once, even before any message. */
  async learnSelf (): Promise<number> {
    const reply = await this.client.request({ profileUpdate: {} }, 'profile') // an update with no field reads it
    this.self = Number(reply.profile!.user)
    this.remember(this.self, reply.profile!.login || this.login)
    return this.self
  }

  remember (user: number, login: string): void {
    if (user > 0 && login) this.logins.set(user, login)
  }

  /** The login, or "user 7" while unknown. */
  nameOf = (user: number): string => this.logins.get(user) ?? (user ? `user ${user}` : 'someone')

  /** Asks for the logins of the ids not known yet (each id once per run). */
  async learn (users: Iterable<number>): Promise<void> {
    const unknown = [...new Set(users)].filter(u => u > 0 && !this.logins.has(u) && !this.asked.has(u))
    for (let i = 0; i < unknown.length; i += PROFILES_PER_REQUEST) {
      const batch = unknown.slice(i, i + PROFILES_PER_REQUEST)
      batch.forEach(u => this.asked.add(u))
      const reply = await this.client.request({ profileGet: { users: batch } }, 'profiles')
      for (const profile of reply.profiles?.profiles ?? []) this.remember(Number(profile.user), profile.login ?? '')
    }
  }

  /** Asks for this user's login again at the next learn(): a profile becomes readable once a 1:1 exists. */
  askAgain (user: number): void {
    if (!this.logins.has(user)) this.asked.delete(user)
  }

  /** A user named by id ("2") or login ("bob"); throws with words when there is none. */
  async resolveUser (text: string): Promise<number> {
    const name = text.replace(/^@/, '')
    if (/^\d+$/.test(name)) {
      const id = Number(name)
      if (!Number.isSafeInteger(id) || id <= 0) throw new Error(`"${text}" is not a user id`)
      await this.learn([id]).catch(() => {})
      return id
    }
    const known = this.byLogin(name)
    if (known) return known
    let cards
    try {
      cards = (await this.client.request({ userSearch: { prefix: name, limit: 20 } }, 'search')).search?.users ?? []
    } catch (err) {
      if (err instanceof ChatError && err.code === ErrorCode.INVALID_ARGUMENT) throw new Error(`"${text}" is not a login`)
      throw err
    }
    for (const card of cards) this.remember(Number(card.user), card.login ?? '')
    const found = this.byLogin(name)
    if (!found) throw new Error(`no user "${name}"`)
    return found
  }

  private byLogin (login: string): number | null {
    let folded: number | null = null
    for (const [user, known] of this.logins) {
      if (known === login) return user
      if (known.toLowerCase() === login.toLowerCase()) folded = user
    }
    return folded
  }
}
