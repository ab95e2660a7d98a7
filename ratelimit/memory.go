package ratelimit

import (
	"context"
	"hash/maphash"
	"math"
	"sync"
	"time"

	"golang.org/x/time/rate"
)

// MemoryOptions configures NewMemory. The zero value is usable.
type MemoryOptions struct {
	// MaxKeys bounds how many keys the table holds at once (see the package
	// doc for what happens at the bound). Zero or less means 100_000, about
	// 15 MB at most.
	MaxKeys int
	// Now is the clock; nil means time.Now. Tests inject a fake one.
	Now func() time.Time
}

const (
	defaultMaxKeys = 100_000
	// Sharding: enough shards that two cores rarely meet on one lock, but
	// none smaller than minShardKeys, since a full shard refuses or evicts
	// on its own and tiny shards would fill long before the table does.
	maxShards    = 64
	minShardKeys = 128
)

// Memory is a Limiter held in this process's memory, in a table bounded by
// MaxKeys. It is safe for concurrent use and never returns an error.
type Memory struct {
	limit     rate.Limit
	perSecond float64
	burst     int
	interval  int64 // nanoseconds per token
	now       func() time.Time
	seed      maphash.Seed
	mask      uint64
	shards    []shard
}

// shard is one lock's worth of the table. Its buckets sit both in a map,
// to find them, and in a min-heap on the time each will be full again, to
// find the one to evict.
type shard struct {
	mu   sync.Mutex
	m    map[uint64]*rate.Limiter // by the key's hash
	heap []slot
	max  int
	// Keep the next shard's lock off this cache line.
	_ [64]byte
}

// slot is a heap entry. at is a lower bound on when the bucket will be full
// again (Unix nanoseconds): an allowed request moves that moment later, and
// the heap is not fixed on that hot path but only when a slot that reached
// the top turns out to be stale (nearestFull). So stored bounds only ever
// lag, and a slot whose bound is exact and at the top is the true minimum.
type slot struct {
	at  int64
	key uint64
	lim *rate.Limiter
}

// NewMemory returns an in-process Limiter with rate r for every key. It
// panics if r is invalid (see Rate.Validate).
func NewMemory(r Rate, opts MemoryOptions) *Memory {
	r.mustValidate()
	maxKeys := opts.MaxKeys
	if maxKeys <= 0 {
		maxKeys = defaultMaxKeys
	}
	now := opts.Now
	if now == nil {
		now = time.Now
	}
	n := 1
	for n < maxShards && 2*n*minShardKeys <= maxKeys {
		n *= 2
	}
	m := &Memory{
		limit:     rate.Limit(r.PerSecond),
		perSecond: r.PerSecond,
		burst:     r.Burst,
		interval:  int64(math.Round(float64(time.Second) / r.PerSecond)),
		now:       now,
		seed:      maphash.MakeSeed(),
		mask:      uint64(n - 1),
		shards:    make([]shard, n),
	}
	// Split MaxKeys exactly, so the shards together hold at most MaxKeys.
	for i := range m.shards {
		s := &m.shards[i]
		s.max = maxKeys / n
		if i < maxKeys%n {
			s.max++
		}
		s.m = make(map[uint64]*rate.Limiter)
	}
	return m
}

// Allow implements Limiter. It never returns an error; ctx is unused.
func (m *Memory) Allow(_ context.Context, key string) (Decision, error) {
	now := m.now()
	h := maphash.String(m.seed, key)
	s := &m.shards[h&m.mask]
	s.mu.Lock()
	defer s.mu.Unlock()
	if lim, ok := s.m[h]; ok {
		if lim.AllowN(now, 1) {
			return Decision{Allowed: true}, nil
		}
		return Decision{RetryAfter: m.retryAfter(lim, now, lim.TokensAt(now))}, nil
	}
	return m.admit(s, h, now), nil
}

// Len returns how many keys the table holds, for metrics and tests.
func (m *Memory) Len() int {
	n := 0
	for i := range m.shards {
		s := &m.shards[i]
		s.mu.Lock()
		n += len(s.m)
		s.mu.Unlock()
	}
	return n
}

// admit gives key hash h, new to shard s, a bucket and its first token,
// making room if the shard is full. s.mu is held.
func (m *Memory) admit(s *shard, h uint64, now time.Time) Decision {
	var lim *rate.Limiter
	i := len(s.heap)
	if i < s.max {
		s.heap = append(s.heap, slot{})
	} else {
		top, tokens, full := m.nearestFull(s, now)
		if !full && m.refuses(tokens) {
			// Every bucket here is limiting its key; evicting one would
			// reset it. Refuse the newcomer until the first has a token.
			return Decision{RetryAfter: m.retryAfter(top.lim, now, tokens)}
		}
		delete(s.m, top.key)
		if full {
			// Indistinguishable from a new bucket: reuse it.
			lim = top.lim
		}
		i = 0 // the newcomer replaces the top
	}
	if lim == nil {
		lim = rate.NewLimiter(m.limit, m.burst)
	}
	lim.AllowN(now, 1) // a full bucket, and Burst >= 1
	s.m[h] = lim
	s.heap[i] = slot{at: now.UnixNano() + m.interval, key: h, lim: lim}
	s.up(i)
	s.down(i)
	return Decision{Allowed: true}
}

// nearestFull returns the slot at the top of s's heap once its bound is
// exact, that is the bucket that will be full soonest, with its tokens now
// and whether it is full already. Stale slots met on the way get their exact
// bound and sink; each does so at most once per call, and only after
// allowed requests made it stale, so the cost is amortised over those. s.mu
// is held and the heap is not empty.
func (m *Memory) nearestFull(s *shard, now time.Time) (top *slot, tokens float64, full bool) {
	nowNs := now.UnixNano()
	burst := float64(m.burst)
	for {
		top = &s.heap[0]
		tokens = top.lim.TokensAt(now)
		if tokens >= burst {
			return top, tokens, true
		}
		at := nowNs + int64((burst-tokens)/m.perSecond*float64(time.Second))
		if top.at >= at {
			return top, tokens, false
		}
		top.at = at
		s.down(0)
	}
}

// refuses reports whether a bucket holding tokens refuses a request, as
// rate.Limiter decides it: when the wait for the missing fraction of a token
// is at least 1ns.
func (m *Memory) refuses(tokens float64) bool {
	return (1-tokens)/m.perSecond*float64(time.Second) >= 1
}

// retryAfter returns how long until lim, holding tokens at now, will allow
// one request, in whole milliseconds (see Decision.RetryAfter).
func (m *Memory) retryAfter(lim *rate.Limiter, now time.Time, tokens float64) time.Duration {
	ns := (1 - tokens) / m.perSecond * float64(time.Second)
	// Less 1ns, so that float noise above an exact millisecond does not
	// round up to the next one; the check below catches a real shortfall.
	d := ceilMillis(time.Duration(math.Ceil(ns - 1)))
	for range 3 {
		if !m.refuses(lim.TokensAt(now.Add(d))) {
			break
		}
		d += time.Millisecond
	}
	return d
}

func (s *shard) up(i int) {
	h := s.heap
	for i > 0 {
		p := (i - 1) / 2
		if h[p].at <= h[i].at {
			return
		}
		h[p], h[i] = h[i], h[p]
		i = p
	}
}

func (s *shard) down(i int) {
	h := s.heap
	n := len(h)
	for {
		l := 2*i + 1
		if l >= n {
			return
		}
		j := l
		if r := l + 1; r < n && h[r].at < h[l].at {
			j = r
		}
		if h[i].at <= h[j].at {
			return
		}
		h[i], h[j] = h[j], h[i]
		i = j
	}
}
