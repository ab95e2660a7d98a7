'use strict'

const errors = require('./errors.js')
const hosts = require('./hosts.js')

const MploginError = errors.MploginError
const UserBlockedError = errors.UserBlockedError
const LoggedOutError = errors.LoggedOutError
const NetworkError = errors.NetworkError
const HostLoginError = errors.HostLoginError

/** Refresh this long before a token expires, at most: 10% of its lifetime, capped. */
const MAX_MARGIN_MS = 60000
const STORAGE_VERSION = 1

function noop() {}

function defaultSleep(ms) {
  return new Promise(function (resolve) { setTimeout(resolve, ms) })
}

/** The margin before the end of a lifetime (ms) at which a token counts as expired. */
function margin(lifetimeMs) {
  return Math.min(MAX_MARGIN_MS, lifetimeMs / 10)
}

/** A header's value, whatever the case of its name. */
function headerValue(header, name) {
  if (!header) return undefined
  const lower = name.toLowerCase()
  const keys = Object.keys(header)
  for (let i = 0; i < keys.length; i++) {
    if (keys[i].toLowerCase() === lower) {
      const v = header[keys[i]]
      return Array.isArray(v) ? v[0] : v
    }
  }
  return undefined
}

/** Retry-After in seconds (delta-seconds or an HTTP date), or undefined. */
function parseRetryAfter(v, nowMs) {
  if (v === undefined || v === null || v === '') return undefined
  const s = String(v).trim()
  if (/^\d+$/.test(s)) return parseInt(s, 10)
  const t = Date.parse(s)
  if (isNaN(t)) return undefined
  return Math.max(0, Math.ceil((t - nowMs) / 1000))
}

function parseBody(data) {
  if (typeof data === 'string') {
    if (data.trim() === '') return undefined
    try {
      return JSON.parse(data)
    } catch (e) {
      return data
    }
  }
  return data
}

function isUser(u) {
  return !!u && typeof u === 'object' && typeof u.id === 'string'
}

function userOf(u) {
  return { id: u.id, openid: u.openid || '', unionid: u.unionid || '' }
}

/**
 * A login client for one mplogin app.
 *
 * Create one per app and share it: every session change (login, refresh, re-login,
 * logout) runs one at a time through it, and concurrent calls wait for the one in
 * progress.
 */
/**
 * Alipay's my.getPhoneNumber answer as mplogin takes it ({response, sign, sign_type,
 * encrypt_type, charset}), from the success result, whose response is that object as a
 * JSON string, or from the object itself; undefined for anything else.
 */
function alipayPhone(payload) {
  if (!payload || typeof payload !== 'object' || typeof payload.response !== 'string') return undefined
  let p = payload
  if (payload.response.charAt(0) === '{') {
    try {
      p = JSON.parse(payload.response)
    } catch (e) {
      return undefined
    }
  }
  if (!p || typeof p.response !== 'string' || typeof p.sign !== 'string') return undefined
  const out = { response: p.response, sign: p.sign }
  for (const k of ['sign_type', 'encrypt_type', 'charset']) if (typeof p[k] === 'string') out[k] = p[k]
  return out
}

class Client {
  /**
   * @param {import('../index').ClientOptions} options
   */
  constructor(options) {
    options = options || {}
    if (!options.baseURL) throw new TypeError('mplogin: baseURL is required')
    if (!options.app) throw new TypeError('mplogin: app is required')
    this.baseURL = String(options.baseURL).replace(/\/+$/, '')
    this.app = String(options.app)
    this.storageKey = options.storageKey || 'mplogin:' + this.app
    this.host = hosts.resolveHost(options.host, options.hostName)
    this.hostName = this.host.name || 'custom'
    const host = this.host
    this._now = options.now || (typeof host.now === 'function' ? function () { return host.now() } : Date.now)
    this._sleep = options.sleep || defaultSleep
    this.maxRetryWait = options.maxRetryWait === undefined ? 5 : options.maxRetryWait
    this.timeout = options.timeout || 15000
    /** @type {null | {accessToken: string, refreshToken: string, receivedAt: number, expiresIn: number, refreshExpiresIn: number, user: {id: string, openid: string, unionid: string}}} */
    this._tokens = null
    this._listeners = []
    this._lock = Promise.resolve()
    this._busy = 0
    this._ready = this._load()
  }

