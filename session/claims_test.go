package session

import (
	"bytes"
	"context"
	"strings"
	"testing"
	"time"

	"github.com/mplogin/mplogin/keyring"
	"github.com/mplogin/mplogin/store"
)

func TestClaimsRoundTrip(t *testing.T) {
	at := time.Date(2026, 12, 7, 8, 0, 0, 123456000, time.UTC)
	for _, c := range []claims{
		{SessionID: "0193a1b2c3d4e5f60718293a4b5c6d7e", UserID: "0193a1b2c3d4e5f60718293a4b5c6d7f", App: "shop",
			Family: "wechat", OpenID: "o6_bmjrPTlm6_2sgVt7hMZOPfL2M", UnionID: "o6_bmasdasdsad6_2sgVt7hMZOPfL",
			AccessExpiresAt: at, ExpiresAt: at.Add(time.Hour)},
		// Ids not of the service's shape, upper-case hex included, and no
		// unionid or end.
		{SessionID: "S1", UserID: "0193A1B2C3D4E5F60718293A4B5C6D7F", App: "a", Family: "baidu", OpenID: "x",
			AccessExpiresAt: at},
	} {
		got, ok := parseClaims(c.marshal())
		if !ok || got != c {
			t.Errorf("round trip of %+v gave %+v, %v", c, got, ok)
		}
	}
	full := claims{SessionID: "s", UserID: "u", App: "a", Family: "f", OpenID: "o", AccessExpiresAt: at}.marshal()
	for i := range full {
		if _, ok := parseClaims(full[:i]); ok {
			t.Errorf("a %d-byte prefix of the claims parsed", i)
		}
	}
	if _, ok := parseClaims(append(full, 0)); ok {
		t.Error("claims with a trailing byte parsed")
	}
}

func FuzzParseClaims(f *testing.F) {
	at := time.Date(2026, 12, 7, 8, 0, 0, 0, time.UTC)
	f.Add(claims{SessionID: "0193a1b2c3d4e5f60718293a4b5c6d7e", UserID: "u", App: "a", Family: "wechat", OpenID: "o",
		AccessExpiresAt: at}.marshal())
	f.Add([]byte{claimsVersion, 3})
	f.Fuzz(func(t *testing.T, b []byte) {
		c, ok := parseClaims(b)
		if !ok {
			return
		}
		// What parses marshals back to itself, and parses the same.
		again, ok := parseClaims(c.marshal())
		if !ok || again != c {
			t.Fatalf("claims %+v parsed from %x do not round-trip: %+v", c, b, again)
		}
	})
}

type vouchNothing struct{}

func (vouchNothing) Unchanged(string, []byte, time.Time, time.Time) bool { return false }
func (vouchNothing) Changed(context.Context, string) error               { return nil }

// Claims too long for a sealed token leave the session its opaque token.
func TestSealTooLong(t *testing.T) {
	keys, err := keyring.New(nil, bytes.Repeat([]byte{7}, 32))
	if err != nil {
		t.Fatal(err)
	}
	s := &Service{changes: vouchNothing{}, keys: keys}
	at := time.Date(2026, 12, 7, 8, 0, 0, 0, time.UTC)
	opaque := []byte("opaque hash")
	sess := store.Session{ID: "s", UserID: "u", App: "a", Family: "alipay", OpenID: strings.Repeat("o", 400),
		AccessHash: opaque, AccessExpiresAt: at}
	raw, err := s.sealAccess(&sess, at)
	if err != nil || raw != "" || !bytes.Equal(sess.AccessHash, opaque) {
		t.Fatalf("sealAccess = %q, %v, hash %q; want the opaque token kept", raw, err, sess.AccessHash)
	}
	sess.OpenID = "o"
	if raw, err := s.sealAccess(&sess, at); err != nil || raw == "" || bytes.Equal(sess.AccessHash, opaque) {
		t.Fatalf("sealAccess = %q, %v; want a sealed token", raw, err)
	}
}
