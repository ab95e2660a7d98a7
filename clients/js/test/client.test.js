'use strict'
const test = require('node:test')
const assert = require('node:assert/strict')
const { createClient, MploginError, UserBlockedError, LoggedOutError, NetworkError, HostLoginError } = require('..')
const { fakeClock, FakeServer, callbackHost, err } = require('./fakes.js')

const BASE = 'https://login.example.com'

function setup(opts) {
  opts = opts || {}
  const clock = opts.clock || fakeClock()
  const server = opts.server || new FakeServer(clock, opts)
  const wx = callbackHost(server, opts)
  const auth = createClient(Object.assign({ baseURL: BASE, app: 'shop', host: wx, now: clock.now, sleep: clock.sleep }, opts.client))
  const events = []
  auth.onChange((e) => events.push(e.state))
  return { clock, server, wx, auth, events }
}

test('login: a fresh host code to POST /v1/login; the user; tokens stored', async () => {
  const { server, wx, auth, events } = setup()
  assert.equal(auth.user, null)
  const user = await auth.login()
  assert.deepEqual(user, { id: 'u1', openid: 'o1', unionid: 'un1' })
  assert.deepEqual(auth.user, user)
  assert.equal(wx.logins.length, 1)
  const call = server.calls[0]
  assert.equal(call.route, 'login')
  assert.deepEqual(Object.keys(call.body).sort(), ['app', 'code'])
  assert.equal(call.body.app, 'shop')
  assert.equal(call.header['Content-Type'], 'application/json')
  assert.deepEqual(events, ['logged-in'])
  const stored = JSON.parse(wx.store.get('mplogin:shop'))
  assert.equal(stored.refreshToken.startsWith('mpr_'), true)
  assert.equal(JSON.stringify(stored).includes(call.body.code), false, 'the code is never stored')
})

test('login: a session that can still be refreshed is kept; force logs in anew', async () => {
  const { wx, auth } = setup()
  await auth.login()
  await auth.login()
  assert.equal(wx.logins.length, 1)
  await auth.login({ force: true })
  assert.equal(wx.logins.length, 2)
})

test('storage: a new client picks up the stored session at once, without a host login', async () => {
  const a = setup()
  await a.auth.login()
  const b = setup({ clock: a.clock, server: a.server, store: a.wx.store })
  assert.deepEqual(b.auth.user, a.auth.user)
  const res = await b.auth.request({ url: '/orders' })
  assert.equal(res.statusCode, 200)
  assert.equal(b.wx.logins.length, 0)
})

test('storage: a stored session past its refresh expiry is dropped at start', async () => {
  const a = setup()
  await a.auth.login()
  a.clock.advance(2592000 * 1000)
  const b = setup({ clock: a.clock, server: a.server, store: a.wx.store })
  assert.equal(b.auth.user, null)
  assert.equal(a.wx.store.has('mplogin:shop'), false)
})

test('request: a missing url rejects', async () => {
  const { auth } = setup()
  await assert.rejects(auth.request({}), TypeError)
})

test('storage: unreadable or foreign data means logged out', async () => {
  const store = new Map([['mplogin:shop', '{not json']])
  const { auth } = setup({ store })
  assert.equal(auth.user, null)
  store.set('mplogin:shop', JSON.stringify({ v: 99 }))
  assert.equal(setup({ store }).auth.user, null)
})

test('request: relative urls join baseURL, absolute ones are kept, Authorization is set', async () => {
  const { server, auth } = setup()
  const res = await auth.request({ url: 'orders', method: 'post', data: { n: 1 }, header: { authorization: 'x', 'X-A': 'b' } })
  assert.equal(res.statusCode, 200)
  assert.deepEqual(res.data, { path: '/orders', got: { n: 1 } })
  const call = server.calls.at(-1)
  assert.equal(call.url, BASE + '/orders')
  assert.equal(call.method, 'POST')
  assert.match(call.header.Authorization, /^Bearer mpa_/)
  assert.equal(call.header.authorization, undefined)
  assert.equal(call.header['X-A'], 'b')
  await auth.request({ url: 'https://api.example.com/v2/cart' })
  assert.equal(server.calls.at(-1).url, 'https://api.example.com/v2/cart')
  await auth.request({ url: '/a/b' })
  assert.equal(server.calls.at(-1).url, BASE + '/a/b')
})

test('one at a time: 20 concurrent requests with an expired access token make one refresh', async () => {
  const { clock, server, auth, events } = setup()
  await auth.login()
  clock.advance(7200 * 1000)
  const results = await Promise.all(Array.from({ length: 20 }, (_, i) => auth.request({ url: '/item/' + i })))
  assert.equal(server.count('token'), 1)
  assert.equal(server.count('login'), 1)
  assert.equal(server.count('api'), 20)
  for (const r of results) assert.equal(r.statusCode, 200)
  assert.deepEqual(events, ['logged-in', 'refreshed'])
})

