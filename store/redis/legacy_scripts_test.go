package redis_test

import goredis "github.com/redis/go-redis/v9"

// The scripts of the version before the compact layout, verbatim, for
// writing sessions as that version did (TestLegacySessions): the session
// in a hash of its own fields with hashes in hex, the refresh family in a
// set f:<id>, the user's sessions in a set u:<uid>, the last rotation's
// successor in the hash. They take the arguments the store's scripts took
// then: ARGV[1..4] key prefix, the clock (Unix ms), the expiry grace and
// the longest TTL (ms), then the method's own, hashes in hex.

const legacyPrelude = `
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

// legacyCreateScript: ARGV[5..21] the session's fields in the order of F.
var legacyCreateScript = goredis.NewScript(legacyPrelude + `
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
return createSession()
`)

// legacyRotateScript: ARGV[5] old refresh hash, ARGV[6] new access hash,
// ARGV[7] its expiry, ARGV[8] new refresh hash, ARGV[9] its expiry,
// ARGV[10] the caller's now, ARGV[11] the successor, ARGV[12] its end.
var legacyRotateScript = goredis.NewScript(legacyPrelude + `
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

// legacyRevokeScript: ARGV[5] session ID, ARGV[6] the caller's now.
var legacyRevokeScript = goredis.NewScript(legacyPrelude + `
local id = ARGV[5]
local sk = P .. 's:' .. id
local s = redis.call('HMGET', sk, 'ah', 'ra')
if s[1] then revoke(sk, id, s[1], s[2], ARGV[6]) end
return 0
`)

// legacyDecryptFailureScript: ARGV[5] session ID.
var legacyDecryptFailureScript = goredis.NewScript(legacyPrelude + `
local sk = P .. 's:' .. ARGV[5]
local ah = redis.call('HGET', sk, 'ah')
if not ah then return -1 end
local n = redis.call('HINCRBY', sk, 'df', 1)
redis.call('SET', P .. 'a:' .. ah, encode(sk), 'XX', 'KEEPTTL')
return n
`)
