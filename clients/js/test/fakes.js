'use strict'
// Test doubles: a fake clock, an in-memory mplogin, and fake host objects shaped as
// each host shapes its API.

/** A clock the test moves by hand; sleep() records the wait and moves the clock. */
function fakeClock(start) {
  const c = {
    t: start === undefined ? 1700000000000 : start,
    sleeps: [],
    now() { return c.t },
    advance(ms) { c.t += ms },
    sleep(ms) {
      c.sleeps.push(ms)
      c.t += ms
      return Promise.resolve()
    },
  }
  return c
}

/** Settles on a later turn of the event loop, as a real answer would. */
function later() {
  return new Promise((resolve) => setImmediate(resolve))
}

let seq = 0

/**
 * An in-memory mplogin with the real API's routes, bodies and errors. scripts[route]
 * holds functions tried first for a request to that route ('login', 'token',
 * 'session', 'logout', 'decrypt', 'phone', 'api'); one returning an answer is used
 * and dropped.
 */
class FakeServer {
  constructor(clock, opts) {
    opts = opts || {}
    this.clock = clock
    this.accessTTL = opts.accessTTL || 7200
    this.refreshTTL = opts.refreshTTL || 2592000
    this.codes = new Set()
    this.access = new Map() // token -> {sid, exp}
    this.refresh = new Map() // token -> {sid, exp, spent}
    this.sessions = new Map() // sid -> {user, revoked}
    this.calls = [] // {route, method, url, body, auth}
    this.scripts = {}
    this.down = false // every request fails without an answer
  }

  count(route) {
    return this.calls.filter((c) => c.route === route).length
  }

  mint(prefix) {
    seq++
    const code = (prefix || 'code-') + seq
    this.codes.add(code)
    return code
  }

  revokeAll() {
    for (const s of this.sessions.values()) s.revoked = true
  }

  issue(sid) {
    seq++
    const a = 'mpa_' + seq
    const r = 'mpr_' + seq
    const now = this.clock.now()
    this.access.set(a, { sid, exp: now + this.accessTTL * 1000 })
    this.refresh.set(r, { sid, exp: now + this.refreshTTL * 1000, spent: false })
    const s = this.sessions.get(sid)
    return {
      access_token: a, token_type: 'Bearer', expires_in: this.accessTTL,
      refresh_token: r, refresh_expires_in: this.refreshTTL, user: Object.assign({ created: false }, s.user),
    }
  }

  authed(header) {
    const h = header || {}
    const v = h.Authorization || h.authorization || ''
    const tok = v.replace(/^Bearer /, '')
    const a = this.access.get(tok)
    if (!a || a.exp <= this.clock.now()) return null
    const s = this.sessions.get(a.sid)
    return s && !s.revoked ? s : null
  }

  handle(req) {
    const u = new URL(req.url)
    const body = typeof req.data === 'string' && req.data !== '' ? JSON.parse(req.data) : req.data
    const routes = {
      'POST /v1/login': 'login', 'POST /v1/token': 'token', 'GET /v1/session': 'session',
      'POST /v1/logout': 'logout', 'POST /v1/userdata/decrypt': 'decrypt', 'POST /v1/phone': 'phone',
    }
    const route = routes[req.method + ' ' + u.pathname] || 'api'
    const auth = req.header && (req.header.Authorization || req.header.authorization)
    this.calls.push({ route, method: req.method, url: req.url, body, auth, header: req.header })
    const script = this.scripts[route]
    if (script && script.length) {
      const out = script[0](req, body)
      if (out) {
        script.shift()
        return out
      }
    }
    return this[route](body, req, u)
  }

  login(body) {
    const code = body.code || body.anonymous_code
    if (!this.codes.has(code)) return err(401, 'invalid_code', 'the platform rejected the code')
    this.codes.delete(code)
    seq++
    const sid = 's' + seq
    this.sessions.set(sid, { user: { id: 'u1', openid: 'o1', unionid: 'un1' }, revoked: false })
    return ok(this.issue(sid))
  }

  token(body) {
    const r = this.refresh.get(body.refresh_token)
    if (!r || r.exp <= this.clock.now()) return err(400, 'invalid_grant', 'refresh token unknown or expired')
    const s = this.sessions.get(r.sid)
    if (r.spent) s.revoked = true
    if (s.revoked) return err(400, 'invalid_grant', 'refresh token spent or revoked')
    r.spent = true
    return ok(this.issue(r.sid))
  }

  session(body, req) {
    const s = this.authed(req.header)
    if (!s) return err(401, 'invalid_token', 'bad token')
    return ok({ active: true, app: 'shop', user: s.user, expires_in: 100 })
  }

  logout(body, req) {
    const s = this.authed(req.header)
    if (!s) return err(401, 'invalid_token', 'bad token')
    s.revoked = true
    return { statusCode: 204, data: '', header: {} }
  }

  decrypt(body, req) {
    if (!this.authed(req.header)) return err(401, 'invalid_token', 'bad token')
    return ok({ data: { nickName: 'alice', got: body } })
  }