test('one at a time: 20 concurrent first requests make one host login and one POST /v1/login', async () => {
  const { server, wx, auth } = setup()
  const results = await Promise.all(Array.from({ length: 20 }, () => auth.request({ url: '/x' })))
  assert.equal(wx.logins.length, 1)
  assert.equal(server.count('login'), 1)
  for (const r of results) assert.equal(r.statusCode, 200)
})

test('proactive refresh: a little before expiry, not earlier', async () => {
  const { clock, server, auth } = setup()
  await auth.login()
  clock.advance((7200 - 61) * 1000)
  await auth.getAccessToken()
  assert.equal(server.count('token'), 0)
  clock.advance(2000) // within the last minute
  await auth.getAccessToken()
  assert.equal(server.count('token'), 1)
})

test('refresh expiry is tracked apart: an expired refresh token means a new login, not a refresh', async () => {
  const { clock, server, wx, auth, events } = setup({ refreshTTL: 3600 * 3 })
  await auth.login()
  clock.advance(3600 * 3 * 1000)
  const res = await auth.request({ url: '/x' })
  assert.equal(res.statusCode, 200)
  assert.equal(server.count('token'), 0)
  assert.equal(wx.logins.length, 2)
  assert.deepEqual(events, ['logged-in', 'logged-in'])
})

test('a clock set back makes the tokens count as expired', async () => {
  const { clock, server, auth } = setup()
  await auth.login()
  clock.advance(-1000)
  await auth.getAccessToken()
  assert.equal(server.count('token'), 0, 'the refresh token cannot be judged either: log in again')
  assert.equal(server.count('login'), 2)
})

test('401: refresh once and retry once with the new token', async () => {
  const { server, auth } = setup()
  const first = await auth.getAccessToken()
  server.access.get(first).exp = 0 // the server no longer takes it
  const res = await auth.request({ url: '/x' })
  assert.equal(res.statusCode, 200)
  assert.equal(server.count('token'), 1)
  const api = server.calls.filter((c) => c.route === 'api')
  assert.equal(api.length, 2)
  assert.equal(api[0].auth, 'Bearer ' + first)
  assert.notEqual(api[1].auth, api[0].auth)
})

test('401: never a loop', async () => {
  const { server, auth } = setup()
  await auth.login()
  server.api = () => err(401, 'invalid_token', 'no')
  const res = await auth.request({ url: '/x' })
  assert.equal(res.statusCode, 401)
  assert.equal(server.count('api'), 2)
  assert.equal(server.count('token'), 1)
})

test('401: a token already replaced is retried with the current one, without a refresh', async () => {
  const { server, auth } = setup()
  const old = await auth.getAccessToken()
  server.access.get(old).exp = 0
  // 20 requests carrying the same rejected token: one refresh for all.
  const results = await Promise.all(Array.from({ length: 20 }, () => auth.request({ url: '/x' })))
  for (const r of results) assert.equal(r.statusCode, 200)
  assert.equal(server.count('token'), 1)
  // A request that got a 401 for a token replaced meanwhile: the current token, no refresh.
  const current = await auth.getAccessToken()
  let sent = 0
  server.scripts.api = [(req) => (sent++ === 0 ? err(401, 'invalid_token', 'stale') : undefined)]
  const tokenCalls = server.count('token')
  const res = await auth.request({ url: '/y' })
  assert.equal(res.statusCode, 200)
  assert.equal(server.count('token'), tokenCalls + 1, 'the token that got the 401 was current: one refresh')
  server.scripts.api = [(req) => {
    // Answer 401 for the old token, after another request renewed the session meanwhile.
    server.scripts.api = []
    return err(401, 'invalid_token', 'stale')
  }]
  const before = server.count('token')
  const p = auth.request({ url: '/z' })
  await new Promise((r) => setImmediate(r))
  await auth.login({ force: true }) // the session changes while the 401 is on its way
  const res2 = await p
  assert.equal(res2.statusCode, 200)
  assert.equal(server.count('token'), before, 'no refresh: the 401 was for a token no longer current')
  assert.notEqual(current, await auth.getAccessToken())
})

test('invalid_grant: clear, log in again silently once, retry the request', async () => {
  const { server, wx, auth, events } = setup()
  await auth.login()
  server.revokeAll()
  const res = await auth.request({ url: '/x' })
  assert.equal(res.statusCode, 200)
  assert.equal(wx.logins.length, 2)
  assert.equal(server.count('token'), 1)
  assert.equal(server.count('api'), 2)
  assert.deepEqual(events, ['logged-in', 'logged-in'])
})

