package session_test

import (
	"context"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/mplogin/mplogin"
	"github.com/mplogin/mplogin/session"
)

func mustLogin(t *testing.T, f *fixture, c string) *session.Tokens {
	t.Helper()
	tok, err := f.svc.Login(t.Context(), "shop", c)
	if err != nil {
		t.Fatalf("login with %q: %v", c, err)
	}
	return tok
}

func live(f *fixture, tok *session.Tokens) bool {
	_, err := f.svc.Check(context.Background(), tok.AccessToken.Reveal())
	return err == nil
}

// A repeat of a used code gets a session for MaxCodeReplays repeats within
// the window, then none; the platform is asked once.
func TestCodeRepeatLimits(t *testing.T) {
	allWritePaths(t, func(t *testing.T, f *fixture) {
		first := mustLogin(t, f, "alice.1")
		for i := range session.MaxCodeReplays {
			f.clock.Advance(time.Second)
			again := mustLogin(t, f, "alice.1")
			if again.User.ID != first.User.ID || !live(f, again) {
				t.Fatalf("repeat %d: %+v", i+1, again.User)
			}
		}
		_, err := f.svc.Login(t.Context(), "shop", "alice.1")
		if code(t, err) != mplogin.CodeInvalidCode {
			t.Fatalf("repeat past MaxCodeReplays: %v, want invalid_code", err)
		}
		if n := f.plat.calls.Load(); n != 1 {
			t.Fatalf("%d platform calls, want 1", n)
		}
	})
}

// With no window a used code is never honoured again.
func TestCodeRepeatWindowZero(t *testing.T) {
	p := session.DefaultPolicy
	p.CodeReplayWindow = 0
	allWritePaths(t, func(t *testing.T, f *fixture) {
		mustLogin(t, f, "alice.1")
		_, err := f.svc.Login(t.Context(), "shop", "alice.1")
		if code(t, err) != mplogin.CodeInvalidCode || f.plat.calls.Load() != 1 {
			t.Fatalf("immediate repeat without a window: %v, %d platform calls; want invalid_code, 1", err, f.plat.calls.Load())
		}
	}, withPolicy(p))
}

// A code whose session was logged out gets no new session, even within
// the window: the victim's logout ends what a leaked code could give.
func TestCodeRepeatAfterLogout(t *testing.T) {
	allWritePaths(t, func(t *testing.T, f *fixture) {
		first := mustLogin(t, f, "alice.1")
		if err := f.svc.Logout(t.Context(), first.AccessToken.Reveal()); err != nil {
			t.Fatal(err)
		}
		_, err := f.svc.Login(t.Context(), "shop", "alice.1")
		if code(t, err) != mplogin.CodeInvalidCode {
			t.Fatalf("repeat after logout: %v, want invalid_code", err)
		}
	})
}

// The sessions of one code end together, whichever is logged out, and
// another login of the same user lives on.
func TestCodeSessionsEndTogether(t *testing.T) {
	for _, which := range []string{"first", "repeat"} {
		t.Run(which, func(t *testing.T) {
			allWritePaths(t, func(t *testing.T, f *fixture) {
				first := mustLogin(t, f, "alice.1")
				again := mustLogin(t, f, "alice.1")
				other := mustLogin(t, f, "alice.2") // same user, another code
				// Refreshed sessions are the same sessions.
				next, err := f.svc.Refresh(t.Context(), again.RefreshToken.Reveal())
				if err != nil {
					t.Fatal(err)
				}
				out := first
				if which == "repeat" {
					out = next
				}
				if err := f.svc.Logout(t.Context(), out.AccessToken.Reveal()); err != nil {
					t.Fatal(err)
				}
				if live(f, first) || live(f, next) {
					t.Fatalf("a session of the code lives on after logging out the %s one", which)
				}
				if !live(f, other) {
					t.Fatal("another login's session ended")
				}
			})
		})
	}
}

// A spent refresh token replayed after the grace revokes its session and
// the other sessions of its code, and the warning names them.
func TestRefreshReuseEndsCodeSessions(t *testing.T) {
	allWritePaths(t, func(t *testing.T, f *fixture) {
		log := f.logs
		first := mustLogin(t, f, "alice.1")
		again := mustLogin(t, f, "alice.1")
		if _, err := f.svc.Refresh(t.Context(), first.RefreshToken.Reveal()); err != nil {
			t.Fatal(err)
		}
		f.clock.Advance(session.DefaultPolicy.RefreshReuseGrace + mplogin.MaxClockSkew)
		if _, err := f.svc.Refresh(t.Context(), first.RefreshToken.Reveal()); code(t, err) != mplogin.CodeInvalidGrant {
			t.Fatalf("replayed refresh token: %v", err)
		}
		if live(f, again) {
			t.Fatal("the other session of the code lives on after a refresh token replay")
		}
		var line string
		for l := range strings.Lines(log.String()) {
			if strings.Contains(l, "refresh token reused") {
				line = l
			}
		}
		for _, want := range []string{`"app":"shop"`, `"user":"` + first.User.ID + `"`, `"session":"`} {
			if !strings.Contains(line, want) {
				t.Fatalf("reuse warning %q lacks %s", line, want)
			}
		}
		for _, secret := range []string{first.RefreshToken.Reveal(), first.AccessToken.Reveal()} {
			if strings.Contains(log.String(), secret) {
				t.Fatal("a token in the log")
			}
		}
	})
}

