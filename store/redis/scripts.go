package redis

import goredis "github.com/redis/go-redis/v9"

// The Lua scripts that make each writing method one atomic step. Every
// script begins with prelude, which reads the arguments all scripts share:
//
//	ARGV[1] key prefix
//	ARGV[2] the store's clock, Unix milliseconds
//	ARGV[3] expiry grace, milliseconds
//	ARGV[4] longest TTL, milliseconds
//
// and the method's own arguments follow from ARGV[5]. Keys are built inside
// the scripts from the prefix, so the scripts do not declare them in KEYS:
// they need a single Redis (or a Sentinel-managed primary), not a Cluster.
//
// Times are canonical decimal Unix microseconds ("" for the zero time) and
// are compared exactly by cmp, never through Lua's doubles alone. TTLs are
// relative (PEXPIRE/PX), computed from the store's clock, so Redis's own
// clock plays no part.

const prelude = `
local P = ARGV[1]
local NOW = tonumber(ARGV[2])
local GRACE = tonumber(ARGV[3])
local MAXTTL = tonumber(ARGV[4])

local LIMIT = 9007199254740992 -- 2^53: below it a double holds an integer exactly

-- cmp compares two times (canonical decimal integers): -1, 0 or 1.
local function cmp(a, b)
  if a == b then return 0 end
  local x, y = tonumber(a), tonumber(b)
  if x < LIMIT and x > -LIMIT and y < LIMIT and y > -LIMIT then
    if x < y then return -1 end
    return 1
  end
  -- Beyond 2^53 microseconds (after the year 2255): sign, length, digits.
  local na, nb = string.byte(a, 1) == 45, string.byte(b, 1) == 45
  if na ~= nb then
    if na then return -1 end
    return 1
  end
  local r = 0
  if #a ~= #b then
    if #a < #b then r = -1 else r = 1 end
  else
    for i = 1, #a do
      local ca, cb = string.byte(a, i), string.byte(b, i)
      if ca ~= cb then
        if ca < cb then r = -1 else r = 1 end
        break
      end
    end
  end
  if na then r = -r end
  return r
end

-- ms formats a whole number of milliseconds for a command argument.
local function ms(x) return string.format('%.0f', x) end

-- ttl is how long (ms) a key that stops being usable at the time us must
-- live: until us, or now if us is past, plus the grace; at most MAXTTL.
local function ttl(us)
  local t = math.ceil(tonumber(us) / 1000) - NOW
  if t < 0 then t = 0 end
  t = t + GRACE
  if t > MAXTTL then t = MAXTTL end
  return t
end

-- deadline is when a session stops being usable: the earliest of its
-- refresh expiry, its absolute end and its revocation (the last two when set).
local function deadline(rx, ex, ra)
  local d = rx
  if ex ~= '' and cmp(ex, d) < 0 then d = ex end
  if ra ~= '' and cmp(ra, d) < 0 then d = ra end
  return d
end

-- famttl is how long a session's refresh tokens (spent ones included) and
-- the session hash, which lists them, live: until the absolute end when
-- there is one, which the session cannot outlive; otherwise twice the
-- session's own TTL, so that rotations extend them only now and then.
local function famttl(d, ex)
  if ex ~= '' then return ttl(ex) end
  local t = 2 * ttl(d)
  if t > MAXTTL then t = MAXTTL end
  return t
end

-- The encoded session's fields, in order, by the names of the hash fields
-- where earlier versions kept them: id uid app pf aid oid un ah ax rh rx
-- ca ex lu ra df or.
local NF = 17
local UID, PF, AID, OID, AH, AX, RH, RX, CA, EX, LU, RA, DF, OR = 2, 4, 5, 6, 8, 9, 10, 11, 12, 13, 14, 15, 16, 17

-- hex returns the bytes b in lower-case hex, as key names hold hashes.
local function hex(b)
  local out = {}
  for i = 1, #b, 200 do
    local j = math.min(i + 199, #b)
    out[#out + 1] = string.format(string.rep('%02x', j - i + 1), string.byte(b, i, j))
  end
  return table.concat(out)
end

-- unhex decodes the hex that earlier versions stored hashes in.
local function unhex(x)
  return (string.gsub(x, '%x%x', function(c) return string.char(tonumber(c, 16)) end))
end

-- fields splits v, a sequence of <length>:<bytes> fields from its byte i
-- (default 1) on, into a table.
local function fields(v, i)
  local out = {}
  i = i or 1
  while i <= #v do
    local c = string.find(v, ':', i, true)
    local n = tonumber(string.sub(v, i, c - 1))
    out[#out + 1] = string.sub(v, c + 1, c + n)
    i = c + n + 1
  end
  return out
end

-- encode returns the session whose fields are f as the string stored under
-- its access key: "*", then each field as <length>:<bytes>.
local function encode(f)
  local out = {'*'}
  for i = 1, NF do
    local x = f[i] or ''
    out[i + 1] = #x .. ':' .. x
  end
  return table.concat(out)
end

-- decode returns the fields of the encoded session v, hashes as bytes:
-- encode's form, or the one of earlier versions (no "*", hashes in hex,
-- and before the origin 16 fields).
local function decode(v)
  if string.sub(v, 1, 1) == '*' then return fields(v, 2) end
  local f = fields(v)
  f[AH], f[RH] = unhex(f[AH]), unhex(f[RH])
  for i = 1, NF do f[i] = f[i] or '' end
  return f
end

-- index records member with score in the sorted set k and makes k live at
-- least t ms.
local function index(k, score, member, t)
  redis.call('ZADD', k, score, member)
  if redis.call('PTTL', k) < t then redis.call('PEXPIRE', k, ms(t)) end
end

-- userIds returns the session IDs in the user index uk: the fields of a
-- hash, or the members of the set that earlier versions wrote.
local function userIds(uk)
  if redis.call('TYPE', uk).ok == 'set' then return redis.call('SMEMBERS', uk) end
  return redis.call('HKEYS', uk)
end

-- userCount returns how many session IDs the user index uk holds.
local function userCount(uk)
  if redis.call('TYPE', uk).ok == 'set' then return redis.call('SCARD', uk) end
  return redis.call('HLEN', uk)
end

-- userRemove drops session id from user uid's index.
local function userRemove(uid, id)
  local uk = P .. 'u:' .. uid
  if redis.call('TYPE', uk).ok == 'set' then
    redis.call('SREM', uk, id)
  else
    redis.call('HDEL', uk, id)
  end
end

-- userIndex records session id in the index of user uid's sessions (the
-- hash u:<uid>, a field per session), which RevokeUserSessions reads, and
-- makes the index live at least t ms, as long as the session's own keys.
-- A set that an earlier version wrote there becomes a hash first.
local function userIndex(uid, id, t)
  local k = P .. 'u:' .. uid
  if redis.call('TYPE', k).ok == 'set' then
    local ids, kt = redis.call('SMEMBERS', k), redis.call('PTTL', k)
    redis.call('DEL', k)
    for _, m in ipairs(ids) do redis.call('HSET', k, m, '') end
    if kt > 0 then redis.call('PEXPIRE', k, kt) end
  end
  redis.call('HSET', k, id, '')
  if redis.call('PTTL', k) < t then redis.call('PEXPIRE', k, ms(t)) end
end

-- load reads session id. It returns nil when the session has no hash;
-- otherwise a table of sk (its hash's key), id, legacy (the hash is in an
-- earlier version's form), ah and pa (its access hash and the previous one,
-- as bytes; pa nil for none), ak (its access key), fx and, while the access
-- key exists, v (the encoded session, as stored) and f (its fields).
local function load(id)
  local sk = P .. 's:' .. id
  local h = redis.call('HMGET', sk, 'a', 'p', 'fx', 'ah', 'pa')
  local r = {sk = sk, id = id, fx = tonumber(h[3]) or 0}
  if h[1] then
    r.ah, r.pa = h[1], h[2] or nil
  elseif h[4] then
    r.legacy, r.ah = true, unhex(h[4])
    if h[5] then r.pa = unhex(h[5]) end
  else
    return nil
  end
  r.ak = P .. 'a:' .. hex(r.ah)
  r.v = redis.call('GET', r.ak) or nil
  if r.v then r.f = decode(r.v) end
  return r
end

-- family returns the hex hashes of all the refresh tokens of session id
-- (hash key sk), spent ones included: the fields r<hash> of a hash in this
-- version's form (ownHash), and the members of the set f:<id> where
-- earlier versions kept them.
local function family(id, sk, ownHash)
  local out = redis.call('SMEMBERS', P .. 'f:' .. id)
  if ownHash then
    for _, k in ipairs(redis.call('HKEYS', sk)) do
      if string.byte(k, 1) == 114 then out[#out + 1] = hex(string.sub(k, 2)) end -- "r"
    end
  end
  return out
end

-- setGrace keeps under g:<id> the end sx of the grace of session id's last
-- rotation, the refresh hash ls it spent and the successor su, until sx
-- plus the grace and no longer than t ms (the session's own keys).
local function setGrace(id, ls, su, sx, t)
  local gt = ttl(sx)
  if t < gt then gt = t end
  redis.call('SET', P .. 'g:' .. id, #sx .. ':' .. sx .. #ls .. ':' .. ls .. #su .. ':' .. su, 'PX', ms(gt))
end

-- lastRotation returns the refresh hash (bytes) that r's last rotation
-- spent, its successor and the grace's end; nil when none is kept.
local function lastRotation(r)
  if r.legacy then
    local g = redis.call('HMGET', r.sk, 'ls', 'su', 'sx')
    if not g[1] then return nil end
    return unhex(g[1]), g[2] or '', g[3] or ''
  end
  local v = redis.call('GET', P .. 'g:' .. r.id)
  if not v then return nil end
  local g = fields(v)
  return g[2], g[3], g[1]
end

-- upgrade turns the hash of r, when an earlier version wrote it, into this
-- version's: the session only under its access key, the hashes as bytes,
-- the refresh family as fields (the set f:<id> deleted, the hash then
-- living as long as the set did), the last rotation's successor under
-- g:<id>. The hash is written anew: Redis never turns a hash back into a
-- listpack once it has outgrown one.
local function upgrade(r)
  if not r.legacy then return end
  local sk, fk = r.sk, P .. 'f:' .. r.id
  local g = redis.call('HMGET', sk, 'ls', 'su', 'sx')
  local kt = math.max(redis.call('PTTL', sk), redis.call('PTTL', fk))
  if kt <= 0 then kt = GRACE end
  local fam = redis.call('SMEMBERS', fk)
  redis.call('DEL', sk, fk)
  redis.call('HSET', sk, 'a', r.ah, 'fx', ms(r.fx))
  if r.pa then redis.call('HSET', sk, 'p', r.pa) end
  for _, m in ipairs(fam) do
    redis.call('HSET', sk, 'r' .. unhex(m), '')
  end
  redis.call('PEXPIRE', sk, kt)
  local t = redis.call('PTTL', r.ak)
  if g[1] and g[2] and g[2] ~= '' and g[3] and g[3] ~= '' and t > 0 then
    setGrace(r.id, unhex(g[1]), g[2], g[3], t)
  end
  r.legacy = false
end

-- revoke marks the session r revoked at now unless it already is, and
-- shortens its keys' lives to match; its hash and refresh tokens stay, to
-- be swept (they catch a replay until then).
local function revoke(r, now)
  local f = r.f
  if f[RA] ~= '' then return end
  upgrade(r)
  f[RA] = now
  local t = ms(ttl(now))
  r.v = encode(f)
  redis.call('SET', r.ak, r.v, 'XX', 'KEEPTTL')
  redis.call('PEXPIRE', r.ak, t, 'LT')
  if r.pa then redis.call('PEXPIRE', P .. 'p:' .. hex(r.pa), t, 'LT') end
  redis.call('PEXPIRE', P .. 'g:' .. r.id, t, 'LT')
  redis.call('ZADD', P .. 'dl', 'LT', now, r.id)
end

-- rotatable reports whether a session with refresh expiry rx, end ex and
-- revocation ra can still be rotated at now.
local function rotatable(rx, ex, ra, now)
  return ra == '' and cmp(now, rx) < 0 and (ex == '' or cmp(now, ex) < 0)
end

-- drop deletes what is left of session id, r being what load returned:
-- its hash, access key, previous access key, refresh tokens (spent ones
-- too), grace and entry in its user's index. It reports whether the
-- session itself (its access key) was still there.
local function drop(id, r)
  local sk = P .. 's:' .. id
  for _, x in ipairs(family(id, sk, r and not r.legacy)) do
    redis.call('DEL', P .. 'r:' .. x)
  end
  local found = false
  if r then
    if r.f then
      redis.call('DEL', r.ak)
      userRemove(r.f[UID], id)
      found = true
    end
    if r.pa then redis.call('DEL', P .. 'p:' .. hex(r.pa)) end
  end
  redis.call('DEL', sk, P .. 'f:' .. id, P .. 'g:' .. id)
  return found
end
`

