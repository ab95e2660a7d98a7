package sqlite

import (
	"bytes"
	"sync"

	"github.com/mplogin/mplogin/store"
)

// sessionCache keeps sessions read by access hash, so that a session check
// is a map lookup instead of a query (the check is the most frequent call).
// It is exact within this process: every write that changes a session
// drops it after the write commits, and a read that raced with such a write
// does not fill the cache (the epoch moved). Writes by another process to
// the same file are not seen; Open's lock keeps other processes out.
//
// It holds no revoked session. A token that no longer works is then always
// checked the way a token never issued is, by a read of the database: were
// revoked sessions answered from memory, the answer's timing would tell an
// attacker which tokens once worked. Nor does it remember misses, so a
// session created after a miss is found at once. (A revoked token costs a
// read per check, as an unknown one always did.)
type sessionCache struct {
	mu       sync.RWMutex
	epoch    uint64
	byAccess map[string]store.Session // access hash → session
	byID     map[string]string        // session id → access hash
	max      int
}

func newSessionCache(max int) *sessionCache {
	return &sessionCache{byAccess: make(map[string]store.Session), byID: make(map[string]string), max: max}
}

// get returns a copy of the cached session, and the epoch to fill with on
// a miss.
func (c *sessionCache) get(hash []byte) (store.Session, uint64, bool) {
	c.mu.RLock()
	defer c.mu.RUnlock()
	s, ok := c.byAccess[string(hash)]
	if ok {
		// The caller's copy must not alias ours.
		s.AccessHash, s.RefreshHash = bytes.Clone(s.AccessHash), bytes.Clone(s.RefreshHash)
	}
	return s, c.epoch, ok
}

// put caches s, read when the epoch was epoch, unless a write came since
// or s is revoked.
func (c *sessionCache) put(s store.Session, epoch uint64) {
	if !s.RevokedAt.IsZero() {
		return
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.epoch != epoch {
		return
	}
	if len(c.byAccess) >= c.max {
		for h, old := range c.byAccess { // an arbitrary one
			delete(c.byAccess, h)
			delete(c.byID, old.ID)
			break
		}
	}
	s.AccessHash, s.RefreshHash = bytes.Clone(s.AccessHash), bytes.Clone(s.RefreshHash)
	c.byAccess[string(s.AccessHash)] = s
	c.byID[s.ID] = string(s.AccessHash)
}

// drop forgets session id; call it after the write that changed it
// committed.
func (c *sessionCache) drop(id string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.epoch++
	if h, ok := c.byID[id]; ok {
		delete(c.byAccess, h)
		delete(c.byID, id)
	}
}

// dropAll forgets every session.
func (c *sessionCache) dropAll() {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.epoch++
	clear(c.byAccess)
	clear(c.byID)
}
