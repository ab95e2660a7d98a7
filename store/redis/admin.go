package redis

import (
	"cmp"
	"context"
	"slices"
	"time"

	goredis "github.com/redis/go-redis/v9"

	"github.com/mplogin/mplogin/store"
)

// userSessionsScript: ARGV[5] user ID. Returns the user's sessions that
// still exist, encoded.
var userSessionsScript = goredis.NewScript(prelude + `
local out = {}
for _, id in ipairs(userIds(P .. 'u:' .. ARGV[5])) do
  local r = load(id)
  if r and r.v then out[#out + 1] = r.v end
end
return out
`)

// moveSessionsScript: ARGV[5] into, ARGV[6] from. Gives every session of
// from the user into, under its access key, moves the IDs to into's index
// (which then lives at least as long as from's did) and deletes from's
// index. Returns how many sessions moved.
var moveSessionsScript = goredis.NewScript(prelude + `
local fk, n = P .. 'u:' .. ARGV[6], 0
local t = redis.call('PTTL', fk)
for _, id in ipairs(userIds(fk)) do
  local r = load(id)
  if r and r.f then
    upgrade(r)
    r.f[UID] = ARGV[5]
    redis.call('SET', r.ak, encode(r.f), 'XX', 'KEEPTTL')
    userIndex(ARGV[5], id, t)
    n = n + 1
  end
end
redis.call('DEL', fk)
return n
`)

// eraseSessionsScript: ARGV[5] user ID. Deletes every session of the user
// with its access key, previous access key, refresh tokens (spent ones
// too), grace and index entries, and the user's index.
var eraseSessionsScript = goredis.NewScript(prelude + `
local uk = P .. 'u:' .. ARGV[5]
for _, id in ipairs(userIds(uk)) do
  drop(id, load(id))
  redis.call('ZREM', P .. 'dl', id)
end
redis.call('DEL', uk)
return 0
`)

// eraseCodesScript: ARGV[5] how many identities, then each as platform,
// app ID, open ID; then code hashes (hex). Deletes those of the codes that
// belong to one of the identities. Returns how many it deleted.
var eraseCodesScript = goredis.NewScript(prelude + `
local n, of = tonumber(ARGV[5]), {}
for i = 0, n - 1 do
  of[ARGV[6 + 3*i] .. '\0' .. ARGV[7 + 3*i] .. '\0' .. ARGV[8 + 3*i]] = true
end
local removed = 0
for i = 6 + 3*n, #ARGV do
  local h = ARGV[i]
  local ck = P .. 'c:' .. h
  local v = redis.call('GET', ck)
  if v then
    local f = fields(v)
    if of[f[3] .. '\0' .. f[4] .. '\0' .. f[5]] then
      redis.call('DEL', ck)
      redis.call('ZREM', P .. 'cx', h)
      removed = removed + 1
    end
  end
end
return removed
`)

// ListUserSessions implements store.Sessions: one script reads the
// sessions in the user's index; the rotatable ones are kept here.
func (s *Store) ListUserSessions(ctx context.Context, userID string, now time.Time) ([]store.Session, error) {
	const op = "list user sessions"
	if err := s.begin(ctx, op); err != nil {
		return nil, err
	}
	vs, err := s.run(ctx, userSessionsScript, userID).StringSlice()
	if err != nil {
		return nil, s.fail(ctx, op, err)
	}
	var out []store.Session
	for _, v := range vs {
		sess, err := decodeSession(op, v)
		if err != nil {
			return nil, err
		}
		if sess.UserID == userID && sess.RevokedAt.IsZero() && now.Before(sess.RefreshExpiresAt) &&
			(sess.ExpiresAt.IsZero() || now.Before(sess.ExpiresAt)) {
			out = append(out, sess)
		}
	}
	slices.SortFunc(out, func(a, b store.Session) int {
		return cmp.Or(b.CreatedAt.Compare(a.CreatedAt), cmp.Compare(b.ID, a.ID))
	})
	return out, nil
}

// MoveUserSessions implements store.Sessions in one script.
func (s *Store) MoveUserSessions(ctx context.Context, into, from string) error {
	const op = "move user sessions"
	if err := s.begin(ctx, op); err != nil {
		return err
	}
	if into == from {
		return nil
	}
	return s.fail(ctx, op, s.run(ctx, moveSessionsScript, into, from).Err())
}

// eraseChunk is about how many codes one script looks at: the codes have
// no index by identity, so EraseUserSessions reads every code hash from
// the expiry index and checks them a chunk at a time, never holding Redis
// up for long.
const eraseChunk = 500

// EraseUserSessions implements store.Sessions: the sessions in one
// script, then the codes, through the codes' expiry index, a chunk per
// script. It is not one step: a code of one of the identities written
// while it runs may be missed (a login of an identity being erased).
func (s *Store) EraseUserSessions(ctx context.Context, userID string, identities []store.Identity) error {
	const op = "erase user sessions"
	if err := s.begin(ctx, op); err != nil {
		return err
	}
	if err := s.run(ctx, eraseSessionsScript, userID).Err(); err != nil {
		return s.fail(ctx, op, err)
	}
	if len(identities) == 0 {
		return nil
	}
	head := []any{len(identities)}
	for _, id := range identities {
		head = append(head, string(id.Family), id.AppID, id.OpenID)
	}
	// ZSCAN returns every code that stays in the index from start to end,
	// whatever the scripts delete in between.
	var cursor uint64
	for {
		kv, next, err := s.c.ZScan(ctx, s.prefix+"cx", cursor, "", eraseChunk).Result()
		if err != nil {
			return s.fail(ctx, op, err)
		}
		if len(kv) > 0 {
			args := slices.Clip(head)
			for i := 0; i < len(kv); i += 2 { // member, score, …
				args = append(args, kv[i])
			}
			if err := s.run(ctx, eraseCodesScript, args...).Err(); err != nil {
				return s.fail(ctx, op, err)
			}
		}
		if cursor = next; cursor == 0 {
			break
		}
	}
	return nil
}
