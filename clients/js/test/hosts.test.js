'use strict'
const test = require('node:test')
const assert = require('node:assert/strict')
const { createClient, adapters, NetworkError } = require('..')
const { fakeClock, FakeServer, callbackHost, alipayHost, promiseHost, err } = require('./fakes.js')

const BASE = 'https://login.example.com'

function client(host, extra) {
  return createClient(Object.assign({ baseURL: BASE, app: 'shop', host }, extra))
}

/** A login, a request, a stored session picked up by a second client, a logout. */
async function roundTrip(server, host, make) {
  const auth = client(host)
  const user = await auth.login()
  assert.equal(user.id, 'u1')
  const res = await auth.request({ url: '/orders', method: 'POST', data: { a: 1 } })
  assert.equal(res.statusCode, 200)
  assert.deepEqual(res.data.got, { a: 1 })
  assert.equal(typeof res.header, 'object')
  const again = client(make())
  assert.deepEqual(again.user, user, 'the session was stored and is read back')
  server.scripts.api = [() => err(404, 'nope', 'not found')]
  assert.equal((await auth.request({ url: '/missing' })).statusCode, 404)
  await auth.logout()
  assert.equal(client(make()).user, null)
  return auth
}

for (const kind of ['wx', 'qq', 'ks']) {
  test(kind + ': login gives code; callbacks wrapped', async () => {
    const server = new FakeServer(fakeClock())
    const store = new Map()
    const host = callbackHost(server, { store })
    await roundTrip(server, adapters[kind](host), () => adapters[kind](callbackHost(server, { store })))
    assert.equal(host.logins.length, 1)
  })
}

test('swan: getLoginCode where present', async () => {
  const server = new FakeServer(fakeClock())
  const store = new Map()
  const swan = callbackHost(server, { kind: 'swan', store })
  await roundTrip(server, swan, () => callbackHost(server, { kind: 'swan', store }))
  assert.equal(swan.loginCodes, 1)
  assert.equal(swan.logins.length, 0)
})

test('swan: the deprecated login without getLoginCode', async () => {
  const server = new FakeServer(fakeClock())
  const swan = callbackHost(server)
  const auth = client(swan, { hostName: 'swan' })
  assert.equal(auth.hostName, 'swan')
  await auth.login()
  assert.equal(swan.logins.length, 1)
})

test('tt: silent login (force: false); code when logged in to Douyin', async () => {
  const server = new FakeServer(fakeClock())
  const tt = callbackHost(server, { kind: 'tt' })
  await client(tt, { hostName: 'tt' }).login()
  assert.equal(tt.logins[0].force, false)
  assert.ok(server.calls[0].body.code)
})

test('tt: only an anonymousCode goes as anonymous_code', async () => {
  const server = new FakeServer(fakeClock())
  const tt = callbackHost(server, { kind: 'tt', ttLoggedIn: false })
  await client(adapters.tt(tt)).login()
  const body = server.calls[0].body
  assert.deepEqual(Object.keys(body).sort(), ['anonymous_code', 'app'])
  assert.match(body.anonymous_code, /^anon-/)
})

test('tt: a logged-in user\'s code goes with the anonymousCode, to upgrade the anonymous user', async () => {
  const server = new FakeServer(fakeClock())
  const tt = callbackHost(server, { kind: 'tt', ttBothCodes: true })
  await client(adapters.tt(tt)).login()
  const body = server.calls[0].body
  assert.deepEqual(Object.keys(body).sort(), ['anonymous_code', 'app', 'code'])
  assert.match(body.anonymous_code, /^anon-/)
  assert.ok(body.code && !body.code.startsWith('anon-'))
})

test('my (Alipay): getAuthCode auth_base, headers/status, fail with error 19, storage {key, data}', async () => {
  const server = new FakeServer(fakeClock())
  const store = new Map()
  const my = alipayHost(server, { store })
  const auth = await roundTrip(server, my, () => alipayHost(server, { store }))
  assert.equal(auth.hostName, 'my')
  assert.deepEqual(my.authCodes.map((o) => o.scopes), ['auth_base'])
  assert.equal(server.calls[0].header['Content-Type'], 'application/json')
  // An error answer reaches the client through fail (error 19) with its status.
  server.scripts.login = [() => err(403, 'user_blocked', 'blocked')]
  await assert.rejects(auth.login(), (e) => e.code === 'user_blocked' && e.status === 403)
  server.down = true
  await assert.rejects(auth.login(), NetworkError)
})

