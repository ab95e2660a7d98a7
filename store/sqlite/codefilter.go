package sqlite

import (
	"hash/maphash"
	"sync"
	"sync/atomic"
	"time"
)

// codeFilter remembers which code hashes this process has stored, so that
// GetCode can answer "not found" for a code never seen without a query.
// Every login asks about its code before exchanging it, and almost every
// code is new: on SQLite that read costs as much as a tenth of the
// service's CPU per login under load, since each read transaction finds
// the database changed and reads its pages afresh.
//
// It is a pair of Bloom filters: an answer of "absent" is exact, "maybe"
// sends GetCode to the database. Codes go into the current filter; once
// every code in the previous filter has expired, the previous one is
// dropped and the current one takes its place, so memory is bounded (two
// filters) and no live code is ever forgotten. Like the session cache, it
// cannot see another process's writes to the same file.
type codeFilter struct {
	seed      maphash.Seed
	bits      int           // per filter, a power of two
	period    time.Duration // the least time a filter stays current
	margin    time.Duration // filterMargin
	mu        sync.RWMutex  // adds and lookups share it; rotation takes it alone
	cur       *bloom
	prev      *bloom
	rotations atomic.Int64 // for tests
}

// bloom is one filter. Bits are set with atomic ORs under the read lock.
type bloom struct {
	words  []atomic.Uint64
	maxExp atomic.Int64 // latest expiry added, Unix microseconds
	since  time.Time    // the first lookup's time after it became current
}

// filterHashes is how many bits a code sets. With 2^23 bits per filter,
// a million codes (five minutes at over 3,000 logins a second) give about
// 2 % false "maybe"s; fewer codes, far fewer.
const (
	filterHashes = 4
	filterBits   = 1 << 23 // 1 MiB
	filterPeriod = 5 * time.Minute
	// filterMargin: a filter goes only when its last code expired this
	// long before, so that a caller whose clock lags a little behind
	// another's still finds a code that is live by its own clock.
	filterMargin = time.Minute
)

func newCodeFilter(bits int, period, margin time.Duration) *codeFilter {
	return &codeFilter{seed: maphash.MakeSeed(), bits: bits, period: period, margin: margin}
}

// positions are the bits of hash, by double hashing of a seeded hash (the
// store does not rely on the caller's hashes being uniform).
func (f *codeFilter) positions(hash []byte) (h1, h2 uint64) {
	h := maphash.Bytes(f.seed, hash)
	return h, (h >> 32) | 1
}

// add records hash, stored until exp. Call it before the write commits, so
// that no reader can see the row and miss it in the filter.
func (f *codeFilter) add(hash []byte, exp time.Time) {
	h1, h2 := f.positions(hash)
	e := exp.UnixMicro()
	f.mu.RLock()
	if f.cur == nil {
		f.mu.RUnlock()
		f.mu.Lock()
		if f.cur == nil { // the first code
			f.cur = f.newBloom()
		}
		f.mu.Unlock()
		f.mu.RLock()
	}
	defer f.mu.RUnlock()
	b := f.cur
	mask := uint64(f.bits - 1)
	for i := range uint64(filterHashes) {
		p := (h1 + i*h2) & mask
		b.words[p/64].Or(1 << (p % 64))
	}
	for {
		old := b.maxExp.Load()
		if e <= old || b.maxExp.CompareAndSwap(old, e) {
			return
		}
	}
}

func (f *codeFilter) newBloom() *bloom {
	b := &bloom{words: make([]atomic.Uint64, f.bits/64)}
	b.maxExp.Store(minMicros)
	return b
}

const minMicros = -1 << 63

// mayHold reports whether hash may have been stored with an expiry after
// now. false is exact.
func (f *codeFilter) mayHold(hash []byte, now time.Time) bool {
	h1, h2 := f.positions(hash)
	f.mu.RLock()
	due := f.rotationDue(now)
	held := f.holds(f.cur, h1, h2) || f.holds(f.prev, h1, h2)
	f.mu.RUnlock()
	if due {
		f.rotate(now)
	}
	return held
}

func (f *codeFilter) holds(b *bloom, h1, h2 uint64) bool {
	if b == nil {
		return false
	}
	mask := uint64(f.bits - 1)
	for i := range uint64(filterHashes) {
		p := (h1 + i*h2) & mask
		if b.words[p/64].Load()&(1<<(p%64)) == 0 {
			return false
		}
	}
	return true
}

// rotationDue reports, under the read lock, whether the current filter has
// been current for a period and every code of the previous one has expired.
func (f *codeFilter) rotationDue(now time.Time) bool {
	if f.cur == nil {
		return false
	}
	if f.cur.since.IsZero() {
		return true // rotate stamps it
	}
	return now.Sub(f.cur.since) >= f.period &&
		(f.prev == nil || f.prev.maxExp.Load() < now.Add(-f.margin).UnixMicro())
}

func (f *codeFilter) rotate(now time.Time) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if !f.rotationDue(now) {
		return // another lookup got here first
	}
	if f.cur.since.IsZero() {
		f.cur.since = now
		return
	}
	f.rotations.Add(1)
	f.prev, f.cur = f.cur, f.newBloom()
	f.cur.since = now
}
