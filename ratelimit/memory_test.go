package ratelimit

import (
	"context"
	"fmt"
	"hash/maphash"
	"math/rand/v2"
	"runtime"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// holds reports whether m has a bucket for key.
func (m *Memory) holds(key string) bool {
	h := maphash.String(m.seed, key)
	s := &m.shards[h&m.mask]
	s.mu.Lock()
	defer s.mu.Unlock()
	_, ok := s.m[h]
	return ok
}

// checkTable fails t unless every shard's map and heap agree and respect
// the bound.
func checkTable(t *testing.T, m *Memory, maxKeys int) {
	t.Helper()
	total := 0
	for i := range m.shards {
		s := &m.shards[i]
		s.mu.Lock()
		if len(s.m) != len(s.heap) || len(s.m) > s.max {
			t.Errorf("shard %d: %d keys, %d heap slots, max %d", i, len(s.m), len(s.heap), s.max)
		}
		for j, sl := range s.heap {
			if s.m[sl.key] != sl.lim {
				t.Errorf("shard %d: heap slot %d is not the map's bucket for its key", i, j)
			}
			if j > 0 && s.heap[(j-1)/2].at > sl.at {
				t.Errorf("shard %d: heap order broken at %d", i, j)
			}
		}
		total += s.max
		s.mu.Unlock()
	}
	if total != maxKeys {
		t.Errorf("shards hold %d keys in all, want MaxKeys %d", total, maxKeys)
	}
	if n := m.Len(); n > maxKeys {
		t.Errorf("Len() = %d > MaxKeys %d", n, maxKeys)
	}
}

func mustAllow(t *testing.T, l Limiter, key string, want bool) Decision {
	t.Helper()
	d, err := l.Allow(context.Background(), key)
	if err != nil {
		t.Fatal(err)
	}
	if d.Allowed != want {
		t.Fatalf("Allow(%q) = %+v, want allowed %v", key, d, want)
	}
	return d
}

func TestMemorySharding(t *testing.T) {
	for _, tc := range []struct{ maxKeys, shards int }{
		{0, 64}, {1, 1}, {255, 1}, {256, 2}, {1000, 4}, {1024, 8}, {100_000, 64}, {1 << 30, 64},
	} {
		m := NewMemory(Rate{PerSecond: 1, Burst: 1}, MemoryOptions{MaxKeys: tc.maxKeys})
		if len(m.shards) != tc.shards {
			t.Errorf("MaxKeys %d: %d shards, want %d", tc.maxKeys, len(m.shards), tc.shards)
		}
		want := tc.maxKeys
		if want == 0 {
			want = defaultMaxKeys
		}
		checkTable(t, m, want)
	}
}

// TestMemorySprayIsBounded sprays ten times MaxKeys keys: the table stays
// within MaxKeys, and since every sprayed bucket still has tokens to spare,
// none of the newcomers is refused.
func TestMemorySprayIsBounded(t *testing.T) {
	const maxKeys = 1024
	clock := newFakeClock()
	m := NewMemory(Rate{PerSecond: 1, Burst: 5}, MemoryOptions{MaxKeys: maxKeys, Now: clock.Now})
	for i := range 10 * maxKeys {
		mustAllow(t, m, fmt.Sprintf("login:ip:10.%d.%d.%d", i>>16, i>>8&255, i&255), true)
		if i%997 == 0 {
			checkTable(t, m, maxKeys)
		}
	}
	checkTable(t, m, maxKeys)
	if n := m.Len(); n != maxKeys {
		t.Fatalf("Len() = %d after the spray, want %d (full)", n, maxKeys)
	}
}

// TestMemorySprayOfEmptiedBuckets: with Burst 1 every sprayed bucket is
// limiting its key, so none may be evicted; newcomers to a full shard are
// refused until the first bucket there has a token again.
func TestMemorySprayOfEmptiedBuckets(t *testing.T) {
	const maxKeys = 1024
	clock := newFakeClock()
	m := NewMemory(Rate{PerSecond: 1, Burst: 1}, MemoryOptions{MaxKeys: maxKeys, Now: clock.Now})
	var held []string
	for i := range 10 * maxKeys {
		key := fmt.Sprintf("k%d", i)
		d := mustAllowAny(t, m, key)
		if d.Allowed {
			held = append(held, key)
		} else if d.RetryAfter != time.Second {
			t.Fatalf("newcomer refused with RetryAfter %v, want 1s", d.RetryAfter)
		}
	}
	checkTable(t, m, maxKeys)
	if len(held) != maxKeys {
		t.Fatalf("%d newcomers allowed, want exactly MaxKeys %d", len(held), maxKeys)
	}
	// A second later each held key has its token back, and only that.
	clock.Advance(time.Second)
	for _, key := range held {
		mustAllow(t, m, key, true)
		mustAllow(t, m, key, false)
	}
	if d := mustAllow(t, m, "late", false); d.RetryAfter != time.Second {
		t.Fatalf("newcomer refused with RetryAfter %v, want 1s", d.RetryAfter)
	}
	clock.Advance(time.Second)
	mustAllow(t, m, "late", true)
	checkTable(t, m, maxKeys)
}

func mustAllowAny(t *testing.T, l Limiter, key string) Decision {
	t.Helper()
	d, err := l.Allow(context.Background(), key)
	if err != nil {
		t.Fatal(err)
	}
	return d
}

// TestMemorySprayDoesNotResetLimitedKey: a key being refused stays refused,
// and is not handed a fresh burst, whatever is sprayed beside it.
func TestMemorySprayDoesNotResetLimitedKey(t *testing.T) {
	const maxKeys = 256
	clock := newFakeClock()
	m := NewMemory(Rate{PerSecond: 1, Burst: 5}, MemoryOptions{MaxKeys: maxKeys, Now: clock.Now})
	const victim = "login:app:shop"
	mustAllow(t, m, victim, true)
	mustAllow(t, m, victim, true)
	mustAllow(t, m, victim, true)
	mustAllow(t, m, victim, true)
	mustAllow(t, m, victim, true)
	mustAllow(t, m, victim, false)
	// Half a token back: still limited, but nearer to full than the
	// emptied buckets sprayed below, so first in line if limited buckets
	// were ever evicted.
	clock.Advance(500 * time.Millisecond)

	// Keys that take one token each, then keys that empty their bucket.
	for i := range 10 * maxKeys {
		mustAllow(t, m, fmt.Sprintf("spray1:%d", i), true)
	}
	for i := range 10 * maxKeys {
		for range 5 {
			mustAllowAny(t, m, fmt.Sprintf("spray5:%d", i))
		}
	}
	checkTable(t, m, maxKeys)
	if !m.holds(victim) {
		t.Fatal("the limited key was evicted")
	}
	if d := mustAllow(t, m, victim, false); d.RetryAfter != 500*time.Millisecond {
		t.Fatalf("victim's RetryAfter %v, want 500ms", d.RetryAfter)
	}
	// Its own refill lets it through once, not five times.
	clock.Advance(500 * time.Millisecond)
	mustAllow(t, m, victim, true)
	mustAllow(t, m, victim, false)
}

// TestMemorySprayOverTime: a key kept at its limit gets exactly its refill
// while new keys are sprayed beside it as the clock runs.
func TestMemorySprayOverTime(t *testing.T) {
	const maxKeys = 128
	clock := newFakeClock()
	m := NewMemory(Rate{PerSecond: 1, Burst: 5}, MemoryOptions{MaxKeys: maxKeys, Now: clock.Now})
	const victim = "login:ip:203.0.113.9"
	for range 5 {
		mustAllow(t, m, victim, true)
	}
	allowed, n := 0, 0
	for range 1000 { // 10s in 10ms steps
		clock.Advance(10 * time.Millisecond)
		for range 30 {
			n++
			mustAllow(t, m, fmt.Sprintf("spray:%d", n), true)
		}
		if d := mustAllowAny(t, m, victim); d.Allowed {
			allowed++
		}
	}
	checkTable(t, m, maxKeys)
	if allowed != 10 {
		t.Fatalf("victim allowed %d times in 10s at 1/s, want 10", allowed)
	}
}

// TestMemoryEvictionOrder: a full bucket goes first; then the one with the
// most tokens, not the least recently used; never one that would refuse.
func TestMemoryEvictionOrder(t *testing.T) {
	t.Run("full first", func(t *testing.T) {
		clock := newFakeClock()
		m := NewMemory(Rate{PerSecond: 1, Burst: 4}, MemoryOptions{MaxKeys: 3, Now: clock.Now})
		for range 4 {
			mustAllow(t, m, "a", true)
		}
		mustAllow(t, m, "b", true)
		mustAllow(t, m, "c", true)
		mustAllow(t, m, "c", true)
		clock.Advance(time.Second) // a: 1 token, b: full, c: 3
		mustAllow(t, m, "d", true)
		if m.holds("b") || !m.holds("a") || !m.holds("c") || !m.holds("d") {
			t.Fatalf("holds a %v b %v c %v d %v; want b evicted", m.holds("a"), m.holds("b"), m.holds("c"), m.holds("d"))
		}
		checkTable(t, m, 3)
	})
	t.Run("most tokens, not least recently used", func(t *testing.T) {
		clock := newFakeClock()
		m := NewMemory(Rate{PerSecond: 1, Burst: 4}, MemoryOptions{MaxKeys: 2, Now: clock.Now})
		for range 3 {
			mustAllow(t, m, "old", true) // 1 token left
		}
		clock.Advance(10 * time.Millisecond)
		mustAllow(t, m, "new", true) // 3 tokens left
		mustAllow(t, m, "x", true)
		if m.holds("new") || !m.holds("old") {
			t.Fatalf("holds old %v new %v; want new evicted", m.holds("old"), m.holds("new"))
		}
		// old kept its state: one token, then refused.
		mustAllow(t, m, "old", true)
		mustAllow(t, m, "old", false)
	})
	t.Run("stale heap bounds are corrected", func(t *testing.T) {
		clock := newFakeClock()
		m := NewMemory(Rate{PerSecond: 1, Burst: 10}, MemoryOptions{MaxKeys: 2, Now: clock.Now})
		mustAllow(t, m, "a", true) // heap top: full again at t0+1s
		clock.Advance(time.Millisecond)
		mustAllow(t, m, "b", true) // full again at t0+1.001s
		for range 8 {
			mustAllow(t, m, "a", true) // really full again at t0+9s now
		}
		mustAllow(t, m, "c", true)
		if m.holds("b") || !m.holds("a") {
			t.Fatalf("holds a %v b %v; want b evicted", m.holds("a"), m.holds("b"))
		}
		checkTable(t, m, 2)
	})
	t.Run("never one that would refuse", func(t *testing.T) {
		clock := newFakeClock()
		m := NewMemory(Rate{PerSecond: 1, Burst: 2}, MemoryOptions{MaxKeys: 2, Now: clock.Now})
		for _, k := range []string{"a", "b"} {
			mustAllow(t, m, k, true)
			clock.Advance(250 * time.Millisecond)
			mustAllow(t, m, k, true)
		}
		// a has 0.5 tokens, b 0.25: both limited. a recovers first.
		if d := mustAllow(t, m, "c", false); d.RetryAfter != 500*time.Millisecond {
			t.Fatalf("newcomer's RetryAfter %v, want 500ms", d.RetryAfter)
		}
		clock.Advance(500 * time.Millisecond)
		mustAllow(t, m, "c", true)
		if m.holds("a") || !m.holds("b") {
			t.Fatalf("holds a %v b %v; want a evicted", m.holds("a"), m.holds("b"))
		}
		mustAllow(t, m, "b", false)
	})
}

// TestMemoryRandomised drives the table with random keys, clock steps and
// goroutines under -race, checking its invariants throughout.
func TestMemoryRandomised(t *testing.T) {
	const maxKeys = 300
	var nowNs atomic.Int64
	nowNs.Store(t0.UnixNano())
	m := NewMemory(Rate{PerSecond: 20, Burst: 3}, MemoryOptions{
		MaxKeys: maxKeys,
		Now:     func() time.Time { return time.Unix(0, nowNs.Load()) },
	})
	var wg sync.WaitGroup
	for g := range 2 * runtime.GOMAXPROCS(0) {
		wg.Go(func() {
			rnd := rand.New(rand.NewPCG(uint64(g), 1))
			for range 5000 {
				if rnd.IntN(10) == 0 {
					nowNs.Add(int64(rnd.IntN(int(20 * time.Millisecond))))
				}
				d, err := m.Allow(context.Background(), fmt.Sprintf("k%d", rnd.IntN(3*maxKeys)))
				if err != nil || (!d.Allowed && d.RetryAfter <= 0) || (d.Allowed && d.RetryAfter != 0) {
					t.Errorf("Allow = %+v, %v", d, err)
					return
				}
			}
		})
	}
	wg.Wait()
	checkTable(t, m, maxKeys)
}

// BenchmarkMemoryAllow measures the login hot path. On the reference VM
// time.Now alone costs about 110ns, so "existing-key" uses a clock that
// costs nothing, to show the limiter's own share, and the others use
// time.Now.
func BenchmarkMemoryAllow(b *testing.B) {
	ctx := context.Background()
	b.Run("existing-key", func(b *testing.B) {
		// One token a microsecond, and the clock moves a microsecond a
		// call: every call is allowed.
		now := t0
		m := NewMemory(Rate{PerSecond: 1e6, Burst: 1000}, MemoryOptions{
			Now: func() time.Time { now = now.Add(time.Microsecond); return now },
		})
		m.Allow(ctx, "login:ip:192.0.2.1")
		b.ReportAllocs()
		for b.Loop() {
			if d, _ := m.Allow(ctx, "login:ip:192.0.2.1"); !d.Allowed {
				b.Fatal("refused")
			}
		}
	})
	b.Run("existing-key-time.Now", func(b *testing.B) {
		// Eight keys, so that each sees less than its 1e6/s.
		m := NewMemory(Rate{PerSecond: 1e6, Burst: 1e6}, MemoryOptions{})
		keys := benchKeys(8)
		for _, k := range keys {
			m.Allow(ctx, k)
		}
		b.ReportAllocs()
		i := 0
		for b.Loop() {
			m.Allow(ctx, keys[i&7])
			i++
		}
	})
	b.Run("existing-key-refused", func(b *testing.B) {
		m := NewMemory(Rate{PerSecond: 1, Burst: 1}, MemoryOptions{})
		m.Allow(ctx, "login:ip:192.0.2.1")
		b.ReportAllocs()
		for b.Loop() {
			m.Allow(ctx, "login:ip:192.0.2.1")
		}
	})
	b.Run("parallel-10k-keys", func(b *testing.B) {
		m := NewMemory(Rate{PerSecond: 1e6, Burst: 1e6}, MemoryOptions{})
		keys := benchKeys(10_000)
		for _, k := range keys {
			m.Allow(ctx, k)
		}
		var seq atomic.Uint64
		b.ReportAllocs()
		b.ResetTimer()
		b.RunParallel(func(pb *testing.PB) {
			i := seq.Add(7919)
			for pb.Next() {
				i++
				m.Allow(ctx, keys[i%uint64(len(keys))])
			}
		})
	})
	b.Run("spray-new-keys", func(b *testing.B) {
		// A full table of 10k and a new key every time: the eviction path.
		m := NewMemory(Rate{PerSecond: 1, Burst: 5}, MemoryOptions{MaxKeys: 10_000})
		keys := benchKeys(1 << 20)
		b.ReportAllocs()
		i := 0
		for b.Loop() {
			m.Allow(ctx, keys[i&(len(keys)-1)])
			i++
		}
	})
}

func benchKeys(n int) []string {
	keys := make([]string, n)
	for i := range keys {
		keys[i] = fmt.Sprintf("login:ip:10.%d.%d.%d", i>>16&255, i>>8&255, i&255)
	}
	return keys
}
