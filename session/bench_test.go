package session_test

import (
	"fmt"
	"testing"
	"time"
)

// BenchmarkLogin measures a first login's work in the service (a fake
// platform, the memory store): the code's hash, the session key sealed,
// the tokens minted, and, for an app with JWT access tokens, the JWT
// signed (ES256). The difference between the two is what JWTs cost a
// login.
func BenchmarkLogin(b *testing.B) {
	for _, app := range []string{"plain", "shop"} {
		name := map[string]string{"plain": "opaque", "shop": "jwt"}[app]
		b.Run(name, func(b *testing.B) {
			f, _ := jwtFixture(b) // a store of its own: the memory store slows as it grows
			b.ReportAllocs()
			for i := 0; b.Loop(); i++ {
				if _, err := f.svc.Login(b.Context(), app, fmt.Sprintf("u%06d.%s", i, name)); err != nil {
					b.Fatal(err)
				}
				f.clock.Advance(time.Microsecond)
			}
		})
	}
}

// BenchmarkCheck measures GET /v1/session's work in the service for an
// opaque token (a hash and a store read) and a JWT (an ES256 signature
// check and a store read).
func BenchmarkCheck(b *testing.B) {
	f, _ := jwtFixture(b)
	for _, app := range []string{"plain", "shop"} {
		name := map[string]string{"plain": "opaque", "shop": "jwt"}[app]
		tok, err := f.svc.Login(b.Context(), app, "bench."+name)
		if err != nil {
			b.Fatal(err)
		}
		raw := tok.AccessToken.Reveal()
		b.Run(name, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				if _, err := f.svc.Check(b.Context(), raw); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// BenchmarkCheckSQLite measures a check on the SQLite store: of a sealed
// token the store vouches for (no read), and of one whose session changed
// since (a read of the database, as every opaque token's check is).
func BenchmarkCheckSQLite(b *testing.B) {
	f := newSealed(b)
	for _, name := range []string{"sealed", "read"} {
		tok := f.login(name[:1] + "0000-code")
		raw := tok.AccessToken.Reveal()
		if name == "read" {
			info, err := f.svc.Check(b.Context(), raw)
			if err != nil {
				b.Fatal(err)
			}
			if err := f.st.Changed(b.Context(), info.SessionID); err != nil {
				b.Fatal(err)
			}
		}
		b.Run(name, func(b *testing.B) {
			b.ReportAllocs()
			before := f.st.byAccess.Load()
			for b.Loop() {
				if _, err := f.svc.Check(b.Context(), raw); err != nil {
					b.Fatal(err)
				}
			}
			if read := f.st.byAccess.Load() != before; read != (name == "read") {
				b.Fatalf("read the store: %v", read)
			}
		})
	}
}
