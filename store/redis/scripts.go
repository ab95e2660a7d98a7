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
-- its family set live: until the absolute end when there is one, which the
-- session cannot outlive; otherwise twice the session's own TTL, so that
-- rotations extend them only now and then.
local function famttl(d, ex)
  if ex ~= '' then return ttl(ex) end
  local t = 2 * ttl(d)
  if t > MAXTTL then t = MAXTTL end
  return t
end

-- The session hash's fields, in the order of the encoded session. 'or'
-- (the origin) came last, later: hashes written before it lack it, and
-- values encoded before it have 16 fields (decodeSession takes both).
local F = {'id', 'uid', 'app', 'pf', 'aid', 'oid', 'un', 'ah', 'ax', 'rh', 'rx', 'ca', 'ex', 'lu', 'ra', 'df', 'or'}

-- encodeFrom returns the session whose fields (in the order of F) are
-- v[first], v[first+1], ... as the string stored under its access key: each
-- field as <length>:<bytes>.
local function encodeFrom(v, first)
  local out = {}
  for i = 1, #F do
    local x = v[first + i - 1] or ''
    out[i] = #x .. ':' .. x
  end
  return table.concat(out)
end

-- encode returns the session in hash sk, encoded.
local function encode(sk)
  return encodeFrom(redis.call('HMGET', sk, unpack(F)), 1)
end

-- index records member with score in the sorted set k and makes k live at
-- least t ms.
local function index(k, score, member, t)
  redis.call('ZADD', k, score, member)
  if redis.call('PTTL', k) < t then redis.call('PEXPIRE', k, ms(t)) end
end

-- userIndex records session id in the set of user uid's sessions (the
-- key u:<uid>), which RevokeUserSessions reads, and makes the set live at
-- least t ms, as long as the session's own keys.
local function userIndex(uid, id, t)
  local k = P .. 'u:' .. uid
  redis.call('SADD', k, id)
  if redis.call('PTTL', k) < t then redis.call('PEXPIRE', k, ms(t)) end
end

-- revoke marks the session revoked at now unless it already is, and
-- shortens its keys' lives to match.
local function revoke(sk, id, ah, ra, now)
  if ra ~= '' then return end
  redis.call('HSET', sk, 'ra', now)
  local t = ms(ttl(now))
  redis.call('PEXPIRE', sk, t, 'LT')
  local ak = P .. 'a:' .. ah
  redis.call('SET', ak, encode(sk), 'XX', 'KEEPTTL')
  redis.call('PEXPIRE', ak, t, 'LT')
  local pa = redis.call('HGET', sk, 'pa')
  if pa then redis.call('PEXPIRE', P .. 'p:' .. pa, t, 'LT') end
  redis.call('ZADD', P .. 'dl', 'LT', now, id)
end

-- rotatable reports whether a session with refresh expiry rx, end ex and
-- revocation ra can still be rotated at now.
local function rotatable(rx, ex, ra, now)
  return ra == '' and cmp(now, rx) < 0 and (ex == '' or cmp(now, ex) < 0)
end

