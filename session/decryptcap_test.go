package session_test

import (
	"context"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/mplogin/mplogin/platform"
	"github.com/mplogin/mplogin/session"
	"github.com/mplogin/mplogin/store"
)

// countTries counts the session keys tried on user data until the test ends.
func countTries(t *testing.T) *atomic.Int64 {
	var n atomic.Int64
	t.Cleanup(session.OnKeyTried(func() { n.Add(1) }))
	return &n
}

// gateStore, once armed, holds each GetIdentity until arrive is done.
type gateStore struct {
	store.Store
	armed  atomic.Bool
	arrive sync.WaitGroup
}

func (g *gateStore) GetIdentity(ctx context.Context, p platform.Family, a, o string) (store.Identity, error) {
	if g.armed.Load() {
		g.arrive.Done()
		g.arrive.Wait()
	}
	return g.Store.GetIdentity(ctx, p, a, o)
}

// A burst of bad payloads tries the session key at most MaxDecryptFailures
// times: each try is reserved in the store before it is made.
func TestDecryptCapHoldsUnderConcurrency(t *testing.T) {
	const n = 100
	gate := &gateStore{}
	f := newFixture(t, withApps(decryptApps), wrapStore(func(st store.Store) store.Store { gate.Store = st; return gate }))
	tries := countTries(t)
	tok := f.login(t, "wx", "mallory", wxKey1)
	bad := encWX(t, wxKey2, wxPlain(wxAppID, f.clock.Now()))
	// Every request reads the identity before any goes on, so that all of
	// them have passed the session lookup when the first key is tried.
	gate.arrive.Add(n)
	gate.armed.Store(true)
	var wg sync.WaitGroup
	for range n {
		wg.Go(func() {
			out, err := f.svc.Decrypt(context.Background(), tok.AccessToken.Reveal(), bad)
			if err != session.ErrDecryptFailed || out != nil {
				t.Errorf("bad payload: (%q, %v)", out, err)
			}
		})
	}
	wg.Wait()
	if n := tries.Load(); n > session.MaxDecryptFailures {
		t.Fatalf("100 concurrent bad payloads tried the key %d times, want at most %d", n, session.MaxDecryptFailures)
	}
	gate.armed.Store(false)
	// The key is spent for good payloads too.
	good := encWX(t, wxKey1, wxPlain(wxAppID, f.clock.Now()))
	before := tries.Load()
	out, err := f.svc.Decrypt(context.Background(), tok.AccessToken.Reveal(), good)
	wantDecryptFailed(t, "good payload after the burst", out, err)
	if tries.Load() != before {
		t.Fatal("a key was tried past the cap")
	}
}

// A replay of a login code gives a new session of the same identity and
// the same session key: it does not get tries of its own. A new login, with
// a new key, starts a new count.
func TestDecryptCapSurvivesCodeReplay(t *testing.T) {
	f := newFixture(t, withApps(decryptApps))
	tries := countTries(t)
	ctx := context.Background()
	f.keyPlat.setKey(wxKey1)
	const code = "mallory.replayed"
	first, err := f.svc.Login(ctx, "wx", code)
	if err != nil {
		t.Fatal(err)
	}
	bad := encWX(t, wxKey2, wxPlain(wxAppID, f.clock.Now()))
	for i := range session.MaxDecryptFailures {
		out, err := f.svc.Decrypt(ctx, first.AccessToken.Reveal(), bad)
		wantDecryptFailed(t, fmt.Sprint("failure ", i+1), out, err)
	}
	if n := tries.Load(); n != session.MaxDecryptFailures {
		t.Fatalf("tries = %d, want %d", n, session.MaxDecryptFailures)
	}
	for i := range 3 {
		again, err := f.svc.Login(ctx, "wx", code)
		if err != nil {
			t.Fatalf("replay %d: %v", i+1, err)
		}
		if again.AccessToken.Reveal() == first.AccessToken.Reveal() {
			t.Fatal("a replay got the same session")
		}
		out, err := f.svc.Decrypt(ctx, again.AccessToken.Reveal(), bad)
		wantDecryptFailed(t, fmt.Sprint("replayed session ", i+1), out, err)
	}
	if n := tries.Load(); n != session.MaxDecryptFailures {
		t.Fatalf("replayed sessions tried the key: tries = %d, want %d", n, session.MaxDecryptFailures)
	}

	fresh := f.login(t, "wx", "mallory", wxKey2)
	good := encWX(t, wxKey2, wxPlain(wxAppID, f.clock.Now()))
	if _, err := f.svc.Decrypt(ctx, fresh.AccessToken.Reveal(), good); err != nil {
		t.Fatalf("new login with a new key: %v", err)
	}
}

// Good payloads do not use up the cap: each gives its reservation back.
func TestDecryptSuccessesDoNotSpendTheCap(t *testing.T) {
	f := newFixture(t, withApps(decryptApps))
	ctx := context.Background()
	tok := f.login(t, "wx", "ann", wxKey1)
	good := encWX(t, wxKey1, wxPlain(wxAppID, f.clock.Now()))
	bad := encWX(t, wxKey2, wxPlain(wxAppID, f.clock.Now()))
	for i := range 2 * session.MaxDecryptFailures {
		if _, err := f.svc.Decrypt(ctx, tok.AccessToken.Reveal(), good); err != nil {
			t.Fatalf("good payload %d: %v", i+1, err)
		}
	}
	for i := range session.MaxDecryptFailures {
		out, err := f.svc.Decrypt(ctx, tok.AccessToken.Reveal(), bad)
		wantDecryptFailed(t, fmt.Sprint("failure ", i+1), out, err)
	}
	out, err := f.svc.Decrypt(ctx, tok.AccessToken.Reveal(), good)
	wantDecryptFailed(t, "good payload after the cap", out, err)
}
