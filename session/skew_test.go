package session_test

import (
	"context"
	"testing"
	"time"

	"github.com/mplogin/mplogin"
	"github.com/mplogin/mplogin/internal/testutil"
	"github.com/mplogin/mplogin/session"
)

// instances are two Services over one store, as two instances of the
// service over a shared database: fast reads the true time, slow runs lag
// behind it.
type instances struct {
	fast, slow *session.Service
	plat       *fakePlatform
	keyPlat    *keyPlatform
	clock      *testutil.Clock // the true time, and fast's
}

const lag = 10 * time.Second

func newInstances(t *testing.T) *instances {
	t.Helper()
	f := newFixture(t, withApps(func(f *fixture) []session.App {
		return []session.App{
			{Name: "shop", Family: "wechat", AppID: "wx1", Client: f.plat, CodeTTL: 5 * time.Minute},
			{Name: "wx", Family: "wechat", AppID: wxAppID, Client: f.keyPlat, CodeTTL: 5 * time.Minute},
		}
	}))
	return &instances{fast: f.svc, slow: f.service(t, func() time.Time { return f.clock.Now().Add(-lag) }),
		plat: f.plat, keyPlat: f.keyPlat, clock: f.clock}
}

// A session made on one instance works on the other, whichever clock is
// behind: check, refresh, a repeated code and logout.
func TestSkewedInstancesShareSessions(t *testing.T) {
	ctx := context.Background()
	for _, dir := range []struct {
		name     string
		from, to func(*instances) *session.Service
	}{
		{"fast to slow", func(in *instances) *session.Service { return in.fast }, func(in *instances) *session.Service { return in.slow }},
		{"slow to fast", func(in *instances) *session.Service { return in.slow }, func(in *instances) *session.Service { return in.fast }},
	} {
		t.Run(dir.name, func(t *testing.T) {
			in := newInstances(t)
			from, to := dir.from(in), dir.to(in)
			tok, err := from.Login(ctx, "shop", "alice.1")
			if err != nil {
				t.Fatal(err)
			}
			if _, err := to.Check(ctx, tok.AccessToken.Reveal()); err != nil {
				t.Fatalf("check: %v", err)
			}
			again, err := to.Login(ctx, "shop", "alice.1")
			if err != nil || again.User.ID != tok.User.ID || in.plat.calls.Load() != 1 {
				t.Fatalf("repeated code: %v, %d platform calls", err, in.plat.calls.Load())
			}
			next, err := to.Refresh(ctx, tok.RefreshToken.Reveal())
			if err != nil {
				t.Fatalf("refresh: %v", err)
			}
			if _, err := from.Check(ctx, next.AccessToken.Reveal()); err != nil {
				t.Fatalf("check after refresh: %v", err)
			}
			last, err := from.Refresh(ctx, next.RefreshToken.Reveal())
			if err != nil {
				t.Fatalf("second refresh: %v", err)
			}
			if err := to.Logout(ctx, last.AccessToken.Reveal()); err != nil {
				t.Fatalf("logout: %v", err)
			}
			if _, err := from.Check(ctx, last.AccessToken.Reveal()); code(t, err) != mplogin.CodeInvalidToken {
				t.Fatalf("check after logout: %v", err)
			}
		})
	}
}

