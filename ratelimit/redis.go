package ratelimit

import (
	"context"
	"fmt"
	"math"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/mplogin/mplogin"
)

// RedisOptions configures NewRedis. The zero value is usable.
type RedisOptions struct {
	// Prefix is put before every key; "" means "mplogin:rl:". Limiters
	// that must share buckets (the instances of one service) use the same
	// prefix and Rate; limiters with different Rates need different
	// prefixes or keys.
	Prefix string
	// Now is the clock; nil means time.Now. The instances' clocks may differ
	// by up to mplogin.MaxClockSkew (see the package doc).
	Now func() time.Time
}

const defaultPrefix = "mplogin:rl:"

// Redis is a Limiter whose buckets live in Redis, shared by every instance
// that uses the same server, prefix and Rate. It is safe for concurrent use.
type Redis struct {
	c        redis.Scripter
	prefix   string
	interval int64 // microseconds per token
	burst    int
	now      func() time.Time
}

// allowScript is one Allow, atomically. The stored value is the bucket's
// theoretical arrival time (TAT), the moment at which it will be full again,
// then the time of the write that set it by the writer's clock and by
// Redis's (TIME), colon-separated; a missing key is a full bucket, and a
// bare TAT (as written before the times were kept) one with no times. The
// bucket holds a token when now >= TAT - (burst-1)*interval. All times are
// integer microseconds, exact in Lua's doubles (see Rate.Validate). The key
// lives until TAT, when it would be full anyway. A refusal writes nothing.
//
// The TAT is on the clock of whichever instance wrote last. An instance
// whose clock is behind that one's would read the bucket as emptier than it
// is and refuse what it holds, so it counts instead from the writer's time
// of the write, moved on by the time Redis saw pass since, and never more
// than the skew allowed ahead of its own clock. Only the times of the
// instances are compared otherwise, so that tests on injected clocks stay
// exact.
//
// KEYS[1] the bucket; ARGV[1] now, ARGV[2] interval (µs per token),
// ARGV[3] burst, ARGV[4] the skew allowed (µs). Returns {1, 0} when
// allowed, {0, wait in µs} when not.
var allowScript = redis.NewScript(`
local now = tonumber(ARGV[1])
local interval = tonumber(ARGV[2])
local burst = tonumber(ARGV[3])
local skew = tonumber(ARGV[4])
local t = redis.call('TIME')
local rnow = tonumber(t[1]) * 1000000 + tonumber(t[2])
local tat, last, at
local v = redis.call('GET', KEYS[1])
if v then
  local a, b, c = string.match(v, '^(%d+):(%d+):(%d+)$')
  if a then
    tat, last, at = tonumber(a), tonumber(b), tonumber(c)
  else
    tat = tonumber(v)
  end
end
if last and last > now then
  now = math.min(last + math.max(rnow - at, 0), now + skew)
end
if tat == nil or tat < now then
  tat = now
end
local wait = tat - (burst - 1) * interval - now
if wait > 0 then
  return {0, wait}
end
tat = tat + interval
redis.call('SET', KEYS[1], string.format('%.0f:%.0f:%.0f', tat, now, rnow), 'PX', math.ceil((tat - now) / 1000))
return {1, 0}
`)

// NewRedis returns a Limiter with rate r for every key, kept in Redis
// through c (a *redis.Client, *redis.ClusterClient or *redis.Ring; each key
// is one Redis key, so Cluster is fine). It panics if r is invalid (see
// Rate.Validate). The rate is resolved to a whole number of microseconds
// per token.
func NewRedis(c redis.Scripter, r Rate, opts RedisOptions) *Redis {
	r.mustValidate()
	prefix := opts.Prefix
	if prefix == "" {
		prefix = defaultPrefix
	}
	now := opts.Now
	if now == nil {
		now = time.Now
	}
	return &Redis{
		c:        c,
		prefix:   prefix,
		interval: max(1, int64(math.Round(1e6/r.PerSecond))),
		burst:    r.Burst,
		now:      now,
	}
}

// Allow implements Limiter. It makes one round trip to Redis, bounded by
// ctx; Redis's errors come back wrapped, with a zero Decision, and the
// caller chooses between failing open and closed (the service fails open
// and logs).
func (l *Redis) Allow(ctx context.Context, key string) (Decision, error) {
	now := l.now().UnixMicro()
	res, err := allowScript.Run(ctx, l.c, []string{l.prefix + key}, now, l.interval, l.burst, mplogin.MaxClockSkew.Microseconds()).Int64Slice()
	if err != nil {
		return Decision{}, fmt.Errorf("ratelimit: redis: %w", err)
	}
	if len(res) != 2 {
		return Decision{}, fmt.Errorf("ratelimit: redis: unexpected reply %v", res)
	}
	if res[0] == 1 {
		return Decision{Allowed: true}, nil
	}
	return Decision{RetryAfter: ceilMillis(time.Duration(res[1]) * time.Microsecond)}, nil
}
