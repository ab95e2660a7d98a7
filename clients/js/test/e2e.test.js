'use strict'
// End-to-end: the client against the real mplogin binary (serve) and its platform
// emulator (emulate), both on loopback. Needs MPLOGIN_BIN, the path of a built
// mplogin; skipped without it.
const { describe, it, before, after } = require('node:test')
const assert = require('node:assert/strict')
const { spawn } = require('node:child_process')
const crypto = require('node:crypto')
const fs = require('node:fs')
const os = require('node:os')
const path = require('node:path')
const readline = require('node:readline')
const { createClient, MploginError } = require('..')

const BIN = process.env.MPLOGIN_BIN
const WX_APPID = 'wx0123456789abcdef'
const BD_APPKEY = 'y2dTfnWfkx2OXttMEMWlGHoB1KzMogm7'
const TT_APPID = 'tt0123456789abcdef'
// All digits, as QQ's are.
const QQ_APPID = '1109000001'
const KS_APPID = 'ks650123456789abcd'
const ALIPAY_APPID = '2021000123456789'
const ACCESS_TTL = 2 // seconds: sessions_policy.access_ttl below

let dir
let emu // emulator URL
let svc // service URL
// The Alipay app's keys, made in before: its RSA key pair (the gateway verifies the
// app's requests with the public half), its AES key for phone numbers, and the
// gateway's public key, which the service verifies the gateway's answers with.
let alipayKeys
let masterKey
const procs = []
const logs = []
// The processes go with this one, however its tests end.
process.on('exit', () => { for (const p of procs) p.kill('SIGKILL') })

/** Starts the binary and resolves with the first stdout or stderr line for which pick gives a value. */
function start(args, pick) {
  const p = spawn(BIN, args, { stdio: ['ignore', 'pipe', 'pipe'] })
  procs.push(p)
  return new Promise((resolve, reject) => {
    let found = false
    const onLine = (line) => {
      logs.push(line)
      if (found) return
      const v = pick(line)
      if (v) {
        found = true
        resolve(v)
      }
    }
    readline.createInterface({ input: p.stdout }).on('line', onLine)
    readline.createInterface({ input: p.stderr }).on('line', onLine)
    p.on('exit', (code) => {
      if (!found) reject(new Error(`mplogin ${args[0]} exited with ${code}:\n${logs.join('\n')}`))
    })
  })
}

async function control(method, p, body) {
  const res = await fetch(emu + p, {
    method, headers: { 'Content-Type': 'application/json' }, body: body === undefined ? undefined : JSON.stringify(body),
  })
  const text = await res.text()
  if (!res.ok) throw new Error(`${method} ${p}: ${res.status} ${text}`)
  return text ? JSON.parse(text) : undefined
}

// Each host kind's mplogin app and the platform its emulator login mints codes for.
const HOSTS = {
  wx: { app: 'shop-wechat', platform: 'wechat', appid: WX_APPID },
  swan: { app: 'shop-baidu', platform: 'baidu', appid: BD_APPKEY },
  qq: { app: 'shop-qq', platform: 'qq', appid: QQ_APPID },
  ks: { app: 'shop-kuaishou', platform: 'kuaishou', appid: KS_APPID },
  tt: { app: 'shop-douyin', platform: 'douyin', appid: TT_APPID },
  my: { app: 'shop-alipay', platform: 'alipay', appid: ALIPAY_APPID },
}

/**
 * A callback-style host (wx, swan, qq, ks or tt) whose login mints a real code
 * through the emulator's control API and whose request uses fetch. Every request is
 * recorded with its JSON body and answer. A tt host answers as tt.login does:
 * {code, anonymousCode, isLogin: true} while h.douyinLoggedIn, else
 * {code: '', anonymousCode, isLogin: false}.
 * opts.bogusCodes: that many logins give a code the emulator never minted;
 * opts.lose: {path: n} loses the answers of the first n requests to path;
 * opts.douyinLoggedIn: the tt host's user starts logged in to Douyin.
 */
