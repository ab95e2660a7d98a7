package ratelimit

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/mplogin/mplogin/internal/testutil"
)

// redisEnv names the Redis the Redis tests use, e.g.
// redis://127.0.0.1:6379/0. Without it they are skipped.
const redisEnv = "MPLOGIN_TEST_REDIS"

// t0 is the fake clock's start, on a whole second so that waits come out
// in round numbers.
var t0 = time.Date(2031, 3, 4, 5, 6, 7, 0, time.UTC)

// newFakeClock returns an injected clock at t0 that moves only when told
// to.
func newFakeClock() *testutil.Clock { return testutil.NewClock(t0) }

// implementation builds a fresh limiter with rate r and clock now, with no
// state shared with any other test.
type implementation struct {
	name string
	new  func(t testing.TB, r Rate, now func() time.Time) Limiter
}

// implementations returns Memory and Redis, so that the same table checks
// that they agree. Without MPLOGIN_TEST_REDIS, Redis's new skips the test
// that calls it (testRedis): a skip shows, where leaving Redis out of the
// list would look like a pass.
func implementations() []implementation {
	return []implementation{{
		name: "memory",
		new: func(_ testing.TB, r Rate, now func() time.Time) Limiter {
			return NewMemory(r, MemoryOptions{Now: now})
		},
	}, {
		name: "redis",
		new: func(t testing.TB, r Rate, now func() time.Time) Limiter {
			c := testRedis(t)
			return NewRedis(c, r, RedisOptions{Prefix: testPrefix(t, c), Now: now})
		},
	}}
}

// testRedis returns a client for the Redis named by MPLOGIN_TEST_REDIS,
// skipping the test when it is unset; it is closed when the test ends.
func testRedis(t testing.TB) *redis.Client {
	t.Helper()
	url := os.Getenv(redisEnv)
	if url == "" {
		t.Skipf("redis: set %s (e.g. redis://127.0.0.1:6379/0) to run the Redis tests", redisEnv)
	}
	opts, err := redis.ParseURL(url)
	if err != nil {
		t.Fatalf("%s: %v", redisEnv, err)
	}
	c := redis.NewClient(opts)
	t.Cleanup(func() { c.Close() })
	if err := c.Ping(context.Background()).Err(); err != nil {
		t.Fatalf("redis at %s: %v", redisEnv, err)
	}
	return c
}

// testPrefix returns a key prefix no other test uses, and deletes every key
// under it when the test ends.
func testPrefix(t testing.TB, c *redis.Client) string {
	t.Helper()
	b := make([]byte, 8)
	rand.Read(b)
	prefix := "mplogin:test:rl:" + hex.EncodeToString(b) + ":"
	t.Cleanup(func() {
		ctx := context.Background()
		iter := c.Scan(ctx, 0, prefix+"*", 1000).Iterator()
		var keys []string
		for iter.Next(ctx) {
			keys = append(keys, iter.Val())
		}
		if err := iter.Err(); err != nil {
			t.Errorf("scan %s*: %v", prefix, err)
			return
		}
		if len(keys) > 0 {
			if err := c.Del(ctx, keys...).Err(); err != nil {
				t.Errorf("delete %s*: %v", prefix, err)
			}
		}
	})
	return prefix
}

// step is one or more requests (n, default 1) for key after moving the
// clock by advance. retry is the RetryAfter expected when refused; -1 only
// requires it to be positive.
type step struct {
	advance time.Duration
	key     string
	n       int
	allowed bool
	retry   time.Duration
}

func allow(key string, n int) step { return step{key: key, n: n, allowed: true} }

func refuse(key string, retry time.Duration) step { return step{key: key, retry: retry} }

func after(d time.Duration, s step) step { s.advance = d; return s }

