// Package ratelimit limits how often one key (a client IP, an appid) may call
// the login service. Keys are built by the caller, e.g.
// "login:ip:1.2.3.4" or "login:app:shop"; the caller should fold an IPv6
// address to its prefix first (the service uses a /56), since one client
// usually owns the whole prefix.
//
// # The bucket
//
// Every key has a token bucket of Rate.Burst tokens, full at first, refilled
// at Rate.PerSecond tokens a second up to Burst. A request takes one token;
// with none left it is refused, and Decision.RetryAfter says when the bucket
// will hold a token again. A refused request takes nothing, so hammering a
// limited key does not push its recovery further out. A bucket that has
// refilled to Burst is indistinguishable from one never used, which is what
// lets both implementations forget it.
//
// # Memory: one process
//
// Memory keeps a golang.org/x/time/rate.Limiter per key in a table of at most
// MaxKeys entries, split into shards with a lock each. Keys are hashed with a
// per-process random seed and only the 64-bit hash is kept, so memory per key
// is fixed (about 150 bytes) whatever the key's length, and an outsider
// cannot aim keys at one shard; two keys whose hashes collide, with odds of
// about MaxKeys in 2^64 per key, would share a bucket. When a new key finds
// its shard full, Memory evicts the bucket that is nearest to full: a full
// one if any (nothing is lost), otherwise the one with the most tokens. It
// never evicts a bucket that would refuse its next request; if every bucket
// in the shard would, the new key is itself refused until the first of them
// has a token again (at most 1/PerSecond). Hence:
//
//   - memory stays bounded by MaxKeys, however many keys are sprayed;
//   - a key that is being refused stays refused until its own refill lets it
//     through: traffic on other keys never resets it;
//   - an evicted key had at least one token, so eviction can hand it back at
//     most Burst-1 tokens early, and only when no other bucket in its shard
//     is fuller;
//   - new keys are refused only while every key in their shard (MaxKeys is
//     split over up to 64 shards of at least 128 keys) has emptied its
//     bucket within the last 1/PerSecond: size MaxKeys well above the number
//     of clients expected to be limited at once.
//
// # Redis: shared by every instance
//
// Redis keeps the same bucket in one Redis key per limiter key, so every
// instance of the service sees one limit. The bucket is stored as its
// theoretical arrival time (GCRA): the moment it will be full again. One Lua
// script reads and updates it atomically, and gives the key a time to live
// ending at that moment, so an idle bucket vanishes from Redis exactly when
// it would be full anyway. Keys are stored as given, after RedisOptions.Prefix,
// so the caller keeps them short (an appid is checked before it is used in
// a key).
//
// The script takes the time from the instance's injected clock (Unix
// microseconds), not from Redis's TIME, so that tests are deterministic. The
// instances' clocks differ, though, and a bucket is on the clock of the
// instance that wrote it last. So it keeps the time of that write, and an
// instance whose clock is behind counts from it (moved on by the time
// Redis's clock saw pass since) instead of its own, up to
// mplogin.MaxClockSkew ahead: it does not read the bucket emptier than the
// instance ahead left it, which used to refuse a client's next request as
// soon as the lag passed (Burst-2)/PerSecond (3 s at the login defaults).
// An instance whose clock is ahead by d may read a bucket up to d*PerSecond
// tokens fuller than it is. Keep the hosts on NTP; a skew of milliseconds is
// immaterial at login rates.
//
// # Errors
//
// Memory never fails. Redis returns Redis's errors wrapped, and whether to
// let the request through is the caller's decision: the service fails OPEN
// on a limiter error and logs it, since refusing every login while Redis is
// down would turn a Redis outage into a login outage.
package ratelimit

import (
	"context"
	"errors"
	"math"
	"time"
)

// Rate is a token bucket: Burst requests at once, refilled at PerSecond.
type Rate struct {
	// PerSecond is the refill rate in tokens a second; it may be below 1
	// (0.5 is one request every 2s).
	PerSecond float64
	// Burst is the bucket's size: how many requests a key that has been idle
	// may make at once.
	Burst int
}

// Limits on a Rate, so that the Redis script's arithmetic (integer
// microseconds in Lua's doubles) stays exact: with an interval of at least
// 1µs and a bucket that refills within a year, no time exceeds 2^53µs.
const (
	maxPerSecond = 1e6
	maxFillTime  = 365 * 24 * time.Hour
)

// Validate reports whether r is usable: PerSecond in (0, 1e6], Burst at
// least 1, and a bucket that refills within a year (Burst/PerSecond). Check
// configured rates with it at start-up; the constructors panic on an invalid
// Rate.
func (r Rate) Validate() error {
	switch {
	case math.IsNaN(r.PerSecond) || r.PerSecond <= 0 || r.PerSecond > maxPerSecond:
		return errors.New("ratelimit: PerSecond must be in (0, 1e6]")
	case r.Burst < 1:
		return errors.New("ratelimit: Burst must be at least 1")
	case float64(r.Burst)/r.PerSecond > maxFillTime.Seconds():
		return errors.New("ratelimit: Burst/PerSecond must be at most a year")
	}
	return nil
}

func (r Rate) mustValidate() {
	if err := r.Validate(); err != nil {
		panic(err)
	}
}

// Decision is the outcome of one Allow.
type Decision struct {
	// Allowed is true when the request may proceed; it has taken a token.
	Allowed bool
	// RetryAfter is zero when Allowed. Otherwise it is how long until the
	// key's bucket holds a token again, so that one request made then is
	// allowed (unless others took the token first): at least 1ms, rounded up
	// to whole milliseconds. Rounding it up to whole seconds for a
	// Retry-After header is the caller's job.
	RetryAfter time.Duration
}

// Limiter decides whether a request under key may proceed now.
//
// Implementations are safe for concurrent use.
type Limiter interface {
	// Allow takes a token from key's bucket if it holds one. An error means
	// no decision could be made (Redis unreachable); the Decision is then
	// the zero value, and the caller chooses to fail open or closed.
	Allow(ctx context.Context, key string) (Decision, error)
}

var (
	_ Limiter = (*Memory)(nil)
	_ Limiter = (*Redis)(nil)
)

// ceilMillis rounds d up to whole milliseconds, at least 1ms.
func ceilMillis(d time.Duration) time.Duration {
	if d <= time.Millisecond {
		return time.Millisecond
	}
	if r := d % time.Millisecond; r != 0 {
		d += time.Millisecond - r
	}
	return d
}