// createSession stores the session whose fields, in the encoded session's
// order, are ARGV[5..21], hashes as bytes. Returns 0, or 1/2/3 when the ID, access
// hash or refresh hash is taken; then it has written nothing.
const createSession = `
local function createSession()
  local f = {}
  for i = 1, NF do f[i] = ARGV[4 + i] end
  local id = f[1]
  local sk, fk = P .. 's:' .. id, P .. 'f:' .. id
  local ak, rk = P .. 'a:' .. hex(f[AH]), P .. 'r:' .. hex(f[RH])
  if redis.call('EXISTS', sk, fk, ak, rk) > 0 then
    if redis.call('EXISTS', sk, fk) > 0 then return 1 end
    if redis.call('EXISTS', ak) > 0 then return 2 end
    return 3
  end
  local d = deadline(f[RX], f[EX], f[RA])
  local t, ft = ttl(d), famttl(d, f[EX])
  redis.call('HSET', sk, 'a', f[AH], 'fx', ms(NOW + ft), 'r' .. f[RH], '')
  redis.call('PEXPIRE', sk, ms(ft))
  redis.call('SET', ak, encode(f), 'PX', ms(t))
  redis.call('SET', rk, '0' .. id, 'PX', ms(ft))
  index(P .. 'dl', d, id, ft)
  userIndex(f[UID], id, t)
  return 0
end
`

