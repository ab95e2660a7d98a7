package ratelimit

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
)

// TestRedisSharedByInstances: two instances with the same prefix share one
// bucket per key; another prefix is another bucket.
func TestRedisSharedByInstances(t *testing.T) {
	c := testRedis(t)
	prefix := testPrefix(t, c)
	clock := newFakeClock()
	r := Rate{PerSecond: 1, Burst: 2}
	a := NewRedis(c, r, RedisOptions{Prefix: prefix, Now: clock.Now})
	b := NewRedis(c, r, RedisOptions{Prefix: prefix, Now: clock.Now})
	other := NewRedis(c, r, RedisOptions{Prefix: testPrefix(t, c), Now: clock.Now})
	mustAllow(t, a, "k", true)
	mustAllow(t, b, "k", true)
	if d := mustAllow(t, a, "k", false); d.RetryAfter != time.Second {
		t.Fatalf("RetryAfter %v, want 1s", d.RetryAfter)
	}
	mustAllow(t, b, "k", false)
	mustAllow(t, other, "k", true)
}

// TestRedisExpiry: a bucket's key lives until the bucket would be full, and
// a refusal does not extend it.
func TestRedisExpiry(t *testing.T) {
	c := testRedis(t)
	prefix := testPrefix(t, c)
	clock := newFakeClock()
	l := NewRedis(c, Rate{PerSecond: 2, Burst: 3}, RedisOptions{Prefix: prefix, Now: clock.Now})
	ctx := context.Background()
	pttl := func() time.Duration {
		t.Helper()
		d, err := c.PTTL(ctx, prefix+"k").Result()
		if err != nil {
			t.Fatal(err)
		}
		return d
	}
	mustAllow(t, l, "k", true)
	if d := pttl(); d <= 300*time.Millisecond || d > 500*time.Millisecond {
		t.Fatalf("PTTL after one request %v, want about 500ms", d)
	}
	mustAllow(t, l, "k", true)
	mustAllow(t, l, "k", true)
	ttl := pttl()
	if ttl <= 1300*time.Millisecond || ttl > 1500*time.Millisecond {
		t.Fatalf("PTTL after emptying the bucket %v, want about 1.5s", ttl)
	}
	before, err := c.Get(ctx, prefix+"k").Result()
	if err != nil {
		t.Fatal(err)
	}
	mustAllow(t, l, "k", false)
	if after, err := c.Get(ctx, prefix+"k").Result(); err != nil || after != before {
		t.Fatalf("refusal changed the bucket from %q to %q (%v)", before, after, err)
	}
	if d := pttl(); d > ttl {
		t.Fatalf("refusal extended PTTL from %v to %v", ttl, d)
	}
	// Deleting the key (as its expiry would) is a full bucket again.
	if err := c.Del(ctx, prefix+"k").Err(); err != nil {
		t.Fatal(err)
	}
	for range 3 {
		mustAllow(t, l, "k", true)
	}
}

func TestRedisDefaultPrefix(t *testing.T) {
	c := testRedis(t)
	key := "test:" + strings.TrimPrefix(testPrefix(t, c), "mplogin:test:rl:")
	t.Cleanup(func() { c.Del(context.Background(), defaultPrefix+key) })
	mustAllow(t, NewRedis(c, Rate{PerSecond: 1, Burst: 1}, RedisOptions{}), key, true)
	if n, err := c.Exists(context.Background(), defaultPrefix+key).Result(); err != nil || n != 1 {
		t.Fatalf("EXISTS %s = %d, %v; want 1", defaultPrefix+key, n, err)
	}
}

// TestRedisErrorWrapped needs no server: a closed client fails at once.
func TestRedisErrorWrapped(t *testing.T) {
	c := redis.NewClient(&redis.Options{Addr: "127.0.0.1:1"})
	c.Close()
	l := NewRedis(c, Rate{PerSecond: 1, Burst: 1}, RedisOptions{})
	d, err := l.Allow(context.Background(), "k")
	if !errors.Is(err, redis.ErrClosed) || !strings.HasPrefix(err.Error(), "ratelimit: redis: ") {
		t.Fatalf("err = %v, want redis.ErrClosed wrapped", err)
	}
	if d != (Decision{}) {
		t.Fatalf("Decision %+v with an error, want zero", d)
	}
}

// TestRedisCorruptValue: a value the script did not write counts as a full
// bucket, and a key of the wrong type is an error, not a panic.
func TestRedisCorruptValue(t *testing.T) {
	c := testRedis(t)
	prefix := testPrefix(t, c)
	ctx := context.Background()
	l := NewRedis(c, Rate{PerSecond: 1, Burst: 1}, RedisOptions{Prefix: prefix})
	if err := c.Set(ctx, prefix+"junk", "not a number", 0).Err(); err != nil {
		t.Fatal(err)
	}
	mustAllow(t, l, "junk", true)
	mustAllow(t, l, "junk", false)
	if err := c.LPush(ctx, prefix+"list", "x").Err(); err != nil {
		t.Fatal(err)
	}
	if _, err := l.Allow(ctx, "list"); err == nil {
		t.Fatal("Allow on a list key succeeded, want an error")
	}
}

func BenchmarkRedisAllow(b *testing.B) {
	c := testRedis(b)
	prefix := testPrefix(b, c)
	ctx := context.Background()
	l := NewRedis(c, Rate{PerSecond: 1e6, Burst: 1e6}, RedisOptions{Prefix: prefix})
	b.Run("existing-key", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			if _, err := l.Allow(ctx, "login:ip:192.0.2.1"); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("parallel-10k-keys", func(b *testing.B) {
		keys := benchKeys(10_000)
		b.ReportAllocs()
		b.RunParallel(func(pb *testing.PB) {
			i := 0
			for pb.Next() {
				i++
				if _, err := l.Allow(ctx, keys[i%len(keys)]); err != nil {
					b.Error(err)
					return
				}
			}
		})
	})
}