function fakeHost(kind, user, opts) {
  opts = opts || {}
  const store = new Map()
  const h = {
    kind,
    store,
    logins: 0,
    loginOptions: [], // what the client passed to each login
    douyinLoggedIn: !!opts.douyinLoggedIn,
    requests: [], // {method, path, body, status, data}
    getStorageSync: (k) => (store.has(k) ? store.get(k) : ''),
    setStorageSync: (k, v) => { store.set(k, v) },
    removeStorageSync: (k) => { store.delete(k) },
    request(o) {
      const rec = { method: o.method, path: new URL(o.url).pathname }
      if (typeof o.data === 'string') {
        try { rec.body = JSON.parse(o.data) } catch (e) { /* not JSON */ }
      }
      h.requests.push(rec)
      fetch(o.url, { method: o.method, headers: o.header, body: o.data === undefined ? undefined : String(o.data) })
        .then(async (res) => {
          const text = await res.text()
          let data = text
          try { data = JSON.parse(text) } catch (e) { /* not JSON */ }
          rec.status = res.status
          rec.data = data
          if (opts.lose && opts.lose[rec.path] > 0) {
            // The service answered; the answer is lost on the way back.
            opts.lose[rec.path]--
            rec.lost = data
            o.fail({ errMsg: 'request:fail timeout' })
            return
          }
          o.success({ statusCode: res.status, data, header: Object.fromEntries(res.headers), errMsg: 'request:ok' })
        }, (e) => o.fail({ errMsg: 'request:fail ' + e.message }))
    },
  }
  const login = (o) => {
    h.logins++
    h.loginOptions.push(Object.fromEntries(Object.entries(o).filter(([, v]) => typeof v !== 'function')))
    if (opts.bogusCodes > 0) {
      opts.bogusCodes--
      setImmediate(() => o.success({ code: 'never-minted-' + h.logins, errMsg: 'login:ok' }))
      return
    }
    const { platform, appid } = HOSTS[kind]
    const body = { platform, appid, user }
    const isLogin = h.douyinLoggedIn
    if (kind === 'tt' && !isLogin) body.anonymous = true
    control('POST', '/_emulator/login', body).then((r) => {
      if (kind !== 'tt') o.success({ code: r.code, errMsg: 'login:ok' })
      else o.success({ code: isLogin ? r.code : '', anonymousCode: r.anonymous_code, isLogin, errMsg: 'login:ok' })
    }, (e) => o.fail({ errMsg: 'login:fail ' + e.message }))
  }
  if (kind === 'swan') h.getLoginCode = login
  else h.login = login
  return h
}

/**
 * Alipay's my: getAuthCode({scopes}) answers {authCode} with a code the emulator
 * mints; request takes headers and dataType and answers {status, data, headers},
 * failing a non-2xx answer with error 19 that carries it, as Alipay does; storage is
 * getStorageSync({key}) -> {data} and setStorageSync({key, data}). Every request is
 * recorded with the options it was given, its JSON body and its answer.
 */
