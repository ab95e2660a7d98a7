'use strict'
const test = require('node:test')
const assert = require('node:assert/strict')
const fs = require('node:fs')
const path = require('node:path')

const root = path.join(__dirname, '..')
const pkg = JSON.parse(fs.readFileSync(path.join(root, 'package.json'), 'utf8'))

function libraryFiles() {
  const files = ['index.js', 'index.mjs']
  for (const f of fs.readdirSync(path.join(root, 'lib'))) files.push(path.join('lib', f))
  return files
}

test('package.json: name, entries, no dependencies', () => {
  assert.equal(pkg.name, '@mplogin/client')
  assert.equal(pkg.main, 'index.js')
  assert.equal(pkg.types, 'index.d.ts')
  assert.deepEqual(pkg.exports['.'], { types: './index.d.ts', import: './index.mjs', require: './index.js' })
  assert.equal(pkg.dependencies, undefined)
  assert.equal(pkg.devDependencies, undefined)
  for (const f of [pkg.main, pkg.types, pkg.exports['.'].import]) assert.ok(fs.existsSync(path.join(root, f)), f)
})

test('library code: no Node built-ins, no other packages, no eval or Function', () => {
  for (const f of libraryFiles()) {
    const src = fs.readFileSync(path.join(root, f), 'utf8')
    for (const m of src.matchAll(/require\(\s*['"]([^'"]+)['"]\s*\)|from\s+['"]([^'"]+)['"]/g)) {
      const spec = m[1] || m[2]
      assert.ok(spec.startsWith('./'), f + ' requires ' + spec)
    }
    assert.doesNotMatch(src, /\beval\s*\(|\bnew\s+Function\b|\bFunction\s*\(/, f)
    assert.doesNotMatch(src, /\bprocess\.|\bBuffer\b|\bglobalThis\b/, f)
    // ES2017 at most, for older mini-program runtimes: no ?. or ??.
    assert.doesNotMatch(src.replace(/\/\/.*|\/\*[\s\S]*?\*\//g, ''), /\?\.|\?\?/, f)
  }
})

test('the ES module entry exports what the CommonJS one does', async () => {
  const cjs = require('..')
  const esm = await import('../index.mjs')
  for (const k of Object.keys(cjs)) assert.equal(esm[k], cjs[k], k)
})

test('the type declarations name the API', () => {
  const dts = fs.readFileSync(path.join(root, pkg.types), 'utf8')
  for (const name of ['createClient', 'ClientOptions', 'HostAdapter', 'getAccessToken', 'checkSession', 'onChange',
    'MploginError', 'UserBlockedError', 'LoggedOutError', 'NetworkError', 'HostLoginError', 'decrypt', 'phone']) {
    assert.match(dts, new RegExp('\\b' + name + '\\b'), name)
  }
})