// putCode stores the code with hash h (hex), encoded as v, expiring at exp.
const putCode = `
local function putCode(h, v, exp)
  local t = ttl(exp)
  redis.call('SET', P .. 'c:' .. h, v, 'PX', ms(t))
  index(P .. 'cx', exp, h, t)
end
`

// createScript: ARGV[5..21] the session's fields in the encoded session's
// order, hashes as bytes.
// Returns what createSession does.
var createScript = goredis.NewScript(prelude + createSession + `
return createSession()
`)

// loginScript: createScript's arguments, then ARGV[22] code hash (hex),
// ARGV[23] encoded code, ARGV[24] its expiry. Stores the session and the
// code, or, when createSession refuses the session, neither; returns what
// createSession does.
var loginScript = goredis.NewScript(prelude + createSession + putCode + `
local r = createSession()
if r == 0 then putCode(ARGV[22], ARGV[23], ARGV[24]) end
return r
`)

// rotateScript: ARGV[5] old refresh hash, ARGV[6] new access hash, ARGV[7]
// its expiry, ARGV[8] new refresh hash, ARGV[9] its expiry, ARGV[10] the
// caller's now, ARGV[11] the successor ("" for none), ARGV[12] its end;
// hashes as bytes. Returns the encoded session on success; {encoded
// session, successor} when the old token is the one the last rotation
// spent and its successor still holds; {encoded session} when the token
// was spent otherwise (the session is then revoked); else 0 (not found),
// 2/3 (new access/refresh hash taken).
//
// The last rotation's spent hash, successor and its end are kept under
// g:<id>, apart from the session: no read but this one returns them, and
// they go when the grace ends.
var rotateScript = goredis.NewScript(prelude + `
local old, nah, nrh, now = ARGV[5], ARGV[6], ARGV[8], ARGV[10]
local rk = P .. 'r:' .. hex(old)
local v = redis.call('GET', rk)
if not v then return 0 end
local id = string.sub(v, 2)
local r = load(id)
if not r or not r.f then return 0 end
local f = r.f
if string.sub(v, 1, 1) == '1' then
  local ls, su, sx = lastRotation(r)
  if ls == old and su ~= '' and sx ~= '' and cmp(now, sx) < 0 and rotatable(f[RX], f[EX], f[RA], now) then
    return {r.v, su}
  end
  revoke(r, now)
  return {r.v}
end
if not rotatable(f[RX], f[EX], f[RA], now) then return 0 end
local nak, nrk = P .. 'a:' .. hex(nah), P .. 'r:' .. hex(nrh)
if redis.call('EXISTS', nak) > 0 then return 2 end
if redis.call('EXISTS', nrk) > 0 then return 3 end

upgrade(r)
local sk, prev = r.sk, r.ah
redis.call('SET', rk, '1' .. id, 'XX', 'KEEPTTL')
redis.call('DEL', r.ak)
-- The access token replaced stays known for a logout (p:<hash> names the
-- session, as long as the session lives), until the next rotation.
if r.pa then redis.call('DEL', P .. 'p:' .. hex(r.pa)) end
f[AH], f[AX], f[RH], f[RX], f[LU] = nah, ARGV[7], nrh, ARGV[9], now
local d = deadline(f[RX], f[EX], '')
local t = ttl(d)
if ARGV[11] ~= '' and ARGV[12] ~= '' then
  setGrace(id, old, ARGV[11], ARGV[12], t)
else
  redis.call('DEL', P .. 'g:' .. id)
end
local ft
if NOW + t > r.fx then
  -- The session now outlives its refresh tokens: extend them all.
  ft = famttl(d, f[EX])
  redis.call('HSET', sk, 'fx', ms(NOW + ft))
  for _, x in ipairs(family(id, sk, true)) do
    redis.call('PEXPIRE', P .. 'r:' .. x, ms(ft))
  end
else
  ft = r.fx - NOW
end
redis.call('HSET', sk, 'a', nah, 'p', prev, 'r' .. nrh, '')
redis.call('PEXPIRE', sk, ms(ft))
redis.call('SET', nrk, '0' .. id, 'PX', ms(ft))
redis.call('SET', P .. 'p:' .. hex(prev), id, 'PX', ms(t))
userIndex(f[UID], id, t)
r.v = encode(f)
redis.call('SET', nak, r.v, 'PX', ms(t))
index(P .. 'dl', d, id, ft)
return r.v
`)