  phone(body, req) {
    if (!this.authed(req.header)) return err(401, 'invalid_token', 'bad token')
    return ok({ phone_number: '13800000000', pure_phone_number: '13800000000', country_code: '86', got: body })
  }

  api(body, req, u) {
    if (!this.authed(req.header)) return err(401, 'invalid_token', 'bad token')
    return ok({ path: u.pathname, got: body })
  }
}

function ok(data) {
  return { statusCode: 200, data, header: { 'Content-Type': 'application/json' } }
}

function err(status, code, message, header) {
  return { statusCode: status, data: { error: code, message }, header: Object.assign({ 'Content-Type': 'application/json' }, header) }
}

/** Storage as wx-like hosts keep it: '' for a missing key. */
function syncStorage(store) {
  return {
    getStorageSync: (k) => (store.has(k) ? store.get(k) : ''),
    setStorageSync: (k, v) => { store.set(k, v) },
    removeStorageSync: (k) => { store.delete(k) },
  }
}

/**
 * A callback-style host (wx, qq, ks, swan, tt): login/request take success/fail.
 * opts.kind 'swan' adds getLoginCode; 'tt' answers login with only an anonymousCode
 * when opts.ttLoggedIn is false.
 */
function callbackHost(server, opts) {
  opts = opts || {}
  const store = opts.store || new Map()
  const h = Object.assign(syncStorage(store), {
    store,
    logins: [], // the options each login call got
    checkSessions: 0,
    login(o) {
      h.logins.push(Object.assign({}, o))
      later().then(() => {
        if (h.loginFails) return o.fail && o.fail({ errMsg: 'login:fail' })
        if (opts.kind === 'tt' && opts.ttLoggedIn === false) {
          return o.success({ code: '', anonymousCode: server.mint('anon-'), isLogin: false, errMsg: 'login:ok' })
        }
        if (opts.kind === 'tt' && opts.ttBothCodes) {
          return o.success({ code: server.mint(), anonymousCode: server.mint('anon-'), isLogin: true, errMsg: 'login:ok' })
        }
        o.success({ code: server.mint(), errMsg: 'login:ok' })
      })
    },
    checkSession(o) {
      h.checkSessions++
      later().then(() => o.success({ errMsg: 'checkSession:ok' }))
    },
    request(o) {
      later().then(() => {
        if (server.down) return o.fail({ errMsg: 'request:fail timeout' })
        const res = server.handle({ url: o.url, method: o.method || 'GET', data: o.data, header: o.header })
        o.success({ statusCode: res.statusCode, data: res.data, header: res.header, errMsg: 'request:ok' })
      })
      return { abort() {} }
    },
  })
  if (opts.kind === 'swan') {
    h.loginCodes = 0
    h.getLoginCode = function (o) {
      h.loginCodes++
      later().then(() => o.success({ code: server.mint() }))
    }
  }
  return h
}

/** Alipay's my: getAuthCode, request with headers/status, storage with {key, data}. */
function alipayHost(server, opts) {
  opts = opts || {}
  const store = opts.store || new Map()
  const h = {
    store,
    authCodes: [],
    getAuthCode(o) {
      h.authCodes.push(Object.assign({}, o))
      later().then(() => o.success({ authCode: server.mint(), authErrorScopes: {}, authSuccessScopes: ['auth_base'] }))
    },
    request(o) {
      later().then(() => {
        if (server.down) return o.fail({ error: 12, errorMessage: 'network error' })
        const res = server.handle({ url: o.url, method: o.method || 'GET', data: o.data, header: o.headers })
        if (res.statusCode >= 400) {
          return o.fail({ error: 19, errorMessage: 'http status error', status: res.statusCode, data: res.data, headers: res.header })
        }
        o.success({ status: res.statusCode, data: res.data, headers: res.header })
      })
    },
    getStorageSync(o) { return { data: store.has(o.key) ? store.get(o.key) : null } },
    setStorageSync(o) { store.set(o.key, o.data); return { success: true } },
    removeStorageSync(o) { store.delete(o.key); return { success: true } },
  }
  return h
}

/**
 * A Promise-returning host (uni, Taro): login/request return promises and ignore
 * callbacks. opts.vue2 resolves [err, res] as uni-app's Vue 2 runtime does.
 */
function promiseHost(server, opts) {
  opts = opts || {}
  const store = opts.store || new Map()
  const wrap = (p) => (opts.vue2 ? p.then((r) => [null, r], (e) => [e, undefined]) : p)
  const h = Object.assign(syncStorage(store), {
    store,
    logins: 0,
    login() {
      h.logins++
      return wrap(later().then(() => ({ code: server.mint(), errMsg: 'login:ok' })))
    },
    request(o) {
      return wrap(later().then(() => {
        if (server.down) throw Object.assign(new Error('request:fail'), { errMsg: 'request:fail' })
        const res = server.handle({ url: o.url, method: o.method || 'GET', data: o.data, header: o.header })
        return { statusCode: res.statusCode, data: res.data, header: res.header, errMsg: 'request:ok' }
      }))
    },
  })
  return h
}

module.exports = { fakeClock, FakeServer, callbackHost, alipayHost, promiseHost, later, ok, err }
