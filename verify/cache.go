package verify

import (
	"context"
	"crypto/sha256"
	"sync"
	"time"
)

// tokenKey is what caches and in-flight calls are keyed by: the SHA-256 of
// the token, so that no map in the process holds a usable token.
type tokenKey [sha256.Size]byte

func keyOf(raw string) tokenKey {
	return sha256.Sum256([]byte(raw))
}

// cache is a size-capped map of verdicts by token hash. Eviction is first in,
// first out through a ring of keys: a lookup then takes only a read lock, and
// a flood of new tokens can push out old entries but never grow the map.
// Expired entries are not removed on lookup, so every key in the map has
// exactly one slot in the ring.
type cache[V any] struct {
	mu      sync.RWMutex
	entries map[tokenKey]cacheEntry[V]
	ring    []tokenKey
	used    int // slots of ring in use, until it is full
	next    int // the slot the next new key takes
}

type cacheEntry[V any] struct {
	val   V
	until time.Time
}

func newCache[V any](size int) *cache[V] {
	return &cache[V]{entries: make(map[tokenKey]cacheEntry[V], size), ring: make([]tokenKey, size)}
}

// get returns the value stored for k if it is still valid at now.
func (c *cache[V]) get(k tokenKey, now time.Time) (V, bool) {
	c.mu.RLock()
	e, ok := c.entries[k]
	c.mu.RUnlock()
	if !ok || !now.Before(e.until) {
		var zero V
		return zero, false
	}
	return e.val, true
}

// put stores v for k until the given time, evicting the oldest key when the
// cache is full.
func (c *cache[V]) put(k tokenKey, v V, until time.Time) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if _, ok := c.entries[k]; ok {
		c.entries[k] = cacheEntry[V]{v, until}
		return
	}
	if c.used == len(c.ring) {
		delete(c.entries, c.ring[c.next])
	} else {
		c.used++
	}
	c.ring[c.next] = k
	c.next = (c.next + 1) % len(c.ring)
	c.entries[k] = cacheEntry[V]{v, until}
}

func (c *cache[V]) len() int {
	c.mu.RLock()
	defer c.mu.RUnlock()
	return len(c.entries)
}

// flight lets concurrent callers with the same token share one call. The
// call runs under a context detached from the first caller's, so that a
// caller who gives up does not fail the others; each waits only as long as
// its own context allows.
//
// A check that missed the cache may reach do just after a call for the same
// token has stored its answer and left; cached, asked under the lock, lets it
// take that answer instead of starting a second call.
type flight[V any] struct {
	mu    sync.Mutex
	calls map[tokenKey]*flightCall[V]
}

type flightCall[V any] struct {
	done chan struct{}
	val  V
	err  error
}

func (f *flight[V]) do(ctx context.Context, k tokenKey, timeout time.Duration, cached func() (V, bool), fn func(context.Context) (V, error)) (V, error) {
	f.mu.Lock()
	c, ok := f.calls[k]
	if !ok {
		if v, hit := cached(); hit {
			f.mu.Unlock()
			return v, nil
		}
		if f.calls == nil {
			f.calls = make(map[tokenKey]*flightCall[V])
		}
		c = &flightCall[V]{done: make(chan struct{})}
		f.calls[k] = c
		go func() {
			cctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), timeout)
			defer cancel()
			c.val, c.err = fn(cctx)
			f.mu.Lock()
			delete(f.calls, k)
			f.mu.Unlock()
			close(c.done)
		}()
	}
	f.mu.Unlock()
	select {
	case <-c.done:
		return c.val, c.err
	case <-ctx.Done():
		var zero V
		return zero, ctx.Err()
	}
}
