package storetest

import (
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/mplogin/mplogin/store"
)

var signingKeyTests = []test{
	{"NotFound", testSigningKeysNotFound},
	{"RoundTrip", testSigningKeysRoundTrip},
	{"CompareAndSwap", testSigningKeysCAS},
	{"Concurrent", testSigningKeysConcurrent},
	{"Copied", testSigningKeysCopied},
	{"Refused", testSigningKeysRefused},
}

func keySet(v int64, label string) store.SigningKeySet {
	return store.SigningKeySet{Sealed: sealed(fmt.Sprintf("keys-%d-%s\x00\xff", v, label)), Version: v, UpdatedAt: at(time.Duration(v) * time.Hour)}
}

func putKeys(t *testing.T, s store.Store, set store.SigningKeySet, prev int64) bool {
	t.Helper()
	ok, err := s.PutSigningKeys(t.Context(), set, prev)
	if err != nil {
		t.Fatalf("PutSigningKeys(version %d over %d): %v", set.Version, prev, err)
	}
	return ok
}

func getKeys(t *testing.T, s store.Store) store.SigningKeySet {
	t.Helper()
	set, err := s.GetSigningKeys(t.Context())
	if err != nil {
		t.Fatalf("GetSigningKeys: %v", err)
	}
	return set
}

func testSigningKeysNotFound(t *testing.T, s store.Store) {
	_, err := s.GetSigningKeys(t.Context())
	wantErr(t, "GetSigningKeys of an empty store", err, store.ErrNotFound)
	// An update of a set that does not exist changes nothing.
	if putKeys(t, s, keySet(2, "a"), 1) {
		t.Fatal("PutSigningKeys over version 1 won with no set stored")
	}
	_, err = s.GetSigningKeys(t.Context())
	wantErr(t, "GetSigningKeys after a lost put", err, store.ErrNotFound)
}

func testSigningKeysRoundTrip(t *testing.T, s store.Store) {
	first := keySet(1, "a")
	if !putKeys(t, s, first, 0) {
		t.Fatal("the first PutSigningKeys (over 0) lost on an empty store")
	}
	wantEqual(t, "set after the first put", first, getKeys(t, s))
	second := keySet(2, "b")
	if !putKeys(t, s, second, 1) {
		t.Fatal("PutSigningKeys over the stored version lost")
	}
	wantEqual(t, "set after the second put", second, getKeys(t, s))
}

func testSigningKeysCAS(t *testing.T, s store.Store) {
	putKeys(t, s, keySet(1, "a"), 0)
	cur := keySet(2, "b")
	putKeys(t, s, cur, 1)
	for _, c := range []struct {
		name string
		prev int64
	}{{"create over an existing set", 0}, {"a stale version", 1}, {"a version not yet reached", 3}} {
		if putKeys(t, s, keySet(9, c.name), c.prev) {
			t.Fatalf("PutSigningKeys with %s won", c.name)
		}
		wantEqual(t, "set after a lost put ("+c.name+")", cur, getKeys(t, s))
	}
}

func testSigningKeysConcurrent(t *testing.T, s store.Store) {
	const callers = 8
	var prev int64
	for round := range rounds {
		var (
			wg     sync.WaitGroup
			mu     sync.Mutex
			winner = -1
			wins   int
			fails  []error
		)
		for i := range callers {
			wg.Go(func() {
				ok, err := s.PutSigningKeys(t.Context(), keySet(prev+1, fmt.Sprint(i)), prev)
				mu.Lock()
				defer mu.Unlock()
				if err != nil {
					fails = append(fails, err)
				}
				if ok {
					wins++
					winner = i
				}
			})
		}
		wg.Wait()
		if len(fails) > 0 {
			t.Fatalf("round %d: PutSigningKeys failed: %v", round, fails[0])
		}
		if wins != 1 {
			t.Fatalf("round %d: %d of %d concurrent puts over version %d won, want 1", round, wins, callers, prev)
		}
		wantEqual(t, fmt.Sprintf("round %d: set after the race", round), keySet(prev+1, fmt.Sprint(winner)), getKeys(t, s))
		prev++
	}
}

func testSigningKeysCopied(t *testing.T, s store.Store) {
	in := keySet(1, "a")
	want := keySet(1, "a")
	putKeys(t, s, in, 0)
	in.Sealed[0] ^= 0xff // the caller reuses its buffer
	got := getKeys(t, s)
	wantEqual(t, "set after the caller changed its input", want, got)
	got.Sealed[0] ^= 0xff // the caller changes what it read
	wantEqual(t, "set after the caller changed what it read", want, getKeys(t, s))
}

func testSigningKeysRefused(t *testing.T, s store.Store) {
	for _, set := range []store.SigningKeySet{{Version: 1, UpdatedAt: base}, {Sealed: sealed("x"), UpdatedAt: base}} {
		if ok, err := s.PutSigningKeys(t.Context(), set, 0); err == nil || ok {
			t.Fatalf("PutSigningKeys(%+v) = %v, %v; want an error", set, ok, err)
		}
	}
	_, err := s.GetSigningKeys(t.Context())
	wantErr(t, "GetSigningKeys after refused puts", err, store.ErrNotFound)
}
