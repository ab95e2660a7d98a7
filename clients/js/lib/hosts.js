'use strict'
/* global wx, qq, ks, tt, swan, my, uni, Taro */

/**
 * Host adapters: each turns one mini-program host's API into the adapter interface
 * the client uses:
 *
 *   login()             -> Promise<{code} | {anonymousCode}>  a fresh one-time code
 *   request(opts)       -> Promise<{statusCode, data, header}> rejects only without an answer
 *   getStorage(key)     -> value | undefined (or a Promise of it)
 *   setStorage(key, v)  -> void (or a Promise)
 *   removeStorage(key)  -> void (or a Promise)
 *   now()               -> milliseconds (optional)
 */

/** Host names, in the order the globals are looked for. */
const DETECT_ORDER = ['uni', 'Taro', 'qq', 'ks', 'tt', 'swan', 'my', 'wx']

/**
 * The host global of that name, or undefined. Each name is read with typeof so that
 * a missing global is no error.
 * @param {string} name
 */
function hostGlobal(name) {
  switch (name) {
    case 'uni': return typeof uni !== 'undefined' ? uni : undefined
    case 'Taro': return typeof Taro !== 'undefined' ? Taro : undefined
    case 'qq': return typeof qq !== 'undefined' ? qq : undefined
    case 'ks': return typeof ks !== 'undefined' ? ks : undefined
    case 'tt': return typeof tt !== 'undefined' ? tt : undefined
    case 'swan': return typeof swan !== 'undefined' ? swan : undefined
    case 'my': return typeof my !== 'undefined' ? my : undefined
    case 'wx': return typeof wx !== 'undefined' ? wx : undefined
  }
  return undefined
}

/**
 * Calls a host API that takes success/fail callbacks, returns a Promise, or both
 * (uni-app, Taro), and settles with whichever answers first.
 * @param {any} host
 * @param {string} name
 * @param {object} opts
 * @returns {Promise<any>}
 */
function callHost(host, name, opts) {
  return new Promise(function (resolve, reject) {
    let done = false
    function ok(v) { if (!done) { done = true; resolve(v) } }
    function ko(e) { if (!done) { done = true; reject(e) } }
    const fn = host[name]
    if (typeof fn !== 'function') {
      ko(new TypeError('the host has no ' + name + '()'))
      return
    }
    let ret
    try {
      ret = fn.call(host, Object.assign({}, opts, { success: ok, fail: ko }))
    } catch (e) {
      ko(e)
      return
    }
    if (ret && typeof ret.then === 'function') {
      ret.then(function (v) {
        // uni-app (Vue 2) resolves [err, res].
        if (Array.isArray(v) && v.length === 2 && (v[0] || (v[1] && typeof v[1] === 'object'))) {
          if (v[0]) ko(v[0])
          else ok(v[1])
        } else {
          ok(v)
        }
      }, ko)
    }
  })
}

/**
 * The code of a host login answer, as {code}, {anonymousCode}, or both (Douyin's
 * logged-in user: both go to mplogin, which upgrades the device's anonymous user).
 */
function codeOf(res) {
  res = res || {}
  if (res.code && res.anonymousCode) return { code: res.code, anonymousCode: res.anonymousCode }
  if (res.code) return { code: res.code }
  if (res.authCode) return { code: res.authCode }
  if (res.anonymousCode) return { anonymousCode: res.anonymousCode }
  const e = new Error('the host login gave no code' + (res.errMsg ? ': ' + res.errMsg : ''))
  e.result = res
  throw e
}

function emptyToUndefined(v) {
  return v === '' || v === null ? undefined : v
}

/**
 * The adapter for a mini-program host object.
 * @param {any} host the host's API object (wx, swan, tt, qq, my, ks, uni, Taro)
 * @param {string} name which host it is
 */