// revokeScript: ARGV[5] session ID, ARGV[6] the caller's now.
var revokeScript = goredis.NewScript(prelude + `
local r = load(ARGV[5])
if r and r.f then revoke(r, ARGV[6]) end
return 0
`)

// revokeUserScript: ARGV[5] user ID, ARGV[6] the caller's now, ARGV[7..9]
// platform, app ID and open ID (the open ID "" for every identity),
// ARGV[10] origin ("" for any), ARGV[11] how many to keep (0: none
// spared). Revokes the user's sessions not yet revoked (of that identity,
// of that origin) found through the user's index, drops entries whose
// session is gone, and returns how many it revoked.
//
// With a Keep, only rotatable sessions count, and the Keep newest (by
// creation time, then ID) are spared. A user with no more sessions than
// that in the index is answered by counting them alone; otherwise each
// session is read once, and nothing is written unless more than Keep
// match.
var revokeUserScript = goredis.NewScript(prelude + `
local uid, now, pf, aid, oid, origin = ARGV[5], ARGV[6], ARGV[7], ARGV[8], ARGV[9], ARGV[10]
local keep = tonumber(ARGV[11])
local uk = P .. 'u:' .. uid
if keep > 0 and userCount(uk) <= keep then return 0 end
local match = {}
for _, id in ipairs(userIds(uk)) do
  local r = load(id)
  if not r or not r.f then
    userRemove(uid, id)
  else
    local f = r.f
    if f[UID] == uid and f[RA] == '' and (oid == '' or (f[OID] == oid and f[PF] == pf and f[AID] == aid)) and
        (origin == '' or id == origin or f[OR] == origin) and
        (keep == 0 or rotatable(f[RX], f[EX], f[RA], now)) then
      match[#match + 1] = {r = r, id = id, ca = f[CA]}
    end
  end
end
if #match <= keep then return 0 end
if keep > 0 then
  -- Newest first: creation time, then ID, both descending. IDs compare
  -- byte by byte (Lua's < follows Redis's locale).
  local function newer(a, b)
    if a.ca ~= b.ca then
      if a.ca == '' or b.ca == '' then return b.ca == '' end
      return cmp(a.ca, b.ca) > 0
    end
    local x, y = a.id, b.id
    for i = 1, math.min(#x, #y) do
      local p, q = string.byte(x, i), string.byte(y, i)
      if p ~= q then return p > q end
    end
    return #x > #y
  end
  table.sort(match, newer)
end
for i = keep + 1, #match do
  revoke(match[i].r, now)
end
return #match - keep
`)