-- fields splits v, a sequence of <length>:<bytes> fields, into a table.
local function fields(v)
  local out, i = {}, 1
  while i <= #v do
    local c = string.find(v, ':', i, true)
    local n = tonumber(string.sub(v, i, c - 1))
    out[#out + 1] = string.sub(v, c + 1, c + n)
    i = c + n + 1
  end
  return out
end

-- dropFamily deletes every refresh token of session id and the set of them.
local function dropFamily(id)
  local fk = P .. 'f:' .. id
  for _, m in ipairs(redis.call('SMEMBERS', fk)) do
    redis.call('DEL', P .. 'r:' .. m)
  end
  redis.call('DEL', fk)
end
`

// createSession stores the session whose fields, in the order of F, are
// ARGV[5..21]. Returns 0, or 1/2/3 when the ID, access hash or refresh hash
// is taken; then it has written nothing.
const createSession = `
local function createSession()
  local id, ah, rh = ARGV[5], ARGV[12], ARGV[14]
  local sk, fk = P .. 's:' .. id, P .. 'f:' .. id
  local ak, rk = P .. 'a:' .. ah, P .. 'r:' .. rh
  if redis.call('EXISTS', sk, fk, ak, rk) > 0 then
    if redis.call('EXISTS', sk, fk) > 0 then return 1 end
    if redis.call('EXISTS', ak) > 0 then return 2 end
    return 3
  end
  local ex = ARGV[17]
  local d = deadline(ARGV[15], ex, ARGV[19])
  local t, ft = ttl(d), famttl(d, ex)
  local h = {}
  for i = 1, #F do
    h[2 * i - 1] = F[i]
    h[2 * i] = ARGV[4 + i]
  end
  h[#h + 1] = 'fx'
  h[#h + 1] = ms(NOW + ft)
  redis.call('HSET', sk, unpack(h))
  redis.call('PEXPIRE', sk, ms(t))
  redis.call('SET', ak, encodeFrom(ARGV, 5), 'PX', ms(t))
  redis.call('SET', rk, '0' .. id, 'PX', ms(ft))
  redis.call('SADD', fk, rh)
  redis.call('PEXPIRE', fk, ms(ft))
  index(P .. 'dl', d, id, ft)
  userIndex(ARGV[6], id, t)
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

// createScript: ARGV[5..21] the session's fields in the order of F.
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

// rotateScript: ARGV[5] old refresh hash (hex), ARGV[6] new access hash,
// ARGV[7] its expiry, ARGV[8] new refresh hash, ARGV[9] its expiry,
// ARGV[10] the caller's now, ARGV[11] the successor ("" for none),
// ARGV[12] its end. Returns the encoded session on success; {encoded
// session, successor} when the old token is the one the last rotation
// spent and its successor still holds; {encoded session} when the token
// was spent otherwise (the session is then revoked); else 0 (not found),
// 2/3 (new access/refresh hash taken).
//
// The last rotation's spent hash, successor and its end are the session
// hash's fields ls, su and sx, outside F: no read but this one returns
// them, and the access key's copy stays small.
var rotateScript = goredis.NewScript(prelude + `
local rk = P .. 'r:' .. ARGV[5]
local v = redis.call('GET', rk)
if not v then return 0 end
local id = string.sub(v, 2)
local sk = P .. 's:' .. id
local s = redis.call('HMGET', sk, 'ah', 'rx', 'ex', 'ra', 'fx', 'uid', 'pa', 'ls', 'su', 'sx')
if not s[1] then return 0 end
local now = ARGV[10]
if string.sub(v, 1, 1) == '1' then
  if s[8] == ARGV[5] and s[9] and s[9] ~= '' and s[10] and s[10] ~= '' and
      cmp(now, s[10]) < 0 and rotatable(s[2], s[3], s[4], now) then
    return {encode(sk), s[9]}
  end
  revoke(sk, id, s[1], s[4], now)
  return {encode(sk)}
end
if not rotatable(s[2], s[3], s[4], now) then return 0 end
local nak, nrk = P .. 'a:' .. ARGV[6], P .. 'r:' .. ARGV[8]
if redis.call('EXISTS', nak) > 0 then return 2 end
if redis.call('EXISTS', nrk) > 0 then return 3 end

redis.call('SET', rk, '1' .. id, 'XX', 'KEEPTTL')
redis.call('DEL', P .. 'a:' .. s[1])
-- The access token replaced stays known for a logout (p:<hash> names the
-- session, as long as the session lives), until the next rotation.
if s[7] then redis.call('DEL', P .. 'p:' .. s[7]) end
redis.call('HSET', sk, 'pa', s[1])
redis.call('HSET', sk, 'ah', ARGV[6], 'ax', ARGV[7], 'rh', ARGV[8], 'rx', ARGV[9], 'lu', now)
if ARGV[11] ~= '' then
  redis.call('HSET', sk, 'ls', ARGV[5], 'su', ARGV[11], 'sx', ARGV[12])
elseif s[8] then
  redis.call('HDEL', sk, 'ls', 'su', 'sx')
end
local d = deadline(ARGV[9], s[3], '')
local t = ttl(d)
local fk = P .. 'f:' .. id
local fx = tonumber(s[5])
local ft
if NOW + t > fx then
  -- The session now outlives its refresh tokens: extend them all.
  ft = famttl(d, s[3])
  redis.call('HSET', sk, 'fx', ms(NOW + ft))
  for _, m in ipairs(redis.call('SMEMBERS', fk)) do
    redis.call('PEXPIRE', P .. 'r:' .. m, ms(ft))
  end
else
  ft = fx - NOW
end
redis.call('SADD', fk, ARGV[8])
redis.call('PEXPIRE', fk, ms(ft))
redis.call('SET', nrk, '0' .. id, 'PX', ms(ft))
redis.call('PEXPIRE', sk, ms(t))
redis.call('SET', P .. 'p:' .. s[1], id, 'PX', ms(t))
if s[6] then userIndex(s[6], id, t) end
local blob = encode(sk)
redis.call('SET', nak, blob, 'PX', ms(t))
index(P .. 'dl', d, id, ft)
return blob
`)

// revokeScript: ARGV[5] session ID, ARGV[6] the caller's now.
var revokeScript = goredis.NewScript(prelude + `
local id = ARGV[5]
local sk = P .. 's:' .. id
local s = redis.call('HMGET', sk, 'ah', 'ra')
if s[1] then revoke(sk, id, s[1], s[2], ARGV[6]) end
return 0
`)

// revokeUserScript: ARGV[5] user ID, ARGV[6] the caller's now, ARGV[7..9]
// platform, app ID and open ID (the open ID "" for every identity),
// ARGV[10] origin ("" for any), ARGV[11] how many to keep (0: none
// spared). Revokes the user's sessions not yet revoked (of that identity,
// of that origin) found through the user's set, drops members whose
// session is gone, and returns how many it revoked.
//
// With a Keep, only rotatable sessions count, and the Keep newest (by
// creation time, then ID) are spared. A user with no more sessions than
// that in the set is answered by SCARD alone; otherwise each session is
// read once, and nothing is written unless more than Keep match.
var revokeUserScript = goredis.NewScript(prelude + `
local uid, now, pf, aid, oid, origin = ARGV[5], ARGV[6], ARGV[7], ARGV[8], ARGV[9], ARGV[10]
local keep = tonumber(ARGV[11])
local uk = P .. 'u:' .. uid
if keep > 0 and redis.call('SCARD', uk) <= keep then return 0 end
local match = {}
for _, id in ipairs(redis.call('SMEMBERS', uk)) do
  local sk = P .. 's:' .. id
  local s = redis.call('HMGET', sk, 'ah', 'ra', 'uid', 'pf', 'aid', 'oid', 'or', 'rx', 'ex', 'ca')
  if not s[1] then
    redis.call('SREM', uk, id)
  elseif s[3] == uid and s[2] == '' and (oid == '' or (s[6] == oid and s[4] == pf and s[5] == aid)) and
      (origin == '' or id == origin or s[7] == origin) and
      (keep == 0 or rotatable(s[8], s[9], s[2], now)) then
    match[#match + 1] = {id = id, ah = s[1], ca = s[10] or ''}
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
  local m = match[i]
  revoke(P .. 's:' .. m.id, m.id, m.ah, '', now)
end
return #match - keep
`)

// decryptFailureScript: ARGV[5] session ID. Returns the new count, or -1
// when there is no such session.
var decryptFailureScript = goredis.NewScript(prelude + `
local sk = P .. 's:' .. ARGV[5]
local ah = redis.call('HGET', sk, 'ah')
if not ah then return -1 end
local n = redis.call('HINCRBY', sk, 'df', 1)
redis.call('SET', P .. 'a:' .. ah, encode(sk), 'XX', 'KEEPTTL')
return n
`)

// sessionByIDScript: ARGV[5] session ID. Returns the encoded session, or
// nil when there is none.
var sessionByIDScript = goredis.NewScript(prelude + `
local sk = P .. 's:' .. ARGV[5]
if redis.call('EXISTS', sk) == 0 then return false end
return encode(sk)
`)

// sessionForLogoutScript: ARGV[5] access hash (hex). Returns the encoded
// session whose current or previous access hash it is, or nil.
var sessionForLogoutScript = goredis.NewScript(prelude + `
local v = redis.call('GET', P .. 'a:' .. ARGV[5])
if v then return v end
local id = redis.call('GET', P .. 'p:' .. ARGV[5])
if not id then return false end
local sk = P .. 's:' .. id
if redis.call('HGET', sk, 'pa') ~= ARGV[5] then return false end
return encode(sk)
`)

// sessionByRefreshScript: ARGV[5] refresh hash (hex). Returns the encoded
// session whose current refresh token it is, or nil (a spent one too).
var sessionByRefreshScript = goredis.NewScript(prelude + `
local v = redis.call('GET', P .. 'r:' .. ARGV[5])
if not v or string.sub(v, 1, 1) ~= '0' then return false end
local sk = P .. 's:' .. string.sub(v, 2)
if redis.call('HGET', sk, 'rh') ~= ARGV[5] then return false end
return encode(sk)
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
// deletes those that are (with their access key and every refresh token),
// and drops index entries of sessions that expired on their own. Returns
// {sessions deleted, entries looked at, entries settled}; an entry is
// settled when it left the range asked for.
var sweepSessionsScript = goredis.NewScript(prelude + `
local now, dl = ARGV[5], P .. 'dl'
local ids = redis.call('ZRANGE', dl, '-inf', now, 'BYSCORE', 'LIMIT', 0, tonumber(ARGV[6]))
local removed, settled = 0, 0
for _, id in ipairs(ids) do
  local sk = P .. 's:' .. id
  local s = redis.call('HMGET', sk, 'ah', 'rx', 'ex', 'ra', 'uid', 'pa')
  local d
  if s[1] then d = deadline(s[2], s[3], s[4]) end
  if s[1] and cmp(d, now) > 0 then
    -- Not dead yet: its score was off (only past 2^53 µs); set it right.
    redis.call('ZADD', dl, d, id)
    if tonumber(d) > tonumber(now) then settled = settled + 1 end
  else
    if s[1] then
      redis.call('DEL', P .. 'a:' .. s[1], sk)
      if s[5] then redis.call('SREM', P .. 'u:' .. s[5], id) end
      if s[6] then redis.call('DEL', P .. 'p:' .. s[6]) end
      removed = removed + 1
    end
    dropFamily(id)
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