function alipayHost(user) {
  const store = new Map()
  const h = {
    kind: 'my',
    store,
    logins: 0,
    authOptions: [], // what the client passed to each getAuthCode
    authCodes: [], // the codes given
    requests: [], // {method, path, options, body, status, data}
    getAuthCode(o) {
      h.logins++
      h.authOptions.push(Object.fromEntries(Object.entries(o).filter(([, v]) => typeof v !== 'function')))
      control('POST', '/_emulator/login', { platform: 'alipay', appid: ALIPAY_APPID, user }).then((r) => {
        h.authCodes.push(r.code)
        o.success({ authCode: r.code, authErrorScopes: {}, authSuccessScopes: [o.scopes] })
      }, (e) => o.fail({ error: 11, errorMessage: e.message }))
    },
    request(o) {
      const options = Object.fromEntries(Object.entries(o).filter(([, v]) => typeof v !== 'function'))
      const rec = { method: o.method, path: new URL(o.url).pathname, options }
      if (typeof o.data === 'string') {
        try { rec.body = JSON.parse(o.data) } catch (e) { /* not JSON */ }
      }
      h.requests.push(rec)
      fetch(o.url, { method: o.method, headers: o.headers, body: o.data === undefined ? undefined : String(o.data) })
        .then(async (res) => {
          const text = await res.text()
          let data = text
          try { data = JSON.parse(text) } catch (e) { /* not JSON */ }
          rec.status = res.status
          rec.data = data
          const headers = Object.fromEntries(res.headers)
          if (res.status < 200 || res.status > 299) {
            o.fail({ error: 19, errorMessage: 'http status error', status: res.status, data, headers })
            return
          }
          o.success({ status: res.status, data, headers })
        }, (e) => o.fail({ error: 12, errorMessage: 'network error: ' + e.message }))
    },
    getStorageSync: (o) => ({ data: store.has(o.key) ? store.get(o.key) : null }),
    setStorageSync: (o) => { store.set(o.key, o.data); return { success: true } },
    removeStorageSync: (o) => { store.delete(o.key); return { success: true } },
  }
  return h
}

/**
 * The open_id Alipay's gateway gives the Alipay app for user: a code minted for the
 * user, redeemed at the emulator's gateway in a request signed with the app's key,
 * as the service does, but by this test.
 */
async function gatewayOpenID(user) {
  const { code } = await control('POST', '/_emulator/login', { platform: 'alipay', appid: ALIPAY_APPID, user })
  const params = {
    app_id: ALIPAY_APPID, method: 'alipay.system.oauth.token', charset: 'utf-8', sign_type: 'RSA2',
    timestamp: new Date().toISOString().slice(0, 19).replace('T', ' '), version: '1.0',
    grant_type: 'authorization_code', code,
  }
  const content = Object.keys(params).sort().map((k) => k + '=' + params[k]).join('&')
  params.sign = crypto.sign('sha256', Buffer.from(content), alipayKeys.appPrivate).toString('base64')
  const res = await fetch(emu + '/gateway.do', {
    method: 'POST', headers: { 'Content-Type': 'application/x-www-form-urlencoded;charset=utf-8' },
    body: new URLSearchParams(params).toString(),
  })
  const text = await res.text()
  const answer = JSON.parse(text).alipay_system_oauth_token_response
  assert.ok(answer && answer.open_id, 'the gateway gave no open_id: ' + text)
  return answer.open_id
}

/**
 * What my.getPhoneNumber gives the Alipay app for user (parsed from its response
 * string), and the number in it, checked and read here with the gateway's public key
 * and the app's AES key.
 */
async function alipayPhone(user) {
  const got = await control('POST', '/_emulator/userdata', { platform: 'alipay', appid: ALIPAY_APPID, user, kind: 'phone' })
  assert.deepEqual(Object.keys(got).sort(), ['charset', 'encrypt_type', 'response', 'sign', 'sign_type'])
  const signed = Buffer.from('"' + got.response + '"')
  assert.ok(crypto.verify('sha256', signed, alipayKeys.gateway, Buffer.from(got.sign, 'base64')), 'signed by the gateway')
  const decipher = crypto.createDecipheriv('aes-128-cbc', Buffer.from(alipayKeys.aes, 'base64'), Buffer.alloc(16))
  const plain = JSON.parse(Buffer.concat([decipher.update(got.response, 'base64'), decipher.final()]).toString())
  assert.equal(plain.code, '10000')
  assert.match(plain.mobile, /^1[3-9][0-9]{9}$/)
  return { got, mobile: plain.mobile }
}