// decryptFailureScript: ARGV[5] session ID. Returns the new count, or -1
// when there is no such session.
var decryptFailureScript = goredis.NewScript(prelude + `
local r = load(ARGV[5])
if not r or not r.f then return -1 end
upgrade(r)
local n = (tonumber(r.f[DF]) or 0) + 1
r.f[DF] = string.format('%d', n)
redis.call('SET', r.ak, encode(r.f), 'XX', 'KEEPTTL')
return n
`)

// sessionByIDScript: ARGV[5] session ID. Returns the encoded session, or
// nil when there is none.
var sessionByIDScript = goredis.NewScript(prelude + `
local r = load(ARGV[5])
if not r or not r.v then return false end
return r.v
`)

// sessionForLogoutScript: ARGV[5] access hash. Returns the encoded session
// whose current or previous access hash it is, or nil.
var sessionForLogoutScript = goredis.NewScript(prelude + `
local x = hex(ARGV[5])
local v = redis.call('GET', P .. 'a:' .. x)
if v then return v end
local id = redis.call('GET', P .. 'p:' .. x)
if not id then return false end
local r = load(id)
if not r or not r.v or r.pa ~= ARGV[5] then return false end
return r.v
`)

// sessionByRefreshScript: ARGV[5] refresh hash. Returns the encoded
// session whose current refresh token it is, or nil (a spent one too).
var sessionByRefreshScript = goredis.NewScript(prelude + `
local v = redis.call('GET', P .. 'r:' .. hex(ARGV[5]))
if not v or string.sub(v, 1, 1) ~= '0' then return false end
local r = load(string.sub(v, 2))
if not r or not r.f or r.f[RH] ~= ARGV[5] then return false end
return r.v
`)

