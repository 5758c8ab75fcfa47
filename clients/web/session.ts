// Who is logged in on this browser, and with which device. The password goes to POST /login once
// and is traded for an access token; only the token is kept. Each login has its own device id on
// this browser (DESIGN 8: a device is bound to the user of its first login), made with the SDK's
// newDeviceId() and kept in localStorage so a reload is the same device with the same session.
import { newDeviceId } from '../ts/index.ts'

export interface Session {
  login: string
  user: number
  token: string
  device: string
  /** ISO time the token stops working. */
  expiresAt: string
}

const SESSION_KEY = 'wmq.session'
const deviceKey = (login: string) => `wmq.device.${login}`

export function savedSession (): Session | null {
  const text = localStorage.getItem(SESSION_KEY)
  if (!text) return null
  try {
    const session = JSON.parse(text) as Session
    if (Date.parse(session.expiresAt) > Date.now()) return session
  } catch {}
  localStorage.removeItem(SESSION_KEY)
  return null
}

/** Forgets the token; the device id stays, so the next login of this user is the same device. */
export function forgetSession (): void {
  localStorage.removeItem(SESSION_KEY)
}

export class LoginError extends Error {}

export async function logIn (login: string, password: string): Promise<Session> {
  const device = localStorage.getItem(deviceKey(login)) ?? newDeviceId()
  let response: Response
  try {
    response = await fetch('/login', {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ login, password, device }),
    })
  } catch {
    throw new LoginError('the server cannot be reached; check the network and try again')
  }
  const body = await response.json().catch(() => ({})) as Partial<Session> & { error?: string }
  if (!response.ok) throw new LoginError(body.error ?? `login failed (HTTP ${response.status})`)
  const session: Session = { login: body.login!, user: body.user!, token: body.token!, device: body.device!, expiresAt: body.expiresAt! }
  // The broker gives another device id when this one belongs to another user of this browser.
  localStorage.setItem(deviceKey(login), session.device)
  localStorage.setItem(SESSION_KEY, JSON.stringify(session))
  return session
}

/** ws://host:port/mqtt of the broker that served this page (/config.json says the ports). */
export async function webSocketUrl (): Promise<string> {
  const config = await (await fetch('/config.json')).json() as { ws: number | null, wss: number | null, path: string }
  // A page served over https may only open wss: (mixed content); over http either will do.
  const secure = config.wss !== null && (location.protocol === 'https:' || config.ws === null)
  const port = secure ? config.wss : location.protocol === 'https:' ? null : config.ws
  if (!port) throw new Error('this broker has no MQTT over WebSocket listener for this page (WS_PORT or WSS_PORT is off)')
  return `${secure ? 'wss' : 'ws'}://${location.hostname}:${port}${config.path}`
}
