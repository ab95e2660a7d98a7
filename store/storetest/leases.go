package storetest

import (
	"sync"
	"testing"
	"time"

	"github.com/mplogin/mplogin/store"
)

var leaseTests = []test{
	{"Exclusive", testLeaseExclusive},
	{"Expires", testLeaseExpires},
	{"Extend", testLeaseExtend},
	{"Release", testLeaseRelease},
	{"Keys", testLeaseKeys},
	{"Concurrent", testLeaseConcurrent},
}

const leaseKey = "refresh:wechat:wxA"

func acquire(t *testing.T, s store.Store, key, holder string, now, until time.Time) bool {
	t.Helper()
	ok, err := s.AcquireLease(t.Context(), key, holder, now, until)
	if err != nil {
		t.Fatalf("AcquireLease(%s, %s): %v", key, holder, err)
	}
	return ok
}

func release(t *testing.T, s store.Store, key, holder string) {
	t.Helper()
	if err := s.ReleaseLease(t.Context(), key, holder); err != nil {
		t.Fatalf("ReleaseLease(%s, %s): %v", key, holder, err)
	}
}

func testLeaseExclusive(t *testing.T, s store.Store) {
	if !acquire(t, s, leaseKey, "a", base, at(time.Minute)) {
		t.Fatal("the first AcquireLease on a free key failed")
	}
	if acquire(t, s, leaseKey, "b", at(59*time.Second), at(2*time.Minute)) {
		t.Fatal("b took a lease that a holds until base+1m")
	}
	// a still holds it: taking it again succeeds.
	if !acquire(t, s, leaseKey, "a", at(30*time.Second), at(time.Minute)) {
		t.Fatal("a could not take again the lease it holds")
	}
}

func testLeaseExpires(t *testing.T, s store.Store) {
	acquire(t, s, leaseKey, "a", base, at(time.Minute))
	// A lease ends at its end time: at that instant it is free.
	if !acquire(t, s, leaseKey, "b", at(time.Minute), at(2*time.Minute)) {
		t.Fatal("b could not take a lease that ended")
	}
	if acquire(t, s, leaseKey, "a", at(90*time.Second), at(3*time.Minute)) {
		t.Fatal("a took back a lease that b now holds")
	}
}

func testLeaseExtend(t *testing.T, s store.Store) {
	acquire(t, s, leaseKey, "a", base, at(time.Minute))
	acquire(t, s, leaseKey, "a", at(50*time.Second), at(5*time.Minute))
	if acquire(t, s, leaseKey, "b", at(4*time.Minute), at(6*time.Minute)) {
		t.Fatal("b took a lease that a extended to base+5m")
	}
}

func testLeaseRelease(t *testing.T, s store.Store) {
	acquire(t, s, leaseKey, "a", base, at(time.Minute))
	// Another holder's release changes nothing.
	release(t, s, leaseKey, "b")
	if acquire(t, s, leaseKey, "b", at(time.Second), at(time.Minute)) {
		t.Fatal("b's release freed a's lease")
	}
	release(t, s, leaseKey, "a")
	if !acquire(t, s, leaseKey, "b", at(time.Second), at(time.Minute)) {
		t.Fatal("the lease was not free after its holder released it")
	}
	// Releasing what nobody holds is not an error.
	release(t, s, "refresh:baidu:none", "a")
}

func testLeaseKeys(t *testing.T, s store.Store) {
	acquire(t, s, leaseKey, "a", base, at(time.Minute))
	if !acquire(t, s, "refresh:baidu:bdA", "b", base, at(time.Minute)) {
		t.Fatal("a lease on one key blocked another key")
	}
	// Leases are not access tokens.
	_, err := s.GetAccessToken(t.Context(), leaseKey)
	wantErr(t, "GetAccessToken of a lease key", err, store.ErrNotFound)
}

func testLeaseConcurrent(t *testing.T, s store.Store) {
	const callers = 8
	for round := range rounds {
		key := leaseKey + string(rune('a'+round))
		var (
			wg    sync.WaitGroup
			mu    sync.Mutex
			wins  int
			fails []error
		)
		for i := range callers {
			wg.Go(func() {
				ok, err := s.AcquireLease(t.Context(), key, string(rune('A'+i)), base, at(time.Minute))
				mu.Lock()
				defer mu.Unlock()
				if err != nil {
					fails = append(fails, err)
				}
				if ok {
					wins++
				}
			})
		}
		wg.Wait()
		if len(fails) > 0 {
			t.Fatalf("round %d: AcquireLease failed: %v", round, fails[0])
		}
		if wins != 1 {
			t.Fatalf("round %d: %d of %d concurrent callers got the lease, want 1", round, wins, callers)
		}
	}
}