// putCodeScript: ARGV[5] code hash (hex), ARGV[6] encoded code, ARGV[7]
// its expiry.
var putCodeScript = goredis.NewScript(prelude + putCode + `
putCode(ARGV[5], ARGV[6], ARGV[7])
return 0
`)

// claimReplayScript: ARGV[5] code hash (hex), ARGV[6] the caller's now,
// ARGV[7] the most repeats. Returns nil for an unknown or expired code,
// {1, code} when it counted one more repeat, {0, code} when it refused
// one. Codes are encoded as codeArgs does: expiry, app, platform, app ID,
// open ID, hash, session ID, replay end, repeats; the last three are
// missing from codes written before them (no repeats then).
var claimReplayScript = goredis.NewScript(prelude + `
local ck = P .. 'c:' .. ARGV[5]
local v = redis.call('GET', ck)
if not v then return false end
local f = fields(v)
local now = ARGV[6]
if cmp(now, f[1]) >= 0 then return false end
local ru, n = f[8] or '', tonumber(f[9] or '0')
if ru == '' or cmp(now, ru) >= 0 or n >= tonumber(ARGV[7]) then return {0, v} end
for i = 7, 8 do f[i] = f[i] or '' end
f[9] = string.format('%d', n + 1)
for i = 1, 9 do f[i] = #f[i] .. ':' .. f[i] end
v = table.concat(f)
redis.call('SET', ck, v, 'XX', 'KEEPTTL')
return {1, v}
`)

