package ratelimit

import (
	"context"
	"fmt"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
)

// skewedPair is two instances sharing a bucket, slow's clock lag behind
// fast's.
func skewedPair(t *testing.T, r Rate, lag time.Duration) (fast, slow *Redis, c *redis.Client, prefix string) {
	c = testRedis(t)
	prefix = testPrefix(t, c)
	clock := newFakeClock()
	behind := func() time.Time { return clock.Now().Add(-lag) }
	return NewRedis(c, r, RedisOptions{Prefix: prefix, Now: clock.Now}),
		NewRedis(c, r, RedisOptions{Prefix: prefix, Now: behind}), c, prefix
}

// TestRedisClockSkew: instances whose clocks differ by less than
// mplogin.MaxClockSkew share a bucket without refusing what it holds, and
// without allowing more than it holds. A bucket (1/s, burst 5) that one
// request left at 4 tokens by a clock 10 s ahead used to read as 6 tokens
// short on the instance behind, which refused the client's next request.
func TestRedisClockSkew(t *testing.T) {
	r := Rate{PerSecond: 1, Burst: 5}

	// The instance ahead first: the one behind counts from its time, and
	// the two together allow the burst, no more.
	fast, slow, _, _ := skewedPair(t, r, 10*time.Second)
	mustAllow(t, fast, "k", true)
	mustAllow(t, slow, "k", true)
	for i := 2; i < r.Burst; i++ {
		mustAllow(t, []*Redis{fast, slow}[i%2], "k", true)
	}
	if d := mustAllow(t, slow, "k", false); d.RetryAfter <= 0 || d.RetryAfter > time.Second {
		t.Fatalf("RetryAfter %v on the instance behind, want at most the time of one token", d.RetryAfter)
	}
	mustAllow(t, fast, "k", false)

	// The instance behind first.
	fast, slow, _, _ = skewedPair(t, r, 10*time.Second)
	mustAllow(t, slow, "k", true)
	mustAllow(t, fast, "k", true)
	mustAllow(t, slow, "k", true)
}

// TestRedisClockSkewRefill: a bucket emptied on the instance ahead refills
// for the instance behind as time passes, though the latter's clock has not
// yet reached the time of the last write: a client that waited its
// Retry-After is not refused again for the lag.
func TestRedisClockSkewRefill(t *testing.T) {
	r := Rate{PerSecond: 1, Burst: 2}
	fast, slow, c, prefix := skewedPair(t, r, 10*time.Second)
	mustAllow(t, fast, "k", true)
	mustAllow(t, fast, "k", true)
	mustAllow(t, slow, "k", false)
	// Two seconds pass by Redis's clock (the injected clocks stand still).
	backdate(t, c, prefix+"k", 2*time.Second)
	mustAllow(t, slow, "k", true)
	mustAllow(t, slow, "k", true)
	mustAllow(t, slow, "k", false)
}

// TestRedisClockSkewBounded: another instance's clock is followed only up
// to mplogin.MaxClockSkew ahead of this one's.
func TestRedisClockSkewBounded(t *testing.T) {
	r := Rate{PerSecond: 1, Burst: 60}
	fast, slow, _, _ := skewedPair(t, r, time.Hour)
	for range 30 {
		mustAllow(t, fast, "k", true)
	}
	// fast's bucket holds 30 tokens at its time; at slow's, an hour before,
	// it is empty, and slow counts from only 30 s later than its own time.
	if d := mustAllow(t, slow, "k", false); d.RetryAfter < time.Hour-time.Minute {
		t.Fatalf("RetryAfter %v: followed a clock an hour ahead", d.RetryAfter)
	}
}

// backdate moves the Redis time of the bucket's last write d into the past,
// as if d had passed since.
func backdate(t *testing.T, c *redis.Client, key string, d time.Duration) {
	t.Helper()
	ctx := context.Background()
	v, err := c.Get(ctx, key).Result()
	if err != nil {
		t.Fatal(err)
	}
	f := strings.Split(v, ":")
	if len(f) != 3 {
		t.Fatalf("bucket %q: want TAT:time:Redis time", v)
	}
	at, err := strconv.ParseInt(f[2], 10, 64)
	if err != nil {
		t.Fatal(err)
	}
	f[2] = fmt.Sprint(at - d.Microseconds())
	if err := c.Set(ctx, key, strings.Join(f, ":"), redis.KeepTTL).Err(); err != nil {
		t.Fatal(err)
	}
}