/** mplogin's configuration, listing every host's app with its credentials. */
function configYAML(endpoint, alipayPublicKey) {
  const to = endpoint ? `\n    endpoint: ${endpoint}` : ''
  const pem = alipayKeys.appPrivate.trim().split('\n').map((l) => '      ' + l).join('\n')
  return `listen: 127.0.0.1:0
store: sqlite:${path.join(dir, 'mplogin.db')}
master_key: ${masterKey}
log: {level: info, format: json}
rate_limits: {enabled: false}
sessions_policy:
  access_ttl: ${ACCESS_TTL}s
apps:
  - name: shop-wechat
    platform: wechat
    appid: ${WX_APPID}
    secret: s3cret-for-tests${to}
  - name: shop-baidu
    platform: baidu
    app_key: ${BD_APPKEY}
    app_secret: s3cret-for-tests${to}
  - name: shop-douyin
    platform: douyin
    appid: ${TT_APPID}
    secret: s3cret-for-tests${to}
  - name: shop-qq
    platform: qq
    appid: ${QQ_APPID}
    secret: s3cret-for-tests${to}
  - name: shop-kuaishou
    platform: kuaishou
    app_id: ${KS_APPID}
    app_secret: s3cret-for-tests${to}
  - name: shop-alipay
    platform: alipay
    app_id: ${ALIPAY_APPID}
    private_key: |
${pem}
    alipay_public_key: ${alipayPublicKey}
    aes_key: ${alipayKeys.aes}${to}
`
}

function client(host, extra) {
  const auth = createClient(Object.assign({
    baseURL: svc, app: HOSTS[host.kind].app, host, hostName: host.kind,
  }, extra))
  auth.events = []
  auth.onChange((e) => auth.events.push(e.state))
  return auth
}

function count(host, method, p) {
  return host.requests.filter((r) => r.method === method && r.path === p)
}