test('invalid_grant and a failed re-login: logged-out and a LoggedOutError, tokens cleared', async () => {
  const { server, wx, auth, events } = setup()
  await auth.login()
  server.revokeAll()
  wx.loginFails = true
  await assert.rejects(auth.request({ url: '/x' }), (e) => {
    assert.ok(e instanceof LoggedOutError)
    assert.ok(e instanceof MploginError)
    assert.equal(e.code, 'logged_out')
    assert.ok(e.cause instanceof HostLoginError)
    return true
  })
  assert.equal(wx.logins.length, 2, 'one silent login, not more')
  assert.deepEqual(events, ['logged-in', 'logged-out'])
  assert.equal(auth.user, null)
  assert.equal(wx.store.has('mplogin:shop'), false)
})

test('invalid_code is retried once with a new code', async () => {
  const { server, wx, auth } = setup()
  server.scripts.login = [() => err(401, 'invalid_code', 'used')]
  await auth.login()
  assert.equal(wx.logins.length, 2)
  const codes = server.calls.filter((c) => c.route === 'login').map((c) => c.body.code)
  assert.equal(codes.length, 2)
  assert.notEqual(codes[0], codes[1])
})

test('invalid_code twice rejects; no third host login', async () => {
  const { server, wx, auth, events } = setup()
  server.scripts.login = [() => err(401, 'invalid_code', 'a'), () => err(401, 'invalid_code', 'b')]
  await assert.rejects(auth.login(), (e) => e instanceof MploginError && e.code === 'invalid_code' && e.status === 401)
  assert.equal(wx.logins.length, 2)
  assert.deepEqual(events, [])
})

test('503 with Retry-After: waits the given seconds once, then succeeds', async () => {
  const { clock, server, wx, auth } = setup()
  server.scripts.login = [() => err(503, 'platform_unavailable', 'busy', { 'Retry-After': '2' })]
  await auth.login()
  assert.deepEqual(clock.sleeps, [2000])
  assert.equal(server.count('login'), 2)
  assert.equal(wx.logins.length, 1, 'the wait reuses the code of the same login')
})

test('429/503: at most one wait, then an error carrying retryAfter', async () => {
  const { clock, server, auth } = setup()
  const busy = () => err(503, 'store_unavailable', 'down', { 'retry-after': '1' })
  server.scripts.login = [busy, busy, busy]
  await assert.rejects(auth.login(), (e) => e instanceof MploginError && e.code === 'store_unavailable' && e.status === 503 && e.retryAfter === 1)
  assert.equal(server.count('login'), 2)
  assert.deepEqual(clock.sleeps, [1000])
})

test('429 with a Retry-After beyond maxRetryWait rejects at once', async () => {
  const { clock, server, auth } = setup()
  server.scripts.login = [() => err(429, 'rate_limited', 'slow down', { 'Retry-After': '60' })]
  await assert.rejects(auth.login(), (e) => e.code === 'rate_limited' && e.status === 429 && e.retryAfter === 60)
  assert.equal(server.count('login'), 1)
  assert.deepEqual(clock.sleeps, [])
})

test('a refresh answered 503 waits once and keeps the session', async () => {
  const { clock, server, auth } = setup()
  await auth.login()
  clock.advance(7200 * 1000)
  server.scripts.token = [() => err(503, 'store_unavailable', 'down', { 'Retry-After': '1' })]
  const res = await auth.request({ url: '/x' })
  assert.equal(res.statusCode, 200)
  assert.equal(server.count('token'), 2)
})

test('network errors never clear tokens', async () => {
  const { clock, server, wx, auth, events } = setup()
  await auth.login()
  clock.advance(7200 * 1000)
  server.down = true
  await assert.rejects(auth.request({ url: '/x' }), (e) => e instanceof NetworkError && e.code === 'network_error' && e.status === 0)
  assert.notEqual(auth.user, null)
  assert.ok(wx.store.has('mplogin:shop'))
  assert.deepEqual(events, ['logged-in'])
  server.down = false
  const res = await auth.request({ url: '/x' })
  assert.equal(res.statusCode, 200)
  assert.equal(wx.logins.length, 1)
})

test('a failed proactive refresh still serves an unexpired access token', async () => {
  const { clock, server, auth } = setup()
  const tok = await auth.getAccessToken()
  clock.advance((7200 - 30) * 1000)
  server.scripts.token = [() => err(500, 'internal_error', 'internal error')]
  assert.equal(await auth.getAccessToken(), tok)
})

test('user_blocked rejects with UserBlockedError', async () => {
  const { server, auth } = setup()
  server.scripts.login = [() => err(403, 'user_blocked', 'blocked')]
  await assert.rejects(auth.login(), (e) => e instanceof UserBlockedError && e.code === 'user_blocked' && e.status === 403)
})

