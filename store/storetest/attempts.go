package storetest

import (
	"slices"
	"sync"
	"testing"

	"github.com/mplogin/mplogin/store"
)

// attemptCap is the cap the suite reserves under (the service's is 5).
const attemptCap = 5

var attemptTests = []test{
	{"UpToCap", testAttemptsUpToCap},
	{"UnknownIdentity", testAttemptsUnknown},
	{"PerIdentity", testAttemptsPerIdentity},
	{"NewKeyResets", testAttemptsNewKey},
	{"SameKeyKeeps", testAttemptsSameKey},
	{"WriteLoginResets", testAttemptsWriteLogin},
	{"Concurrent", testAttemptsConcurrent},
	{"Release", testAttemptsRelease},
}

// A released reservation can be taken again; the count never goes below 0.
func testAttemptsRelease(t *testing.T, s store.Store) {
	err := s.ReleaseDecryptAttempt(t.Context(), "wechat", "wxA", "nobody")
	wantErr(t, "ReleaseDecryptAttempt(unknown)", err, store.ErrNotFound)
	mustUpsert(t, s, upsert("wxA", "o1", "", sealed("k1"), "u1", base))
	release := func() {
		t.Helper()
		if err := s.ReleaseDecryptAttempt(t.Context(), "wechat", "wxA", "o1"); err != nil {
			t.Fatalf("ReleaseDecryptAttempt: %v", err)
		}
	}
	release() // at 0: stays 0
	reserveAll(t, s, "wxA", "o1", 1)
	release()
	if n, ok := reserve(t, s, "wxA", "o1"); !ok || n != attemptCap {
		t.Fatalf("reservation after a release = %d, %v; want %d, true", n, ok, attemptCap)
	}
	if _, ok := reserve(t, s, "wxA", "o1"); ok {
		t.Fatal("reservation past the cap after a release")
	}
}

func reserve(t *testing.T, s store.Store, appID, openID string) (int, bool) {
	t.Helper()
	n, ok, err := s.ReserveDecryptAttempt(t.Context(), "wechat", appID, openID, attemptCap)
	if err != nil {
		t.Fatalf("ReserveDecryptAttempt(%s/%s): %v", appID, openID, err)
	}
	return n, ok
}

// reserveAll reserves until refused and checks the counts on the way.
func reserveAll(t *testing.T, s store.Store, appID, openID string, from int) {
	t.Helper()
	for want := from; want <= attemptCap; want++ {
		if n, ok := reserve(t, s, appID, openID); !ok || n != want {
			t.Fatalf("reservation #%d = %d, %v; want %d, true", want, n, ok, want)
		}
	}
	if n, ok := reserve(t, s, appID, openID); ok || n != attemptCap {
		t.Fatalf("reservation past the cap = %d, %v; want %d, false", n, ok, attemptCap)
	}
}

func testAttemptsUpToCap(t *testing.T, s store.Store) {
	mustUpsert(t, s, upsert("wxA", "o1", "", sealed("k1"), "u1", base))
	reserveAll(t, s, "wxA", "o1", 1)
	// Refused reservations do not count.
	if n, ok := reserve(t, s, "wxA", "o1"); ok || n != attemptCap {
		t.Fatalf("second reservation past the cap = %d, %v", n, ok)
	}
	// Nothing else about the identity changed.
	if got := mustIdentity(t, s, "wechat", "wxA", "o1"); string(got.SessionKey) != string(sealed("k1")) {
		t.Fatalf("session key %q after reservations", got.SessionKey)
	}
}

func testAttemptsUnknown(t *testing.T, s store.Store) {
	_, ok, err := s.ReserveDecryptAttempt(t.Context(), "wechat", "wxA", "nobody", attemptCap)
	wantErr(t, "ReserveDecryptAttempt(unknown)", err, store.ErrNotFound)
	if ok {
		t.Fatal("ReserveDecryptAttempt(unknown) reserved")
	}
}

func testAttemptsPerIdentity(t *testing.T, s store.Store) {
	mustUpsert(t, s, upsert("wxA", "o1", "", sealed("k1"), "u1", base))
	mustUpsert(t, s, upsert("wxB", "o1", "", sealed("k2"), "u2", base))
	reserveAll(t, s, "wxA", "o1", 1)
	reserveAll(t, s, "wxB", "o1", 1)
}

// A login that brings a different session key starts a new count.
func testAttemptsNewKey(t *testing.T, s store.Store) {
	mustUpsert(t, s, upsert("wxA", "o1", "", sealed("k1"), "u1", base))
	reserveAll(t, s, "wxA", "o1", 1)
	mustUpsert(t, s, upsert("wxA", "o1", "", sealed("k2"), "", at(hour)))
	reserveAll(t, s, "wxA", "o1", 1)
}

// The same key again, or no key, keeps the count.
func testAttemptsSameKey(t *testing.T, s store.Store) {
	mustUpsert(t, s, upsert("wxA", "o1", "", sealed("k1"), "u1", base))
	reserve(t, s, "wxA", "o1")
	reserve(t, s, "wxA", "o1")
	mustUpsert(t, s, upsert("wxA", "o1", "", sealed("k1"), "", at(hour)))
	mustUpsert(t, s, upsert("wxA", "o1", "un1", nil, "", at(2*hour)))
	reserveAll(t, s, "wxA", "o1", 3)
}

func testAttemptsWriteLogin(t *testing.T, s store.Store) {
	if _, err := s.WriteLogin(t.Context(), loginWrite("wxA", "o1", "", "u1", "s1")); err != nil {
		t.Fatalf("WriteLogin: %v", err)
	}
	reserveAll(t, s, "wxA", "o1", 1)
	if _, err := s.WriteLogin(t.Context(), loginWrite("wxA", "o1", "", "u1", "s2")); err != nil {
		t.Fatalf("WriteLogin again: %v", err)
	}
	reserveAll(t, s, "wxA", "o1", 1)
}

// Of many concurrent reservations exactly the cap's worth succeed, each
// with a count of its own.
func testAttemptsConcurrent(t *testing.T, s store.Store) {
	mustUpsert(t, s, upsert("wxA", "o1", "", sealed("k1"), "u1", base))
	const n = 40
	var (
		wg     sync.WaitGroup
		mu     sync.Mutex
		counts []int
		errs   []error
	)
	for range n {
		wg.Go(func() {
			c, ok, err := s.ReserveDecryptAttempt(t.Context(), "wechat", "wxA", "o1", attemptCap)
			mu.Lock()
			defer mu.Unlock()
			if err != nil {
				errs = append(errs, err)
			} else if ok {
				counts = append(counts, c)
			}
		})
	}
	wg.Wait()
	if len(errs) > 0 {
		t.Fatalf("ReserveDecryptAttempt: %v", errs[0])
	}
	slices.Sort(counts)
	if want := []int{1, 2, 3, 4, 5}; !slices.Equal(counts, want) {
		t.Fatalf("%d concurrent reservations got counts %v; want %v", n, counts, want)
	}
	if c, ok := reserve(t, s, "wxA", "o1"); ok || c != attemptCap {
		t.Fatalf("reservation after the burst = %d, %v", c, ok)
	}
}