test('uni: Promise-returning APIs', async () => {
  const server = new FakeServer(fakeClock())
  const store = new Map()
  const uni = promiseHost(server, { store })
  await roundTrip(server, uni, () => promiseHost(server, { store }))
  assert.equal(uni.logins, 1)
})

test('uni (Vue 2 runtime): promises of [err, res]', async () => {
  const server = new FakeServer(fakeClock())
  const store = new Map()
  const uni = promiseHost(server, { store, vue2: true })
  await roundTrip(server, adapters.uni(uni), () => adapters.uni(promiseHost(server, { store, vue2: true })))
  server.down = true
  await assert.rejects(client(adapters.uni(uni), { storageKey: 'other' }).login(), NetworkError)
})

test('Taro: Promise-returning APIs', async () => {
  const server = new FakeServer(fakeClock())
  const store = new Map()
  const Taro = Object.assign(promiseHost(server, { store }), { getEnv() { return 'WEAPP' }, ENV_TYPE: { WEAPP: 'WEAPP' } })
  const auth = await roundTrip(server, Taro, () => promiseHost(server, { store }))
  assert.equal(auth.hostName, 'Taro')
})

test('a custom adapter', async () => {
  const server = new FakeServer(fakeClock())
  const kv = new Map()
  let t = 5000
  const adapter = {
    login: async () => ({ code: server.mint() }),
    request: async (o) => server.handle(o),
    getStorage: async (k) => kv.get(k),
    setStorage: async (k, v) => { kv.set(k, v) },
    removeStorage: async (k) => { kv.delete(k) },
    now: () => t,
  }
  const auth = client(adapter)
  assert.equal(auth.hostName, 'custom')
  await auth.login()
  assert.equal(JSON.parse(kv.get('mplogin:shop')).receivedAt, 5000, 'the adapter clock is used')
  assert.equal((await auth.request({ url: '/x' })).statusCode, 200)
  const again = client(adapter)
  assert.equal(again.user, null, 'asynchronous storage is read before the first call')
  assert.equal((await again.checkSession()).active, true)
  assert.equal(server.count('login'), 1)
})

function withGlobals(globals, fn) {
  const saved = {}
  for (const k of Object.keys(globals)) {
    saved[k] = Object.getOwnPropertyDescriptor(globalThis, k)
    globalThis[k] = globals[k]
  }
  try {
    return fn()
  } finally {
    for (const k of Object.keys(globals)) {
      if (saved[k]) Object.defineProperty(globalThis, k, saved[k])
      else delete globalThis[k]
    }
  }
}

test('detection from globals: uni over the native global, qq and ks over wx', () => {
  const server = new FakeServer(fakeClock())
  const make = () => callbackHost(server)
  const cases = [
    [{ wx: make() }, 'wx'],
    [{ swan: make() }, 'swan'],
    [{ tt: make() }, 'tt'],
    [{ my: alipayHost(server) }, 'my'],
    [{ uni: promiseHost(server), wx: make() }, 'uni'],
    [{ Taro: promiseHost(server), wx: make() }, 'Taro'],
    [{ qq: make(), wx: make() }, 'qq'],
    [{ ks: make(), wx: make() }, 'ks'],
  ]
  for (const [globals, want] of cases) {
    withGlobals(globals, () => {
      assert.equal(createClient({ baseURL: BASE, app: 'shop' }).hostName, want)
      // A global passed as host is known by identity.
      assert.equal(createClient({ baseURL: BASE, app: 'shop', host: globals[want] }).hostName, want)
    })
  }
  assert.throws(() => createClient({ baseURL: BASE, app: 'shop' }), /no mini-program host/)
  assert.throws(() => createClient({ baseURL: BASE, app: 'shop', host: make(), hostName: 'nope' }), /unknown host name/)
})

test('a host login that fails is a HostLoginError', async () => {
  const server = new FakeServer(fakeClock())
  const wx = callbackHost(server)
  wx.loginFails = true
  await assert.rejects(client(wx).login(), (e) => e.name === 'HostLoginError' && e.code === 'host_login_failed' && /login:fail/.test(e.message))
})