var behaviour = []struct {
	name  string
	rate  Rate
	steps []step
}{
	{"burst then refusal", Rate{PerSecond: 1, Burst: 3}, []step{
		allow("a", 3),
		refuse("a", time.Second),
	}},
	{"refills one token at a time", Rate{PerSecond: 1, Burst: 3}, []step{
		allow("a", 3),
		after(999*time.Millisecond, refuse("a", time.Millisecond)),
		after(time.Millisecond, allow("a", 1)),
		refuse("a", time.Second),
		after(2*time.Second, allow("a", 2)),
		refuse("a", time.Second),
	}},
	{"refused requests take nothing", Rate{PerSecond: 2, Burst: 2}, []step{
		allow("a", 2),
		{key: "a", n: 50, retry: 500 * time.Millisecond},
		after(500*time.Millisecond, allow("a", 1)),
		refuse("a", 500*time.Millisecond),
	}},
	{"partial refill", Rate{PerSecond: 10, Burst: 5}, []step{
		allow("a", 5),
		after(250*time.Millisecond, allow("a", 2)),
		refuse("a", 50*time.Millisecond),
	}},
	{"refill stops at burst", Rate{PerSecond: 2, Burst: 2}, []step{
		allow("a", 2),
		after(time.Hour, allow("a", 2)),
		refuse("a", 500*time.Millisecond),
	}},
	{"keys are independent", Rate{PerSecond: 1, Burst: 2}, []step{
		allow("a", 2),
		refuse("a", time.Second),
		allow("b", 2),
		refuse("b", time.Second),
		after(500*time.Millisecond, refuse("a", 500*time.Millisecond)),
		allow("c", 1),
		after(500*time.Millisecond, allow("a", 1)),
		allow("b", 1),
		refuse("a", time.Second),
		refuse("b", time.Second),
		allow("c", 1),
	}},
	{"slow rate", Rate{PerSecond: 0.5, Burst: 1}, []step{
		allow("a", 1),
		refuse("a", 2*time.Second),
		after(1500*time.Millisecond, refuse("a", 500*time.Millisecond)),
		after(500*time.Millisecond, allow("a", 1)),
	}},
	{"waits round up to whole milliseconds", Rate{PerSecond: 800, Burst: 1}, []step{
		allow("a", 1),
		refuse("a", 2*time.Millisecond), // 1.25ms
		after(time.Millisecond, refuse("a", time.Millisecond)), // 0.25ms
		after(250*time.Microsecond, allow("a", 1)),
	}},
	{"a clock going back gives nothing", Rate{PerSecond: 1, Burst: 1}, []step{
		allow("a", 1),
		after(-10*time.Second, refuse("a", -1)),
		after(10*time.Second, refuse("a", time.Second)),
		after(time.Second, allow("a", 1)),
	}},
}

// TestBehaviour runs one table against every implementation, so that
// Memory and Redis agree on the bucket.
func TestBehaviour(t *testing.T) {
	for _, impl := range implementations() {
		t.Run(impl.name, func(t *testing.T) {
			for _, tc := range behaviour {
				t.Run(tc.name, func(t *testing.T) {
					clock := newFakeClock()
					l := impl.new(t, tc.rate, clock.Now)
					ctx := context.Background()
					for i, s := range tc.steps {
						clock.Advance(s.advance)
						for j := range max(1, s.n) {
							d, err := l.Allow(ctx, s.key)
							if err != nil {
								t.Fatalf("step %d.%d: Allow(%q): %v", i, j, s.key, err)
							}
							if d.Allowed != s.allowed {
								t.Fatalf("step %d.%d: Allow(%q) = %+v, want allowed %v", i, j, s.key, d, s.allowed)
							}
							switch {
							case d.Allowed && d.RetryAfter != 0:
								t.Fatalf("step %d.%d: allowed with RetryAfter %v", i, j, d.RetryAfter)
							case !d.Allowed && s.retry < 0 && d.RetryAfter <= 0:
								t.Fatalf("step %d.%d: refused with RetryAfter %v, want > 0", i, j, d.RetryAfter)
							case !d.Allowed && s.retry >= 0 && d.RetryAfter != s.retry:
								t.Fatalf("step %d.%d: refused with RetryAfter %v, want %v", i, j, d.RetryAfter, s.retry)
							}
						}
					}
				})
			}
		})
	}
}

