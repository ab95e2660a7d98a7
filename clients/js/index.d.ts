// Type declarations for @mplogin/client.

/** The logged-in user: mplogin's own id, and the platform's ids in this app. */
export interface User {
  id: string
  openid: string
  /** '' when the platform gave none. */
  unionid: string
}

/** What a host adapter's request resolves with. */
export interface HostResponse {
  statusCode: number
  data: any
  header: Record<string, string>
}

export interface HostRequestOptions {
  url: string
  method: string
  data?: any
  header: Record<string, string>
  /** Milliseconds. */
  timeout?: number
}

/**
 * The interface between the client and a mini-program host. Write one for a host
 * the library does not know.
 */
export interface HostAdapter {
  /** Optional: a name for the host ('custom' when absent). */
  name?: string
  /** A fresh one-time login code from the host; never cached. */
  login(): Promise<{ code: string } | { anonymousCode: string }>
  /** One HTTP request; resolves with any status, rejects only when there is no answer. */
  request(opts: HostRequestOptions): Promise<HostResponse>
  /** The stored string, or undefined/null/'' when there is none. */
  getStorage(key: string): string | undefined | null | Promise<string | undefined | null>
  setStorage(key: string, value: string): void | Promise<unknown>
  removeStorage(key: string): void | Promise<unknown>
  /** Optional clock in milliseconds; Date.now by default. */
  now?(): number
}

export type HostName = 'wx' | 'qq' | 'ks' | 'tt' | 'swan' | 'my' | 'uni' | 'Taro'

export interface ClientOptions {
  /** Where mplogin serves /v1, e.g. 'https://login.example.com'. */
  baseURL: string
  /** The mplogin app name, as in its configuration. */
  app: string
  /**
   * The host API object (wx, swan, tt, qq, my, ks, uni, Taro) or a HostAdapter;
   * detected from the globals when omitted.
   */
  host?: any
  /** Which host `host` is, when it cannot be told from the globals or its features. */
  hostName?: HostName
  /** Storage key of the session; 'mplogin:<app>' by default. */
  storageKey?: string
  /** Longest Retry-After (seconds) waited before the one retry of a 429 or 503; default 5. 0 never waits. */
  maxRetryWait?: number
  /** Request timeout in milliseconds; default 15000. */
  timeout?: number
  /** Clock in milliseconds; the adapter's now(), else Date.now. */
  now?: () => number
  /** How the client waits for Retry-After; setTimeout by default. */
  sleep?: (ms: number) => Promise<void>
}

export interface RequestOptions {
  /** Absolute, or relative to baseURL. */
  url: string
  method?: string
  data?: any
  header?: Record<string, string>
  timeout?: number
}

export type SessionState = 'logged-in' | 'refreshed' | 'logged-out'

export interface ChangeEvent {
  state: SessionState
  user: User | null
}

export interface SessionInfo {
  active: boolean
  app?: string
  user?: User
  expires_in?: number
  session_key_valid?: boolean
}

export interface DecryptPayload {
  encryptedData?: string
  iv?: string
  rawData?: string
  signature?: string
  encrypted_data?: string
  raw_data?: string
}

/** Alipay's my.getPhoneNumber answer, parsed; on a device it comes as a JSON string in `response`. */
export interface AlipayPhoneAnswer {
  response: string
  sign: string
  sign_type?: string
  encrypt_type?: string
  charset?: string
}

export interface PhoneNumber {
  phone_number: string
  pure_phone_number: string
  country_code: string
  /** The user the number is recorded on: the caller's, or the one it was linked to. */
  user_id: string
  /** True when proving the number joined the caller to another user (link_by_phone). */
  linked: boolean
}

export declare class Client {
  readonly baseURL: string
  readonly app: string
  readonly storageKey: string
  /** The adapter's name: 'wx', 'swan', …, or 'custom'. */
  readonly hostName: string
  /** The logged-in user, or null. */
  readonly user: User | null
  /** Logs in silently when there is no session that can be refreshed; force: always. */
  login(opts?: { force?: boolean }): Promise<User>
  /** A valid access token, refreshed or logged in first if needed. */
  getAccessToken(): Promise<string>
  /** A request with Authorization: Bearer; resolves whatever the status. */
  request<T = any>(opts: RequestOptions): Promise<{ statusCode: number; data: T; header: Record<string, string> }>
  /** GET /v1/session; {active: false} without a live session. Never logs in. */
  checkSession(opts?: { verifyPlatform?: boolean }): Promise<SessionInfo>
  /** POST /v1/logout ({all: true}: every session of the user), then clears the tokens. */
  logout(opts?: { all?: boolean }): Promise<void>
  /** POST /v1/userdata/decrypt; resolves the decrypted object. Never logs in. */
  decrypt<T = any>(payload: DecryptPayload): Promise<T>
  /** POST /v1/phone with a phone code or an encrypted payload. Never logs in. */
  phone(payload: string | { code: string } | DecryptPayload | AlipayPhoneAnswer | { response: string }): Promise<PhoneNumber>
  /** Calls fn on every session change; returns a function that removes it. */
  onChange(fn: (event: ChangeEvent) => void): () => void
}

export declare function createClient(options: ClientOptions): Client

export declare class MploginError extends Error {
  constructor(code: string, message: string, info?: { status?: number; retryAfter?: number; requestId?: string; cause?: unknown })
  /** mplogin's error code, or network_error, logged_out, host_login_failed, invalid_response, http_<status>. */
  code: string
  /** HTTP status; 0 without an answer. */
  status: number
  /** Retry-After in seconds, when the answer had one. */
  retryAfter?: number
  /** The answer's X-Request-Id. */
  requestId?: string
  cause?: unknown
}
export declare class UserBlockedError extends MploginError {}
export declare class LoggedOutError extends MploginError {}
export declare class NetworkError extends MploginError {}
export declare class HostLoginError extends MploginError {}

export declare const adapters: { [K in HostName]: (host?: any) => HostAdapter }