  /** The logged-in user, or null. */
  get user() {
    return this._tokens ? this._tokens.user : null
  }

  /**
   * Calls fn(event) on every change of the session: 'logged-in' (a login, also a
   * silent one), 'refreshed' (new tokens for the same session), 'logged-out'.
   * @returns {() => void} a function that removes fn
   */
  onChange(fn) {
    const list = this._listeners
    list.push(fn)
    return function () {
      const i = list.indexOf(fn)
      if (i >= 0) list.splice(i, 1)
    }
  }

  /**
   * Resolves the user, logging in silently with a fresh host code only when this
   * client holds no session that can still be refreshed. With {force: true} it
   * always logs in anew (and the old session is left to expire).
   * @param {{force?: boolean}} [opts]
   */
  login(opts) {
    const self = this
    const force = !!(opts && opts.force)
    return this._ready.then(function () {
      return self._exclusive(function () {
        if (!force && self._tokens && self._refreshValid()) return self.user
        return self._login().then(function () { return self.user })
      })
    })
  }

  /** A valid access token: the stored one, or a refreshed one, or one of a new silent login. */
  getAccessToken() {
    const self = this
    return this._ready.then(function () { return self._token(true, null) })
  }

  /**
   * A request with the access token as `Authorization: Bearer …`. A relative url is
   * joined to baseURL. Resolves with the answer whatever its status.
   */
  request(opts) {
    opts = opts || {}
    const self = this
    let url
    try {
      url = this._url(opts.url)
    } catch (e) {
      return Promise.reject(e)
    }
    const method = (opts.method || 'GET').toUpperCase()
    return this._withToken(true, function (token) {
      const header = {}
      const given = opts.header || {}
      Object.keys(given).forEach(function (k) {
        if (k.toLowerCase() !== 'authorization') header[k] = given[k]
      })
      header.Authorization = 'Bearer ' + token
      return self._hostRequest({ url: url, method: method, data: opts.data, header: header, timeout: opts.timeout || self.timeout })
    })
  }

  /**
   * GET /v1/session: resolves mplogin's answer ({active: true, app, user, expires_in})
   * or {active: false} when this client holds no live session. Never logs in.
   * @param {{verifyPlatform?: boolean}} [opts]
   */
  checkSession(opts) {
    const self = this
    const path = '/v1/session' + (opts && opts.verifyPlatform ? '?verify=platform' : '')
    return this._ready.then(function () {
      if (!self._tokens) return { active: false }
      return self._withToken(false, function (token) { return self._call('GET', path, undefined, token) })
        .then(function (res) {
          if (res.statusCode === 401) return { active: false }
          return self._json(res)
        }, function (e) {
          if (e instanceof LoggedOutError) return { active: false }
          throw e
        })
    })
  }

  /**
   * POST /v1/logout, then clears the stored tokens (also when the call failed, which
   * then rejects).
   * @param {{all?: boolean}} [opts] all: end every session of the user
   */
  logout(opts) {
    const self = this
    const body = opts && opts.all ? { all: true } : undefined
    return this._ready.then(function () {
      return self._exclusive(function () {
        if (!self._tokens) return undefined
        let failure = null
        return self._ensure(false, null)
          .then(function (token) { return self._call('POST', '/v1/logout', body, token) })
          .then(function (res) {
            // 401: the session had ended already.
            if (res.statusCode !== 401) self._json(res)
          })
          .catch(function (e) {
            if (!(e instanceof LoggedOutError)) failure = e
          })
          .then(function () {
            if (self._tokens) {
              self._setTokens(null)
              self._emit('logged-out')
            }
            if (failure) throw failure
          })
      })
    })
  }