// Past the cap, a login ends the identity's oldest session.
func TestSessionCap(t *testing.T) {
	p := session.DefaultPolicy
	p.MaxSessionsPerIdentity = 3
	allWritePaths(t, func(t *testing.T, f *fixture) {
		var toks []*session.Tokens
		for i := range 5 {
			f.clock.Advance(time.Second)
			toks = append(toks, mustLogin(t, f, fmt.Sprint("alice.", i)))
		}
		bob := mustLogin(t, f, "bobby.1")
		for i, tok := range toks {
			if want := i >= 2; live(f, tok) != want {
				t.Fatalf("session %d live = %v, want %v", i, !want, want)
			}
		}
		if !live(f, bob) {
			t.Fatal("another identity's session ended")
		}
		// Repeats of a code count too.
		mustLogin(t, f, "alice.4")
		if live(f, toks[2]) {
			t.Fatal("the oldest session lives on past the cap after a repeat")
		}
	}, withPolicy(p))
}

// The default cap is 20: 30 logins leave the newest 20 live.
func TestSessionCapDefault(t *testing.T) {
	f := newFixture(t)
	var toks []*session.Tokens
	for i := range 30 {
		f.clock.Advance(time.Millisecond)
		toks = append(toks, mustLogin(t, f, fmt.Sprint("alice.", i)))
	}
	n := 0
	for _, tok := range toks {
		if live(f, tok) {
			n++
		}
	}
	if n != 20 || !live(f, toks[29]) || live(f, toks[9]) {
		t.Fatalf("%d live sessions after 30 logins, want the newest 20", n)
	}
}

// Within the grace, the refresh token a refresh just spent gets that
// refresh's tokens again; the session lives on and rotates on.
func TestRefreshGrace(t *testing.T) {
	allWritePaths(t, func(t *testing.T, f *fixture) {
		tok := mustLogin(t, f, "alice.1")
		next, err := f.svc.Refresh(t.Context(), tok.RefreshToken.Reveal())
		if err != nil {
			t.Fatal(err)
		}
		f.clock.Advance(session.DefaultPolicy.RefreshReuseGrace - time.Second)
		again, err := f.svc.Refresh(t.Context(), tok.RefreshToken.Reveal())
		if err != nil {
			t.Fatalf("the just-spent token within the grace: %v", err)
		}
		if !again.AccessToken.Equal(next.AccessToken) || !again.RefreshToken.Equal(next.RefreshToken) || again.User != next.User {
			t.Fatal("the grace gave other tokens than the refresh it repeats")
		}
		if again.ExpiresIn > next.ExpiresIn || again.ExpiresIn < next.ExpiresIn-session.DefaultPolicy.RefreshReuseGrace {
			t.Fatalf("expires_in %v in the grace, the refresh said %v", again.ExpiresIn, next.ExpiresIn)
		}
		if !live(f, next) {
			t.Fatal("session ended")
		}
		// The successor rotates on; then the first token is two back.
		third, err := f.svc.Refresh(t.Context(), next.RefreshToken.Reveal())
		if err != nil {
			t.Fatal(err)
		}
		if _, err := f.svc.Refresh(t.Context(), tok.RefreshToken.Reveal()); code(t, err) != mplogin.CodeInvalidGrant {
			t.Fatalf("a token two refreshes back: %v", err)
		}
		if live(f, third) {
			t.Fatal("a token two refreshes back did not revoke the session")
		}
	})
}

// Without a grace a spent refresh token revokes at once.
func TestRefreshGraceZero(t *testing.T) {
	p := session.DefaultPolicy
	p.RefreshReuseGrace = 0
	allWritePaths(t, func(t *testing.T, f *fixture) {
		tok := mustLogin(t, f, "alice.1")
		next, err := f.svc.Refresh(t.Context(), tok.RefreshToken.Reveal())
		if err != nil {
			t.Fatal(err)
		}
		if _, err := f.svc.Refresh(t.Context(), tok.RefreshToken.Reveal()); code(t, err) != mplogin.CodeInvalidGrant {
			t.Fatalf("spent token without a grace: %v", err)
		}
		if live(f, next) {
			t.Fatal("session lives on")
		}
	}, withPolicy(p))
}

// Concurrent refreshes with one token (four requests of a page that found
// the access token expired) all get the same new tokens.
func TestRefreshGraceConcurrent(t *testing.T) {
	f := newFixture(t)
	tok := mustLogin(t, f, "alice.1")
	const n = 20
	res := make([]*session.Tokens, n)
	errs := make([]error, n)
	start := make(chan struct{})
	var wg sync.WaitGroup
	for i := range n {
		wg.Go(func() {
			<-start
			res[i], errs[i] = f.svc.Refresh(context.Background(), tok.RefreshToken.Reveal())
		})
	}
	close(start)
	wg.Wait()
	for i := range n {
		if errs[i] != nil {
			t.Fatalf("refresh %d: %v", i, errs[i])
		}
		if !res[i].AccessToken.Equal(res[0].AccessToken) || !res[i].RefreshToken.Equal(res[0].RefreshToken) {
			t.Fatalf("refresh %d got other tokens", i)
		}
	}
	if !live(f, res[0]) {
		t.Fatal("session ended")
	}
}