// Lifetimes written by the slow instance are honoured in full by the fast
// one, whose clock says they ended lag ago; and no further than
// MaxClockSkew past them.
func TestSkewedInstancesHonourLifetimes(t *testing.T) {
	ctx := context.Background()

	t.Run("access token", func(t *testing.T) {
		in := newInstances(t)
		tok, err := in.slow.Login(ctx, "shop", "alice.1")
		if err != nil {
			t.Fatal(err)
		}
		in.clock.Advance(tok.ExpiresIn - time.Second)
		info, err := in.fast.Check(ctx, tok.AccessToken.Reveal())
		if err != nil {
			t.Fatalf("a second before its advertised expiry: %v", err)
		}
		if info.ExpiresIn < 0 || info.ExpiresIn > time.Second {
			t.Fatalf("expires_in %v, want what is left of the advertised lifetime", info.ExpiresIn)
		}
		in.clock.Advance(mplogin.MaxClockSkew - lag + time.Second)
		if _, err := in.slow.Check(ctx, tok.AccessToken.Reveal()); err != nil {
			t.Fatalf("within the tolerance, on the instance that minted it: %v", err)
		}
		in.clock.Advance(lag)
		for name, svc := range map[string]*session.Service{"fast": in.fast, "slow": in.slow} {
			if _, err := svc.Check(ctx, tok.AccessToken.Reveal()); code(t, err) != mplogin.CodeInvalidToken {
				t.Fatalf("%s: MaxClockSkew past its expiry by the minting clock: %v", name, err)
			}
		}
	})

	t.Run("refresh token", func(t *testing.T) {
		in := newInstances(t)
		tok, err := in.slow.Login(ctx, "shop", "alice.1")
		if err != nil {
			t.Fatal(err)
		}
		in.clock.Advance(tok.RefreshExpiresIn - time.Second)
		next, err := in.fast.Refresh(ctx, tok.RefreshToken.Reveal())
		if err != nil {
			t.Fatalf("a second before its advertised expiry: %v", err)
		}
		in.clock.Advance(next.RefreshExpiresIn + mplogin.MaxClockSkew + time.Second)
		if _, err := in.fast.Refresh(ctx, next.RefreshToken.Reveal()); code(t, err) != mplogin.CodeInvalidGrant {
			t.Fatalf("MaxClockSkew past its expiry: %v", err)
		}
	})

	t.Run("exchanged code", func(t *testing.T) {
		in := newInstances(t)
		first, err := in.slow.Login(ctx, "shop", "alice.1")
		if err != nil {
			t.Fatal(err)
		}
		in.clock.Advance(session.DefaultPolicy.CodeReplayWindow - time.Second)
		again, err := in.fast.Login(ctx, "shop", "alice.1")
		if err != nil || again.User.ID != first.User.ID || in.plat.calls.Load() != 1 {
			t.Fatalf("repeat within the replay window: %v, %d platform calls, want 1", err, in.plat.calls.Load())
		}
		// Past the window, as the slow instance that stored it counts
		// with the tolerance: known to be used, without asking the platform.
		in.clock.Advance(mplogin.MaxClockSkew + time.Second + lag)
		if _, err := in.fast.Login(ctx, "shop", "alice.1"); code(t, err) != mplogin.CodeInvalidCode || in.plat.calls.Load() != 1 {
			t.Fatalf("repeat past the replay window: %v, %d platform calls, want invalid_code and 1", err, in.plat.calls.Load())
		}
	})

	t.Run("previous session key", func(t *testing.T) {
		in := newInstances(t)
		in.keyPlat.setKey(wxKey1)
		tok, err := in.fast.Login(ctx, "wx", "ann.1")
		if err != nil {
			t.Fatal(err)
		}
		old := encWX(t, wxKey1, wxPlain(wxAppID, in.clock.Now()))
		in.keyPlat.setKey(wxKey2)
		if _, err := in.slow.Login(ctx, "wx", "ann.2"); err != nil {
			t.Fatal(err)
		}
		in.clock.Advance(session.DefaultPolicy.KeyGrace - time.Second)
		if _, err := in.fast.Decrypt(ctx, tok.AccessToken.Reveal(), old); err != nil {
			t.Fatalf("data under the previous key within its grace: %v", err)
		}
	})

	t.Run("revocation is not delayed", func(t *testing.T) {
		in := newInstances(t)
		tok, err := in.fast.Login(ctx, "shop", "alice.1")
		if err != nil {
			t.Fatal(err)
		}
		if err := in.fast.Logout(ctx, tok.AccessToken.Reveal()); err != nil {
			t.Fatal(err)
		}
		if _, err := in.slow.Check(ctx, tok.AccessToken.Reveal()); code(t, err) != mplogin.CodeInvalidToken {
			t.Fatalf("revoked session on the slow instance: %v", err)
		}
		if _, err := in.slow.Refresh(ctx, tok.RefreshToken.Reveal()); code(t, err) != mplogin.CodeInvalidGrant {
			t.Fatalf("refresh of a revoked session on the slow instance: %v", err)
		}
	})
}