  /**
   * POST /v1/userdata/decrypt: opens what getUserInfo/getUserProfile gave, with the
   * session's key. Accepts the host's {encryptedData, iv, rawData, signature} or the
   * API's snake_case fields. Resolves the decrypted object. Never logs in (a new
   * login would change the session key the payload was made with).
   */
  decrypt(payload) {
    payload = payload || {}
    const body = {
      encrypted_data: payload.encrypted_data || payload.encryptedData,
      iv: payload.iv,
    }
    const raw = payload.raw_data || payload.rawData
    const sig = payload.signature
    if (raw !== undefined && sig !== undefined) {
      body.raw_data = raw
      body.signature = sig
    }
    return this._authedJSON('POST', '/v1/userdata/decrypt', body).then(function (d) { return d && d.data })
  }

  /**
   * POST /v1/phone: a phone code (a string, or {code}: getPhoneNumber's detail), an
   * encrypted payload ({encryptedData, iv}), or Alipay's my.getPhoneNumber answer (its
   * success result {response: "<JSON string>"}, or that JSON parsed: {response, sign, …}).
   * Resolves {phone_number, pure_phone_number, country_code, user_id, linked}. Never logs in.
   */
  phone(payload) {
    let body
    const alipay = alipayPhone(payload)
    if (alipay) body = alipay
    else if (typeof payload === 'string') body = { code: payload }
    else if (payload && payload.code) body = { code: payload.code }
    else body = { encrypted_data: payload && (payload.encrypted_data || payload.encryptedData), iv: payload && payload.iv }
    return this._authedJSON('POST', '/v1/phone', body)
  }

  // --- internals -----------------------------------------------------------