describe('e2e against the mplogin binary', { skip: !BIN && 'MPLOGIN_BIN is not set (the path of a built mplogin)' }, () => {
  before(async () => {
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'mplogin-js-e2e-'))
    masterKey = crypto.randomBytes(32).toString('base64')
    const app = crypto.generateKeyPairSync('rsa', { modulusLength: 2048 })
    alipayKeys = {
      appPrivate: app.privateKey.export({ type: 'pkcs8', format: 'pem' }),
      aes: crypto.randomBytes(16).toString('base64'),
    }
    // The gateway's key, kept in a file as --alipay-key keeps it across starts.
    const gateway = crypto.generateKeyPairSync('rsa', { modulusLength: 2048 })
    const gatewayKeyFile = path.join(dir, 'alipay-gateway.pem')
    fs.writeFileSync(gatewayKeyFile, gateway.privateKey.export({ type: 'pkcs8', format: 'pem' }), { mode: 0o600 })
    const gatewayPublic = gateway.publicKey.export({ type: 'spki', format: 'der' }).toString('base64')

    // The emulator checks the credentials of every app in its configuration, and
    // learns the Alipay app's public key and AES key from it.
    const emuCfg = path.join(dir, 'emulator.yaml')
    fs.writeFileSync(emuCfg, configYAML(undefined, gatewayPublic), { mode: 0o600 })
    let url
    const hello = await start(['emulate', '--listen', '127.0.0.1:0', '--config', emuCfg, '--alipay-key', gatewayKeyFile], (l) => {
      const m = /mplogin emulator on (http:\/\/\S+) \(credentials checked: (\w+)/.exec(l)
      if (m) url = { url: m[1], checked: m[2] }
      const k = /^alipay gateway public key: (\S+)$/.exec(l)
      return k && url && Object.assign(url, { key: k[1] })
    })
    emu = hello.url
    assert.equal(hello.checked, 'true')
    assert.equal(hello.key, gatewayPublic, 'the gateway signs with the --alipay-key key')
    alipayKeys.gateway = crypto.createPublicKey({ key: Buffer.from(hello.key, 'base64'), format: 'der', type: 'spki' })

    const cfg = path.join(dir, 'mplogin.yaml')
    fs.writeFileSync(cfg, configYAML(emu, hello.key), { mode: 0o600 })
    const addr = await start(['serve', '--config', cfg], (l) => {
      try {
        const j = JSON.parse(l)
        return j.msg === 'serving' && j.addr
      } catch (e) {
        return undefined
      }
    })
    svc = 'http://' + addr
  })

  after(() => {
    for (const p of procs) p.kill('SIGTERM')
    if (dir) fs.rmSync(dir, { recursive: true, force: true })
  })

  it('logs in through wx and checks the session', async () => {
    const wx = fakeHost('wx', 'alice')
    const auth = client(wx)
    const user = await auth.login()
    assert.match(user.id, /^[0-9a-f]{32}$/)
    assert.ok(user.openid)
    assert.equal(wx.logins, 1)
    const s = await auth.checkSession()
    assert.equal(s.active, true)
    assert.equal(s.app, 'shop-wechat')
    assert.equal(s.user.id, user.id)
    assert.deepEqual(auth.events, ['logged-in'])
  })

  it('logs in through swan (getLoginCode) on the Baidu app', async () => {
    const swan = fakeHost('swan', 'bob')
    const auth = client(swan)
    assert.equal(auth.hostName, 'swan')
    const user = await auth.login()
    assert.match(user.id, /^[0-9a-f]{32}$/)
    assert.equal((await auth.checkSession()).app, 'shop-baidu')
    assert.equal(swan.logins, 1)
  })

  for (const h of [
    { kind: 'qq', name: 'QQ', user: 'hana', app: 'shop-qq' },
    { kind: 'ks', name: 'Kuaishou', user: 'ivan', app: 'shop-kuaishou', noUnionid: true },
  ]) {
    it(`logs in through ${h.kind} on the ${h.name} app and checks the session`, async () => {
      const host = fakeHost(h.kind, h.user)
      const auth = client(host)
      assert.equal(auth.hostName, h.kind)
      const user = await auth.login()
      assert.match(user.id, /^[0-9a-f]{32}$/)
      assert.ok(user.openid)
      if (h.noUnionid) assert.equal(user.unionid, '', 'Kuaishou has no unionid')
      assert.equal(host.logins, 1)
      const logins = count(host, 'POST', '/v1/login')
      assert.equal(logins.length, 1)
      assert.deepEqual(Object.keys(logins[0].body).sort(), ['app', 'code'])
      assert.equal(logins[0].data.user.created, true)
      const s = await auth.checkSession()
      assert.equal(s.active, true)
      assert.equal(s.app, h.app)
      assert.equal(s.user.id, user.id)
      assert.equal(s.user.openid, user.openid)
      assert.deepEqual(auth.events, ['logged-in'])
    })
  }

  it('tt: a user not logged in to Douyin is anonymous, and upgraded in place on logging in', async () => {
    const tt = fakeHost('tt', 'jack')
    const auth = client(tt)
    assert.equal(auth.hostName, 'tt')
    const anon = await auth.login()
    assert.deepEqual(tt.loginOptions, [{ force: false }], 'tt.login never shows the login dialog')
    let logins = count(tt, 'POST', '/v1/login')
    assert.equal(logins.length, 1)
    assert.equal(logins[0].status, 200)
    assert.deepEqual(Object.keys(logins[0].body).sort(), ['anonymous_code', 'app'], 'the anonymous code alone')
    const first = logins[0].data.user
    assert.equal(first.anonymous, true)
    assert.equal(first.created, true)
    assert.equal(first.previous_user_id, undefined)
    assert.equal(first.id, anon.id)
    assert.match(anon.openid, /^anonymous:/)
    let s = await auth.checkSession()
    assert.equal(s.app, 'shop-douyin')
    assert.equal(s.user.id, anon.id)

    // The user logs in to Douyin; the app logs in again, and tt.login now gives both codes.
    tt.douyinLoggedIn = true
    const user = await auth.login({ force: true })
    logins = count(tt, 'POST', '/v1/login')
    assert.equal(logins.length, 2)
    assert.equal(logins[1].status, 200)
    assert.deepEqual(Object.keys(logins[1].body).sort(), ['anonymous_code', 'app', 'code'], 'both codes together')
    assert.ok(logins[1].body.code)
    assert.ok(logins[1].body.anonymous_code)
    const upgraded = logins[1].data.user
    assert.equal(upgraded.id, anon.id, 'the anonymous user became the logged-in one')
    assert.equal(upgraded.previous_user_id, anon.id)
    assert.equal('anonymous' in upgraded, false)
    assert.equal(user.id, anon.id)
    assert.doesNotMatch(user.openid, /^anonymous:/)
    assert.notEqual(user.openid, anon.openid)
    s = await auth.checkSession()
    assert.equal(s.active, true)
    assert.equal(s.user.id, anon.id)
    assert.equal(s.user.openid, user.openid)
    assert.equal(tt.logins, 2)
    assert.deepEqual(auth.events, ['logged-in', 'logged-in'])
  })

  it('tt: a user logged in to Douyin from the start is created by one login with both codes', async () => {
    const tt = fakeHost('tt', 'kate', { douyinLoggedIn: true })
    const auth = client(tt)
    const user = await auth.login()
    const logins = count(tt, 'POST', '/v1/login')
    assert.equal(logins.length, 1)
    assert.equal(logins[0].status, 200)
    assert.deepEqual(Object.keys(logins[0].body).sort(), ['anonymous_code', 'app', 'code'])
    const u = logins[0].data.user
    assert.equal(u.created, true)
    assert.equal(u.id, user.id)
    assert.equal('previous_user_id' in u, false, 'an anonymous identity no one used is nothing to upgrade')
    assert.equal('anonymous' in u, false)
    assert.doesNotMatch(user.openid, /^anonymous:/)
    const s = await auth.checkSession()
    assert.equal(s.app, 'shop-douyin')
    assert.equal(s.user.id, user.id)
    assert.equal(tt.logins, 1)
    assert.deepEqual(auth.events, ['logged-in'])
  })

  it('logs in through my (getAuthCode) on the Alipay app, as the gateway knows the user', async () => {
    const my = alipayHost('lena')
    const auth = client(my)
    assert.equal(auth.hostName, 'my')
    const user = await auth.login()
    assert.deepEqual(my.authOptions, [{ scopes: 'auth_base' }], 'a silent auth code')
    const logins = count(my, 'POST', '/v1/login')
    assert.equal(logins.length, 1)
    assert.equal(logins[0].status, 200)
    assert.deepEqual(logins[0].body, { app: 'shop-alipay', code: my.authCodes[0] }, 'the auth code as code')
    assert.equal(logins[0].options.headers['Content-Type'], 'application/json', "Alipay's headers, not header")
    assert.equal('header' in logins[0].options, false)
    assert.equal(logins[0].options.dataType, 'json')
    assert.equal(logins[0].data.user.created, true)
    assert.match(user.id, /^[0-9a-f]{32}$/)
    assert.equal(user.openid, await gatewayOpenID('lena'), "the gateway's open_id for the user and app")
    assert.equal(user.unionid, '', 'an open_id-only answer has no user_id')
    const s = await auth.checkSession()
    assert.equal(s.active, true)
    assert.equal(s.app, 'shop-alipay')
    assert.equal(s.user.id, user.id)
    assert.equal(s.user.openid, user.openid)
    assert.deepEqual(auth.events, ['logged-in'])

    // The session is kept through Alipay's storage: a client started anew has it at once.
    assert.equal(JSON.parse(my.store.get(auth.storageKey)).user.id, user.id)
    const again = client(my)
    assert.equal(again.user && again.user.id, user.id)
    assert.equal((await again.checkSession()).user.id, user.id)
    assert.equal(my.logins, 1)

    // Another Alipay user is another user.
    const other = await client(alipayHost('mona')).login()
    assert.notEqual(other.id, user.id)
    assert.notEqual(other.openid, user.openid)
  })

  it("my: the number in my.getPhoneNumber's answer, posted as it is to /v1/phone", async () => {
    const my = alipayHost('nora')
    const auth = client(my)
    const user = await auth.login()
    const { got, mobile } = await alipayPhone('nora')
    const res = await auth.request({
      url: '/v1/phone', method: 'POST', data: JSON.stringify(got), header: { 'Content-Type': 'application/json' },
    })
    assert.equal(res.statusCode, 200, JSON.stringify(res.data))
    assert.equal(res.data.phone_number, mobile)
    assert.equal(res.data.pure_phone_number, mobile)
    assert.equal(res.data.country_code, '86')
    assert.equal(res.data.user_id, user.id)
    assert.equal(res.data.linked, false)
    const posts = count(my, 'POST', '/v1/phone')
    assert.equal(posts.length, 1)
    assert.deepEqual(posts[0].body, got)
    assert.equal(my.logins, 1)

    // The sign covers response: another user's response under this sign is refused,
    // and the refusal comes back through error 19 as an answer.
    const forged = Object.assign({}, got, { response: (await alipayPhone('olga')).got.response })
    const bad = await auth.request({
      url: '/v1/phone', method: 'POST', data: JSON.stringify(forged), header: { 'Content-Type': 'application/json' },
    })
    assert.equal(bad.statusCode, 422)
    assert.equal(bad.data.error, 'decrypt_failed')
  })

  it("my: phone() posts my.getPhoneNumber's answer, as the device gives it or parsed", async () => {
    const my = alipayHost('pia')
    const auth = client(my)
    const user = await auth.login()
    const { got, mobile } = await alipayPhone('pia')
    // On a device, the success result carries the answer as a JSON string.
    const p = await auth.phone({ response: JSON.stringify(got) })
    assert.deepEqual(count(my, 'POST', '/v1/phone')[0].body, got)
    assert.equal(p.phone_number, mobile)
    assert.equal(p.user_id, user.id)
    const again = await auth.phone(got)
    assert.equal(again.phone_number, mobile)
    assert.equal(my.logins, 1, 'phone() never logs in')
  })

  it('20 concurrent requests across an access-token expiry make one refresh', async () => {
    const wx = fakeHost('wx', 'dave')
    const auth = client(wx)
    await auth.login()
    const stored = JSON.parse(wx.store.get(auth.storageKey))
    assert.equal(stored.expiresIn, ACCESS_TTL, 'the service took access_ttl: 2s')
    // Wait until the access token is expired on the client's clock, computed from receipt.
    const expiresAt = stored.receivedAt + stored.expiresIn * 1000
    await new Promise((r) => setTimeout(r, Math.max(0, expiresAt - Date.now()) + 20))
    assert.ok(Date.now() >= expiresAt)
    const results = await Promise.all(Array.from({ length: 20 }, () => auth.request({ url: '/v1/session' })))
    for (const r of results) {
      assert.equal(r.statusCode, 200)
      assert.equal(r.data.active, true)
    }
    const refreshes = count(wx, 'POST', '/v1/token')
    assert.equal(refreshes.length, 1)
    assert.equal(refreshes[0].status, 200)
    assert.equal(count(wx, 'GET', '/v1/session').length, 20)
    assert.deepEqual(auth.events, ['logged-in', 'refreshed'])
    assert.equal(wx.logins, 1)
  })

  it('a refresh whose answer was lost is sent again within the grace and gets the same pair', async () => {
    const wx = fakeHost('wx', 'gina', { lose: { '/v1/token': 1 } })
    const auth = client(wx)
    await auth.login()
    const stored = JSON.parse(wx.store.get(auth.storageKey))
    const expiresAt = stored.receivedAt + stored.expiresIn * 1000
    await new Promise((r) => setTimeout(r, Math.max(0, expiresAt - Date.now()) + 20))

    // The refresh reaches the service, which rotates the tokens; its answer is lost.
    await assert.rejects(auth.request({ url: '/v1/session' }), (e) => e.code === 'network_error')
    assert.equal(JSON.parse(wx.store.get(auth.storageKey)).refreshToken, stored.refreshToken,
      'a refresh without an answer keeps the tokens')
    // The same refresh token again, within refresh_reuse_grace (30 s by default):
    // the pair the lost answer carried, and the session lives on.
    const res = await auth.request({ url: '/v1/session' })
    assert.equal(res.statusCode, 200)
    assert.equal(res.data.active, true)
    const refreshes = count(wx, 'POST', '/v1/token')
    assert.deepEqual(refreshes.map((r) => r.status), [200, 200])
    const now = JSON.parse(wx.store.get(auth.storageKey))
    assert.equal(now.accessToken, refreshes[0].lost.access_token)
    assert.equal(now.refreshToken, refreshes[0].lost.refresh_token)
    assert.equal(wx.logins, 1, 'no re-login')
    assert.deepEqual(auth.events, ['logged-in', 'refreshed'])

    // Rotated again, the first refresh token is two generations back: theft.
    const old = stored.refreshToken
    const r = await fetch(svc + '/v1/token', {
      method: 'POST', headers: { 'Content-Type': 'application/json' },
      body: JSON.stringify({ grant_type: 'refresh_token', refresh_token: now.refreshToken }),
    })
    assert.equal(r.status, 200)
    const again = await fetch(svc + '/v1/token', {
      method: 'POST', headers: { 'Content-Type': 'application/json' },
      body: JSON.stringify({ grant_type: 'refresh_token', refresh_token: old }),
    })
    assert.equal(again.status, 400)
    assert.equal((await again.json()).error, 'invalid_grant')
  })

  it('a session revoked elsewhere ends in one silent re-login', async () => {
    const wx = fakeHost('wx', 'carol')
    const auth = client(wx)
    const user = await auth.login()
    // The same person logs out everywhere from another device.
    const other = client(fakeHost('wx', 'carol'))
    assert.equal((await other.login()).id, user.id)
    await other.logout({ all: true })
    const res = await auth.request({ url: '/v1/session' })
    assert.equal(res.statusCode, 200)
    assert.equal(res.data.user.id, user.id)
    const refreshes = count(wx, 'POST', '/v1/token')
    assert.equal(refreshes.length, 1)
    assert.equal(refreshes[0].status, 400, 'invalid_grant')
    assert.equal(wx.logins, 2)
    assert.equal(count(wx, 'POST', '/v1/login').length, 2)
    assert.deepEqual(auth.events, ['logged-in', 'logged-in'])
  })

  it('invalid_code is retried once with a fresh code', async () => {
    const wx = fakeHost('wx', 'erin', { bogusCodes: 1 })
    const auth = client(wx)
    await auth.login()
    const logins = count(wx, 'POST', '/v1/login')
    assert.deepEqual(logins.map((r) => r.status), [401, 200])
    assert.equal(wx.logins, 2)
  })

  it('a platform outage: 503 with Retry-After, waited once; or rejected with retryAfter', async () => {
    try {
      // One failed exchange: the client waits Retry-After and sends the same code again.
      await control('PUT', '/_emulator/faults', { path: '/sns/jscode2session', status: 500, times: 1 })
      const wx = fakeHost('wx', 'frank')
      const auth = client(wx)
      const t0 = Date.now()
      await auth.login()
      const logins = count(wx, 'POST', '/v1/login')
      assert.deepEqual(logins.map((r) => r.status), [503, 200])
      assert.equal(wx.logins, 1)
      assert.ok(Date.now() - t0 >= 1900, 'the Retry-After wait (2 s) was honoured')

      // A lasting outage with waiting turned off: one call, an error carrying retryAfter.
      await control('PUT', '/_emulator/faults', { path: '/sns/jscode2session', status: 500 })
      const wx2 = fakeHost('wx', 'grace')
      const auth2 = client(wx2, { maxRetryWait: 0 })
      await assert.rejects(auth2.login(), (e) => {
        assert.ok(e instanceof MploginError)
        assert.equal(e.code, 'platform_unavailable')
        assert.equal(e.status, 503)
        assert.equal(e.retryAfter, 2)
        return true
      })
      assert.equal(count(wx2, 'POST', '/v1/login').length, 1)
      assert.equal(auth2.user, null)
    } finally {
      await control('DELETE', '/_emulator/faults')
    }
  })
})