// sweepSessionsScript: ARGV[5] the caller's now, ARGV[6] chunk size.
// Looks at up to a chunk of the sessions the index says are dead at now,
// deletes those that are (with everything drop deletes), and drops what
// is left of sessions whose access key expired on its own. Returns
// {sessions deleted, entries looked at, entries settled}; an entry is
// settled when it left the range asked for.
var sweepSessionsScript = goredis.NewScript(prelude + `
local now, dl = ARGV[5], P .. 'dl'
local ids = redis.call('ZRANGE', dl, '-inf', now, 'BYSCORE', 'LIMIT', 0, tonumber(ARGV[6]))
local removed, settled = 0, 0
for _, id in ipairs(ids) do
  local r = load(id)
  local d
  if r and r.f then d = deadline(r.f[RX], r.f[EX], r.f[RA]) end
  if d and cmp(d, now) > 0 then
    -- Not dead yet: its score was off (only past 2^53 µs); set it right.
    redis.call('ZADD', dl, d, id)
    if tonumber(d) > tonumber(now) then settled = settled + 1 end
  else
    if drop(id, r) then removed = removed + 1 end
    redis.call('ZREM', dl, id)
    settled = settled + 1
  end
end
return {removed, #ids, settled}
`)

// sweepCodesScript: ARGV[5] the caller's now, ARGV[6] chunk size. As
// sweepSessionsScript, for codes.
var sweepCodesScript = goredis.NewScript(prelude + `
local now, cx = ARGV[5], P .. 'cx'
local hs = redis.call('ZRANGE', cx, '-inf', now, 'BYSCORE', 'LIMIT', 0, tonumber(ARGV[6]))
local removed, settled = 0, 0
for _, h in ipairs(hs) do
  local ck = P .. 'c:' .. h
  local v = redis.call('GET', ck)
  local exp
  if v then
    local c = string.find(v, ':', 1, true)
    exp = string.sub(v, c + 1, c + tonumber(string.sub(v, 1, c - 1)))
  end
  if v and cmp(exp, now) > 0 then
    redis.call('ZADD', cx, exp, h)
    if tonumber(exp) > tonumber(now) then settled = settled + 1 end
  else
    if v then
      redis.call('DEL', ck)
      removed = removed + 1
    end
    redis.call('ZREM', cx, h)
    settled = settled + 1
  end
end
return {removed, #hs, settled}
`)