  _url(url) {
    if (!url) throw new TypeError('mplogin: request needs a url')
    if (/^[a-z][a-z0-9+.-]*:\/\//i.test(url)) return url
    return this.baseURL + (url.charAt(0) === '/' ? '' : '/') + url
  }

  _emit(state) {
    const ev = { state: state, user: this.user }
    this._listeners.slice().forEach(function (fn) {
      try {
        fn(ev)
      } catch (e) {
        // A listener's failure is its own.
      }
    })
  }

  /** Runs fn after every session operation before it; the lock never stays taken. */
  _exclusive(fn) {
    const self = this
    this._busy++
    const run = this._lock.then(function () { return fn() })
    this._lock = run.then(noop, noop)
    return run.then(function (v) {
      self._busy--
      return v
    }, function (e) {
      self._busy--
      throw e
    })
  }

  _load() {
    const self = this
    let v
    try {
      v = this.host.getStorage(this.storageKey)
    } catch (e) {
      return Promise.resolve()
    }
    if (v && typeof v.then === 'function') {
      return v.then(function (x) { self._restore(x) }, noop)
    }
    this._restore(v) // synchronous storage: auth.user is right at once
    return Promise.resolve()
  }

  _restore(v) {
    try {
      const s = typeof v === 'string' ? JSON.parse(v) : v
      if (s && s.v === STORAGE_VERSION && typeof s.accessToken === 'string' && typeof s.refreshToken === 'string' &&
        typeof s.receivedAt === 'number' && typeof s.expiresIn === 'number' &&
        typeof s.refreshExpiresIn === 'number' && isUser(s.user)) {
        this._tokens = {
          accessToken: s.accessToken, refreshToken: s.refreshToken, receivedAt: s.receivedAt,
          expiresIn: s.expiresIn, refreshExpiresIn: s.refreshExpiresIn, user: userOf(s.user),
        }
        if (!this._refreshValid()) this._setTokens(null) // a session past its end is no session
      }
    } catch (e) {
      // Unreadable: start logged out.
    }
  }

  _setTokens(t) {
    this._tokens = t
    let p
    try {
      p = t
        ? this.host.setStorage(this.storageKey, JSON.stringify({ v: STORAGE_VERSION, accessToken: t.accessToken,
          refreshToken: t.refreshToken, receivedAt: t.receivedAt, expiresIn: t.expiresIn,
          refreshExpiresIn: t.refreshExpiresIn, user: t.user }))
        : this.host.removeStorage(this.storageKey)
    } catch (e) {
      return // storage is a cache of the session; failing to write it is not fatal
    }
    if (p && typeof p.then === 'function') p.then(noop, noop)
  }

  /** Whether the access token is usable, a margin before its end on the local clock. */
  _accessValid() {
    const t = this._tokens
    if (!t) return false
    const age = this._now() - t.receivedAt
    const life = t.expiresIn * 1000
    return age >= 0 && age < life - margin(life)
  }

  /** Whether the access token has not expired yet (without the margin). */
  _accessUnexpired() {
    const t = this._tokens
    if (!t) return false
    const age = this._now() - t.receivedAt
    return age >= 0 && age < t.expiresIn * 1000
  }

  _refreshValid() {
    const t = this._tokens
    if (!t) return false
    const age = this._now() - t.receivedAt
    const life = t.refreshExpiresIn * 1000
    return age >= 0 && age < life - margin(life)
  }

  _token(allowLogin, stale) {
    if (!this._busy && stale === null && this._accessValid()) return Promise.resolve(this._tokens.accessToken)
    const self = this
    return this._exclusive(function () { return self._ensure(allowLogin, stale) })
  }

  /**
   * Inside the lock: a valid access token, refreshing or logging in as needed. stale
   * is a token that got a 401: it is renewed even if it looks valid.
   */
  _ensure(allowLogin, stale) {
    const self = this
    const t = this._tokens
    if (t && t.accessToken !== stale && this._accessValid()) return Promise.resolve(t.accessToken)
    const hadSession = !!t
    let step
    if (t && this._refreshValid()) {
      step = this._refresh().then(function () { return true }, function (e) {
        if (e instanceof MploginError && e.code === 'invalid_grant') {
          self._setTokens(null)
          return false
        }
        // A refresh without an answer keeps the session; an unexpired token still serves.
        if (self._tokens && self._tokens.accessToken !== stale && self._accessUnexpired()) return true
        throw e
      })
    } else {
      if (t) self._setTokens(null) // the refresh token expired: only a login helps
      step = Promise.resolve(false)
    }
    return step.then(function (fresh) {
      if (fresh) return self._tokens.accessToken
      if (!allowLogin) {
        if (hadSession) self._emit('logged-out')
        throw new LoggedOutError('logged_out', hadSession ? 'the session ended' : 'not logged in')
      }
      return self._login().then(function () { return self._tokens.accessToken }, function (e) {
        if (!hadSession) throw e
        self._emit('logged-out')
        if (e instanceof UserBlockedError) throw e
        throw new LoggedOutError('logged_out', 'the session ended and a new login failed: ' + e.message,
          { status: e.status, retryAfter: e.retryAfter, cause: e })
      })
    })
  }

  /** Inside the lock: a login with a fresh host code, once more on invalid_code. */
  _login() {
    const self = this
    function attempt(n) {
      return self._hostLogin().then(function (cred) {
        const body = { app: self.app }
        if (cred.code) body.code = cred.code
        if (cred.anonymousCode) body.anonymous_code = cred.anonymousCode
        return self._call('POST', '/v1/login', body, null)
      }).then(function (res) {
        self._accept(self._json(res), 'logged-in')
      }).catch(function (e) {
        if (n === 0 && e instanceof MploginError && e.code === 'invalid_code') return attempt(1)
        throw e
      })
    }
    return attempt(0)
  }

  _hostLogin() {
    let p
    try {
      p = Promise.resolve(this.host.login())
    } catch (e) {
      p = Promise.reject(e)
    }
    return p.then(function (cred) {
      if (!cred || (!cred.code && !cred.anonymousCode)) throw new Error('the host login gave no code')
      return cred
    }).catch(function (e) {
      const msg = e && (e.errMsg || e.errorMessage || e.message)
      throw new HostLoginError('host_login_failed', 'the host login failed' + (msg ? ': ' + msg : ''), { cause: e })
    })
  }

  /** Inside the lock: POST /v1/token with the stored refresh token. */
  _refresh() {
    const self = this
    const body = { grant_type: 'refresh_token', refresh_token: this._tokens.refreshToken }
    return this._call('POST', '/v1/token', body, null).then(function (res) {
      self._accept(self._json(res), 'refreshed')
    })
  }

  /** Stores a token response, on the local clock at receipt. */
  _accept(d, state) {
    if (!d || typeof d.access_token !== 'string' || typeof d.refresh_token !== 'string' ||
      typeof d.expires_in !== 'number' || typeof d.refresh_expires_in !== 'number' || !isUser(d.user)) {
      throw new MploginError('invalid_response', 'mplogin answered an unexpected token response')
    }
    this._setTokens({
      accessToken: d.access_token, refreshToken: d.refresh_token, receivedAt: this._now(),
      expiresIn: d.expires_in, refreshExpiresIn: d.refresh_expires_in, user: userOf(d.user),
    })
    this._emit(state)
  }

  /**
   * Sends with a token; a 401 is retried once: with the current token if another
   * call renewed it meanwhile, else after one refresh (or re-login).
   */
  _withToken(allowLogin, send) {
    const self = this
    return this._ready.then(function () {
      return self._token(allowLogin, null)
    }).then(function (token) {
      return send(token).then(function (res) {
        if (res.statusCode !== 401) return res
        return self._token(allowLogin, token).then(send)
      })
    })
  }

  _authedJSON(method, path, body) {
    const self = this
    return this._withToken(false, function (token) { return self._call(method, path, body, token) })
      .then(function (res) { return self._json(res) })
  }

  /**
   * One call to mplogin. A 429 or 503 whose Retry-After is at most maxRetryWait
   * seconds is sent again once, after that wait. Rejects only without an answer.
   */
  _call(method, path, body, token) {
    const self = this
    const header = {}
    if (body !== undefined) header['Content-Type'] = 'application/json'
    if (token) header.Authorization = 'Bearer ' + token
    const opts = {
      url: this.baseURL + path, method: method, header: header, timeout: this.timeout,
      data: body === undefined ? undefined : JSON.stringify(body),
    }
    function send(waited) {
      return self._hostRequest(opts).then(function (res) {
        if (!waited && (res.statusCode === 429 || res.statusCode === 503)) {
          const ra = parseRetryAfter(headerValue(res.header, 'Retry-After'), self._now())
          if (ra !== undefined && ra <= self.maxRetryWait) {
            return self._sleep(ra * 1000).then(function () { return send(true) })
          }
        }
        return res
      })
    }
    return send(false)
  }

  _hostRequest(opts) {
    let p
    try {
      p = Promise.resolve(this.host.request(opts))
    } catch (e) {
      p = Promise.reject(e)
    }
    return p.then(function (res) {
      if (!res || typeof res.statusCode !== 'number') {
        throw new NetworkError('network_error', 'the request got no answer')
      }
      return { statusCode: res.statusCode, data: parseBody(res.data), header: res.header || {} }
    }, function (e) {
      const msg = e && (e.errMsg || e.errorMessage || e.message)
      throw new NetworkError('network_error', 'the request got no answer' + (msg ? ': ' + msg : ''), { cause: e })
    })
  }

  /** The body of a 2xx answer from mplogin, or its error as a typed error. */
  _json(res) {
    if (res.statusCode >= 200 && res.statusCode < 300) return res.data
    const d = res.data
    let code = 'http_' + res.statusCode
    let message = 'mplogin answered HTTP ' + res.statusCode
    if (d && typeof d === 'object' && typeof d.error === 'string') {
      code = d.error
      if (typeof d.message === 'string') message = d.message
    } else if (d && typeof d === 'object' && d.error && typeof d.error.code === 'string') {
      code = d.error.code
      if (typeof d.error.message === 'string') message = d.error.message
    }
    const info = {
      status: res.statusCode,
      retryAfter: parseRetryAfter(headerValue(res.header, 'Retry-After'), this._now()),
      requestId: headerValue(res.header, 'X-Request-Id'),
    }
    if (code === 'user_blocked') throw new UserBlockedError(code, message, info)
    throw new MploginError(code, message, info)
  }
}

/**
 * Creates a client.
 * @param {import('../index').ClientOptions} options
 * @returns {Client}
 */
function createClient(options) {
  return new Client(options)
}

module.exports = {
  createClient: createClient,
  Client: Client,
  MploginError: MploginError,
  UserBlockedError: UserBlockedError,
  LoggedOutError: LoggedOutError,
  NetworkError: NetworkError,
  HostLoginError: HostLoginError,
  adapters: hosts.adapters,
}