test('host checkSession is never called; checkSession asks mplogin and never logs in', async () => {
  const { server, wx, auth, events } = setup()
  assert.deepEqual(await auth.checkSession(), { active: false })
  assert.equal(server.calls.length, 0)
  await auth.login()
  const s = await auth.checkSession()
  assert.equal(s.active, true)
  assert.equal(server.calls.at(-1).route, 'session')
  await auth.checkSession({ verifyPlatform: true })
  assert.match(server.calls.at(-1).url, /\/v1\/session\?verify=platform$/)
  server.revokeAll()
  assert.deepEqual(await auth.checkSession(), { active: false })
  assert.equal(wx.logins.length, 1)
  assert.equal(wx.checkSessions, 0)
  assert.deepEqual(events, ['logged-in', 'logged-out'])
  assert.equal(auth.user, null)
})

test('decrypt and phone: the API bodies; no new login when the session is gone', async () => {
  const { server, wx, auth } = setup()
  await auth.login()
  const d = await auth.decrypt({ encryptedData: 'ed', iv: 'iv', rawData: 'rd', signature: 'sig' })
  assert.deepEqual(d, { nickName: 'alice', got: { encrypted_data: 'ed', iv: 'iv', raw_data: 'rd', signature: 'sig' } })
  const p = await auth.phone({ code: 'pc', encryptedData: 'x', iv: 'y', errMsg: 'getPhoneNumber:ok' })
  assert.deepEqual(p.got, { code: 'pc' })
  assert.equal(p.phone_number, '13800000000')
  assert.deepEqual((await auth.phone({ encryptedData: 'x', iv: 'y' })).got, { encrypted_data: 'x', iv: 'y' })
  assert.deepEqual((await auth.phone('pc2')).got, { code: 'pc2' })
  server.scripts.decrypt = [() => err(422, 'decrypt_failed', 'no')]
  await assert.rejects(auth.decrypt({ encrypted_data: 'a', iv: 'b' }), (e) => e.code === 'decrypt_failed' && e.status === 422)
  server.revokeAll()
  await assert.rejects(auth.decrypt({ encryptedData: 'ed', iv: 'iv' }), (e) => e instanceof LoggedOutError)
  assert.equal(wx.logins.length, 1, 'a new host login would change the session key the payload was made with')
})

test('logout: POST /v1/logout with the token, then the stored tokens go', async () => {
  const { server, wx, auth, events } = setup()
  const tok = await auth.getAccessToken()
  await auth.logout()
  const call = server.calls.at(-1)
  assert.equal(call.route, 'logout')
  assert.equal(call.auth, 'Bearer ' + tok)
  assert.equal(call.body, undefined)
  assert.equal(auth.user, null)
  assert.equal(wx.store.has('mplogin:shop'), false)
  assert.deepEqual(events, ['logged-in', 'logged-out'])
  await auth.logout() // nothing to do
  assert.equal(server.count('logout'), 1)
  await auth.login()
  await auth.logout({ all: true })
  assert.deepEqual(server.calls.at(-1).body, { all: true })
})

test('logout without an answer still clears locally, and rejects', async () => {
  const { server, auth, events } = setup()
  await auth.login()
  server.down = true
  await assert.rejects(auth.logout(), NetworkError)
  assert.equal(auth.user, null)
  assert.deepEqual(events, ['logged-in', 'logged-out'])
})

test('onChange: the event carries the user; off() stops it', async () => {
  const { clock, auth } = setup()
  const seen = []
  const off = auth.onChange((e) => seen.push(e))
  auth.onChange(() => { throw new Error('a listener failing is its own business') })
  await auth.login()
  assert.deepEqual(seen, [{ state: 'logged-in', user: { id: 'u1', openid: 'o1', unionid: 'un1' } }])
  off()
  clock.advance(7200 * 1000)
  await auth.getAccessToken()
  assert.equal(seen.length, 1)
})

test('error bodies of the nested shape are read too', async () => {
  const { server, auth } = setup()
  server.scripts.login = [() => ({ statusCode: 400, data: { error: { code: 'unknown_app', message: 'no such app' } }, header: {} })]
  await assert.rejects(auth.login(), (e) => e.code === 'unknown_app' && e.message === 'no such app')
  server.scripts.login = [() => ({ statusCode: 502, data: '<html>bad gateway</html>', header: {} })]
  await assert.rejects(auth.login(), (e) => e.code === 'http_502' && e.status === 502)
})

test('createClient checks its options', () => {
  assert.throws(() => createClient({ app: 'x', host: callbackHost(new FakeServer(fakeClock())) }), /baseURL/)
  assert.throws(() => createClient({ baseURL: BASE, host: callbackHost(new FakeServer(fakeClock())) }), /app/)
})