// TestRetryAfterIsEnough checks the promise of RetryAfter over many rates
// and moments: one request made when it runs out is allowed.
func TestRetryAfterIsEnough(t *testing.T) {
	rates := []Rate{
		{PerSecond: 3, Burst: 2}, {PerSecond: 7, Burst: 3}, {PerSecond: 0.3, Burst: 1},
		{PerSecond: 1000.0 / 3, Burst: 4}, {PerSecond: 12.5, Burst: 10},
	}
	for _, impl := range implementations() {
		t.Run(impl.name, func(t *testing.T) {
			for _, r := range rates {
				clock := newFakeClock()
				l := impl.new(t, r, clock.Now)
				ctx := context.Background()
				step := time.Duration(float64(time.Second) / r.PerSecond / 7)
				for i := range 200 {
					clock.Advance(step)
					for {
						d, err := l.Allow(ctx, "a")
						if err != nil {
							t.Fatal(err)
						}
						if d.Allowed {
							continue
						}
						if d.RetryAfter <= 0 || d.RetryAfter%time.Millisecond != 0 {
							t.Fatalf("%+v, round %d: RetryAfter %v, want whole positive milliseconds", r, i, d.RetryAfter)
						}
						if d.RetryAfter > time.Duration(float64(time.Second)/r.PerSecond)+time.Millisecond {
							t.Fatalf("%+v, round %d: RetryAfter %v exceeds one interval", r, i, d.RetryAfter)
						}
						clock.Advance(d.RetryAfter)
						if d, err := l.Allow(ctx, "a"); err != nil || !d.Allowed {
							t.Fatalf("%+v, round %d: after RetryAfter: %+v, %v; want allowed", r, i, d, err)
						}
						break
					}
				}
			}
		})
	}
}

// TestConcurrentBurst: at a frozen clock, however many goroutines ask,
// exactly Burst requests are allowed.
func TestConcurrentBurst(t *testing.T) {
	const burst, goroutines, each = 50, 32, 10
	for _, impl := range implementations() {
		t.Run(impl.name, func(t *testing.T) {
			clock := newFakeClock()
			l := impl.new(t, Rate{PerSecond: 1, Burst: burst}, clock.Now)
			var allowed, refused atomic.Int64
			var wg sync.WaitGroup
			for g := range goroutines {
				wg.Go(func() {
					for i := range each {
						// Other keys too, on the same and other shards.
						if _, err := l.Allow(context.Background(), fmt.Sprintf("other:%d:%d", g, i)); err != nil {
							t.Error(err)
							return
						}
						d, err := l.Allow(context.Background(), "login:ip:192.0.2.1")
						if err != nil {
							t.Error(err)
							return
						}
						if d.Allowed {
							allowed.Add(1)
						} else {
							refused.Add(1)
						}
					}
				})
			}
			wg.Wait()
			if allowed.Load() != burst || refused.Load() != goroutines*each-burst {
				t.Fatalf("allowed %d, refused %d; want %d and %d", allowed.Load(), refused.Load(), burst, goroutines*each-burst)
			}
		})
	}
}

func TestValidate(t *testing.T) {
	for _, tc := range []struct {
		r   Rate
		bad string
	}{
		{Rate{PerSecond: 1, Burst: 1}, ""},
		{Rate{PerSecond: 0.001, Burst: 10}, ""},
		{Rate{PerSecond: 1e6, Burst: 1_000_000}, ""},
		{Rate{PerSecond: 0, Burst: 1}, "PerSecond"},
		{Rate{PerSecond: -1, Burst: 1}, "PerSecond"},
		{Rate{PerSecond: 2e6, Burst: 1}, "PerSecond"},
		{Rate{PerSecond: nan(), Burst: 1}, "PerSecond"},
		{Rate{PerSecond: 1, Burst: 0}, "Burst"},
		{Rate{PerSecond: 1e-6, Burst: 100}, "year"},
	} {
		err := tc.r.Validate()
		if tc.bad == "" && err != nil {
			t.Errorf("%+v: %v", tc.r, err)
		}
		if tc.bad != "" && (err == nil || !strings.Contains(err.Error(), tc.bad)) {
			t.Errorf("%+v: got %v, want an error about %s", tc.r, err, tc.bad)
		}
	}
	for name, f := range map[string]func(){
		"NewMemory": func() { NewMemory(Rate{}, MemoryOptions{}) },
		"NewRedis":  func() { NewRedis(nil, Rate{PerSecond: 1}, RedisOptions{}) },
	} {
		func() {
			defer func() {
				if recover() == nil {
					t.Errorf("%s with an invalid Rate did not panic", name)
				}
			}()
			f()
		}()
	}
}

func nan() float64 { var z float64; return z / z }

func TestCeilMillis(t *testing.T) {
	for in, want := range map[time.Duration]time.Duration{
		1:                                       time.Millisecond,
		time.Millisecond:                        time.Millisecond,
		time.Millisecond + 1:                    2 * time.Millisecond,
		time.Second:                             time.Second,
		time.Second - time.Microsecond:          time.Second,
		1500*time.Millisecond + time.Nanosecond: 1501 * time.Millisecond,
	} {
		if got := ceilMillis(in); got != want {
			t.Errorf("ceilMillis(%v) = %v, want %v", in, got, want)
		}
	}
}