function hostAdapter(host, name) {
  if (!host || (typeof host !== 'object' && typeof host !== 'function')) {
    throw new TypeError('mplogin: no ' + name + ' host object')
  }
  const alipay = name === 'my'
  return {
    name: name,

    login: function () {
      let p
      if (alipay) {
        p = callHost(host, 'getAuthCode', { scopes: 'auth_base' })
      } else if (name === 'swan' && typeof host.getLoginCode === 'function') {
        p = callHost(host, 'getLoginCode', {})
      } else if (name === 'tt') {
        // force: false never shows Douyin's login dialog; a user not logged in to
        // Douyin gets only an anonymousCode.
        p = callHost(host, 'login', { force: false })
      } else {
        p = callHost(host, 'login', {})
      }
      return p.then(codeOf)
    },

    request: function (o) {
      if (alipay) {
        const opts = { url: o.url, method: o.method, data: o.data, headers: o.header, dataType: 'json' }
        if (o.timeout) opts.timeout = o.timeout
        return callHost(host, 'request', opts).then(alipayResponse, function (err) {
          // Alipay fails a non-2xx answer (error 19) but carries the answer with it.
          if (err && typeof err.status === 'number' && err.status > 0) return alipayResponse(err)
          throw err
        })
      }
      const opts = { url: o.url, method: o.method, data: o.data, header: o.header, dataType: 'json' }
      if (o.timeout) opts.timeout = o.timeout
      return callHost(host, 'request', opts).then(function (res) {
        res = res || {}
        return { statusCode: res.statusCode, data: res.data, header: res.header || res.headers || {} }
      })
    },

    getStorage: function (key) {
      if (alipay) {
        if (typeof host.getStorageSync === 'function') {
          const r = host.getStorageSync({ key: key })
          return r ? emptyToUndefined(r.data) : undefined
        }
        return callHost(host, 'getStorage', { key: key }).then(function (r) { return r ? emptyToUndefined(r.data) : undefined },
          function () { return undefined })
      }
      if (typeof host.getStorageSync === 'function') return emptyToUndefined(host.getStorageSync(key))
      return callHost(host, 'getStorage', { key: key }).then(function (r) { return r ? emptyToUndefined(r.data) : undefined },
        function () { return undefined })
    },

    setStorage: function (key, value) {
      if (alipay) {
        if (typeof host.setStorageSync === 'function') return void host.setStorageSync({ key: key, data: value })
        return callHost(host, 'setStorage', { key: key, data: value })
      }
      if (typeof host.setStorageSync === 'function') return void host.setStorageSync(key, value)
      return callHost(host, 'setStorage', { key: key, data: value })
    },

    removeStorage: function (key) {
      if (alipay) {
        if (typeof host.removeStorageSync === 'function') return void host.removeStorageSync({ key: key })
        return callHost(host, 'removeStorage', { key: key })
      }
      if (typeof host.removeStorageSync === 'function') return void host.removeStorageSync(key)
      return callHost(host, 'removeStorage', { key: key })
    },
  }
}

function alipayResponse(res) {
  res = res || {}
  return {
    statusCode: res.status !== undefined ? res.status : res.statusCode,
    data: res.data,
    header: res.headers || res.header || {},
  }
}

/** Whether x is an adapter already rather than a host's API object. */
function isAdapter(x) {
  return !!x && typeof x.login === 'function' && typeof x.request === 'function' &&
    typeof x.getStorage === 'function' && typeof x.setStorage === 'function' &&
    typeof x.removeStorage === 'function' && typeof x.getStorageSync !== 'function'
}

/** Which host an API object is, from its features, when it is no known global. */
function guessName(host) {
  for (let i = 0; i < DETECT_ORDER.length; i++) {
    if (hostGlobal(DETECT_ORDER[i]) === host) return DETECT_ORDER[i]
  }
  if (typeof host.getAuthCode === 'function') return 'my'
  if (typeof host.getLoginCode === 'function') return 'swan'
  if (typeof host.getEnv === 'function' && host.ENV_TYPE) return 'Taro'
  if (typeof host.getProvider === 'function' || typeof host.upx2px === 'function') return 'uni'
  return 'wx' // the common shape of the others
}

/**
 * The adapter for the createClient `host` option.
 * @param {any} host an adapter, a host API object, or undefined to detect one
 * @param {string} [name] the host's name, when `host` is an API object that cannot be told apart
 */
function resolveHost(host, name) {
  if (name) {
    if (!adapters[name]) throw new TypeError('mplogin: unknown host name ' + JSON.stringify(name))
    return hostAdapter(host || hostGlobal(name), name)
  }
  if (host) {
    if (isAdapter(host)) return host
    return hostAdapter(host, guessName(host))
  }
  for (let i = 0; i < DETECT_ORDER.length; i++) {
    const g = hostGlobal(DETECT_ORDER[i])
    if (g && (typeof g.request === 'function' || typeof g.login === 'function')) return hostAdapter(g, DETECT_ORDER[i])
  }
  throw new TypeError('mplogin: no mini-program host found (wx, swan, tt, qq, my, ks, uni, Taro); pass the host option')
}

/** Adapter factories by host name: adapters.wx(wx) and so on. */
const adapters = {}
DETECT_ORDER.forEach(function (n) {
  adapters[n] = function (host) { return hostAdapter(host || hostGlobal(n), n) }
})

module.exports = { adapters, resolveHost, callHost, hostGlobal, DETECT_ORDER }
