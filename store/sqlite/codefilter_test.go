package sqlite

import (
	"crypto/sha256"
	"errors"
	"fmt"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/mplogin/mplogin/store"
)

func codeHash(i int) []byte {
	h := sha256.Sum256(fmt.Appendf(nil, "code %d", i))
	return h[:]
}

// Every code added is held; codes never added are mostly not, at the
// false-positive rate the sizing promises.
func TestCodeFilterHoldsWhatWasAdded(t *testing.T) {
	t0 := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	f := newCodeFilter(1<<16, time.Minute, filterMargin)
	const n = 4096 // 16 bits a code: about 0.24 % false positives
	for i := range n {
		f.add(codeHash(i), t0.Add(5*time.Minute))
	}
	for i := range n {
		if !f.mayHold(codeHash(i), t0) {
			t.Fatalf("code %d added but not held", i)
		}
	}
	fp := 0
	for i := n; i < 11*n; i++ {
		if f.mayHold(codeHash(i), t0) {
			fp++
		}
	}
	if rate := float64(fp) / (10 * n); rate > 0.01 {
		t.Fatalf("false positive rate %.4f, want under 1%%", rate)
	}
}

// A filter is dropped only once all its codes have expired (with the
// margin), however the lookups' clock advances.
func TestCodeFilterRotation(t *testing.T) {
	t0 := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	f := newCodeFilter(1<<16, time.Minute, filterMargin)
	old := codeHash(1)
	f.add(old, t0.Add(10*time.Minute))
	for m := range 10 {
		now := t0.Add(time.Duration(m) * time.Minute)
		f.add(codeHash(100+m), now.Add(5*time.Minute))
		if !f.mayHold(old, now) {
			t.Fatalf("at +%dm: a code live until +10m is no longer held", m)
		}
	}
	// A caller whose clock runs a little ahead does not make the filter
	// forget it for one whose clock lags behind.
	ahead := t0.Add(10*time.Minute + filterMargin/2)
	for m := range 5 {
		f.mayHold(old, ahead.Add(time.Duration(m)*time.Millisecond))
	}
	if !f.mayHold(old, t0.Add(10*time.Minute-time.Second)) {
		t.Fatal("a code still live by a lagging clock is no longer held")
	}
	// Its filter goes once the code is past its expiry by the margin,
	// after a rotation.
	later := t0.Add(10*time.Minute + filterMargin + time.Second)
	f.mayHold(old, later)
	f.mayHold(old, later.Add(2*time.Minute))
	f.mayHold(old, later.Add(4*time.Minute))
	if f.mayHold(old, later.Add(4*time.Minute)) {
		t.Fatal("a code expired long ago is still held after rotations")
	}
	if f.cur == nil || f.prev == nil {
		t.Fatal("want two filters after rotations")
	}
}

// Adds and lookups race with rotations, which drop filters all along: a
// code added and then looked up at the same time is always held. The
// workers go in rounds, each round 10 ms later, so that no one's clock
// lags behind another's by more than the margin.
func TestCodeFilterConcurrent(t *testing.T) {
	t0 := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	f := newCodeFilter(1<<18, time.Millisecond, 5*time.Millisecond)
	const workers, rounds = 4, 300
	for r := range rounds {
		now := t0.Add(time.Duration(r) * 10 * time.Millisecond)
		var wg sync.WaitGroup
		for w := range workers {
			wg.Go(func() {
				for i := range 10 {
					h := codeHash((r*workers+w)*10 + i)
					f.add(h, now.Add(10*time.Millisecond))
					if !f.mayHold(h, now) {
						t.Errorf("round %d, worker %d: code not held right after its add", r, w)
					}
				}
			})
		}
		wg.Wait()
	}
	if n := f.rotations.Load(); n < rounds/4 {
		t.Fatalf("%d rotations in %d rounds: the test did not race with them", n, rounds)
	}
}

// The store answers a code it never stored without a query, still finds
// every code it stored (also after reopening the file, from the table), and
// reports a closed store as unavailable rather than as an unknown code.
func TestFilterCodesStore(t *testing.T) {
	path := filepath.Join(t.TempDir(), "f.db")
	ctx := t.Context()
	now := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	s, err := Open(ctx, path, Options{FilterCodes: true})
	if err != nil {
		t.Fatal(err)
	}
	code := store.ExchangedCode{Hash: codeHash(1), App: "main", Family: "wechat", AppID: "wxA", OpenID: "o1", ExpiresAt: now.Add(5 * time.Minute)}
	if err := s.PutCode(ctx, code); err != nil {
		t.Fatal(err)
	}
	if _, err := s.GetCode(ctx, code.Hash, now); err != nil {
		t.Fatalf("GetCode(stored): %v", err)
	}
	// Counted by the driver: a query for an unknown code would prepare
	// and step the statement; the filter answers first.
	s.r.getCode.Close() // any query now fails
	if _, err := s.GetCode(ctx, codeHash(2), now); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("GetCode(never stored) = %v, want ErrNotFound without a query", err)
	}
	s.Close()
	if _, err := s.GetCode(ctx, codeHash(2), now); !errors.Is(err, store.ErrUnavailable) {
		t.Fatalf("GetCode on a closed store = %v, want ErrUnavailable", err)
	}

	s, err = Open(ctx, path, Options{FilterCodes: true})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if got, err := s.GetCode(ctx, code.Hash, now); err != nil || got.OpenID != "o1" {
		t.Fatalf("GetCode(stored) after reopening = %+v, %v", got, err)
	}
}
