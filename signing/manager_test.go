package signing

import (
	"bytes"
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/rsa"
	"crypto/x509"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/go-jose/go-jose/v4"

	"github.com/mplogin/mplogin/internal/testutil"
	"github.com/mplogin/mplogin/keyring"
	"github.com/mplogin/mplogin/store"
	"github.com/mplogin/mplogin/store/memory"
	"github.com/mplogin/mplogin/store/sqlite"
)

var t0 = time.Date(2026, time.January, 2, 3, 4, 5, 0, time.UTC)

const ttl = 10 * time.Minute

func testKeyring(t *testing.T) *keyring.Keyring {
	t.Helper()
	kr, err := keyring.New(nil, bytes.Repeat([]byte{7}, keyring.KeySize))
	if err != nil {
		t.Fatal(err)
	}
	return kr
}

type rig struct {
	st    Store
	keys  *keyring.Keyring
	clock *testutil.Clock
	logs  *testutil.Buffer
}

func newRig(t *testing.T, st Store) *rig {
	if st == nil {
		st = memory.New()
	}
	return &rig{st: st, keys: testKeyring(t), clock: testutil.NewClock(t0), logs: &testutil.Buffer{}}
}

func (r *rig) manager(t *testing.T, alg jose.SignatureAlgorithm) *Manager {
	t.Helper()
	m, err := New(Config{Store: r.st, Keys: r.keys, Algorithm: alg, MaxTokenTTL: ttl, Now: r.clock.Now,
		Logger: slog.New(slog.NewJSONHandler(r.logs, &slog.HandlerOptions{Level: slog.LevelDebug}))})
	if err != nil {
		t.Fatal(err)
	}
	return m
}

func refresh(t *testing.T, m *Manager) {
	t.Helper()
	if err := m.Refresh(t.Context()); err != nil {
		t.Fatalf("Refresh: %v", err)
	}
}

func signer(t *testing.T, m *Manager, now time.Time) Key {
	t.Helper()
	k, err := m.Signer(now)
	if err != nil {
		t.Fatalf("Signer: %v", err)
	}
	return k
}

func kids(m *Manager, now time.Time) []string {
	var out []string
	for _, k := range m.Published(now) {
		out = append(out, k.KeyID)
	}
	return out
}

func TestFirstKeySignsAtOnce(t *testing.T) {
	r := newRig(t, nil)
	m := r.manager(t, "")
	if _, err := m.Signer(t0); err == nil {
		t.Fatal("a signer before the set was loaded")
	}
	refresh(t, m)
	cur := signer(t, m, t0)
	if cur.Algorithm != ES256 || !cur.SignFrom.Equal(t0) {
		t.Fatalf("first key %s from %v, want ES256 from %v", cur.Algorithm, cur.SignFrom, t0)
	}
	pub := kids(m, t0)
	if len(pub) != 2 || pub[0] != cur.KID {
		t.Fatalf("published %v, want the current key %s and a next one", pub, cur.KID)
	}
	next := m.view(t0).next
	if want := t0.Add(DefaultRotation); !next.SignFrom.Equal(want) {
		t.Fatalf("next key signs from %v, want %v", next.SignFrom, want)
	}
	// A second refresh with nothing due changes nothing.
	set, _ := r.st.GetSigningKeys(t.Context())
	refresh(t, m)
	if again, _ := r.st.GetSigningKeys(t.Context()); again.Version != set.Version {
		t.Fatalf("version %d after a refresh with nothing due, want %d", again.Version, set.Version)
	}
}

// TestScheduleOverManyRotations steps the clock an hour at a time through
// several rotations, refreshing as Run would, and checks the two promises
// of the schedule: a key (but the first) is published at least Lead before
// it signs, and a key stays published at least the longest JWT lifetime
// plus the leeway after it last signed.
func TestScheduleOverManyRotations(t *testing.T) {
	r := newRig(t, nil)
	m, err := New(Config{Store: r.st, Keys: r.keys, Rotation: 48 * time.Hour, MaxTokenTTL: ttl, Now: r.clock.Now})
	if err != nil {
		t.Fatal(err)
	}
	firstSeen := map[string]time.Time{}
	signedFrom := map[string]time.Time{}
	lastSigned := map[string]time.Time{}
	gone := map[string]time.Time{}
	step := 5 * time.Minute
	for now := t0; now.Before(t0.Add(10 * 24 * time.Hour)); now = now.Add(step) {
		r.clock.Set(now)
		if now.Sub(t0)%time.Hour == 0 {
			refresh(t, m)
		}
		pub := kids(m, now)
		for _, kid := range pub {
			if _, ok := firstSeen[kid]; !ok {
				firstSeen[kid] = now
			}
			if g, ok := gone[kid]; ok {
				t.Fatalf("%s published again at %v after it left at %v", kid, now, g)
			}
		}
		for kid := range firstSeen {
			if _, ok := gone[kid]; !ok && !strings.Contains(strings.Join(pub, " "), kid) {
				gone[kid] = now
			}
		}
		k := signer(t, m, now)
		if _, ok := signedFrom[k.KID]; !ok {
			signedFrom[k.KID] = now
		}
		lastSigned[k.KID] = now
		if len(pub) > 3 {
			t.Fatalf("%d keys published at %v", len(pub), now)
		}
	}
	if len(signedFrom) < 5 {
		t.Fatalf("%d keys signed in 10 days of 48 h rotations", len(signedFrom))
	}
	for kid, from := range signedFrom {
		if lead := from.Sub(firstSeen[kid]); from != t0 && lead < Lead {
			t.Errorf("%s signed %v after it was first published, want at least %v", kid, lead, Lead)
		}
		if g, ok := gone[kid]; ok {
			if kept := g.Sub(lastSigned[kid]); kept < ttl+Leeway {
				t.Errorf("%s left %v after it last signed, want at least %v", kid, kept, ttl+Leeway)
			}
		}
	}
	if len(gone) == 0 {
		t.Fatal("no retired key ever left the set")
	}
}

func TestInstancesShareOneSet(t *testing.T) {
	r := newRig(t, nil)
	ms := make([]*Manager, 6)
	for i := range ms {
		ms[i] = r.manager(t, "")
	}
	var wg sync.WaitGroup
	for _, m := range ms {
		wg.Go(func() { refresh(t, m) })
	}
	wg.Wait()
	want := signer(t, ms[0], t0).KID
	for i, m := range ms {
		if got := signer(t, m, t0).KID; got != want {
			t.Fatalf("instance %d signs with %s, instance 0 with %s", i, got, want)
		}
	}
	set, err := r.st.GetSigningKeys(t.Context())
	if err != nil || set.Version != 1 {
		t.Fatalf("stored version %d (%v), want 1: one instance made the first keys", set.Version, err)
	}
	// At the rotation every instance switches by the clock alone, and one
	// write adds the new next key.
	at := t0.Add(DefaultRotation)
	r.clock.Set(at)
	next := ms[0].view(t0).next.KID
	for _, m := range ms {
		wg.Go(func() {
			if got := signer(t, m, at).KID; got != next {
				t.Errorf("at the rotation an instance signs with %s, want %s", got, next)
			}
			refresh(t, m)
		})
	}
	wg.Wait()
	if set, _ := r.st.GetSigningKeys(t.Context()); set.Version != 2 {
		t.Fatalf("stored version %d after the rotation, want 2", set.Version)
	}
}

func TestRefreshWithoutTheLeaseUsesTheStoredSet(t *testing.T) {
	r := newRig(t, nil)
	a, b := r.manager(t, ""), r.manager(t, "")
	refresh(t, a)
	if ok, _ := r.st.AcquireLease(t.Context(), LeaseKey, "someone", t0, t0.Add(time.Hour)); !ok {
		t.Fatal("lease")
	}
	refresh(t, b) // nothing due: no lease needed
	if signer(t, a, t0).KID != signer(t, b, t0).KID {
		t.Fatal("b does not sign with the stored key")
	}
}

func TestRotate(t *testing.T) {
	r := newRig(t, nil)
	m := r.manager(t, "")
	refresh(t, m)
	old := signer(t, m, t0)
	next := m.view(t0).next
	r.clock.Set(t0.Add(time.Hour))
	res, err := m.Rotate(t.Context(), false)
	if err != nil {
		t.Fatal(err)
	}
	now := r.clock.Now()
	if res.Current.KID != next.KID || signer(t, m, now).KID != next.KID {
		t.Fatalf("after Rotate the current key is %s, want the next one %s", res.Current.KID, next.KID)
	}
	if len(res.Removed) != 0 || !strings.Contains(strings.Join(kids(m, now), " "), old.KID) {
		t.Fatalf("Rotate without revocation removed %v; published %v", res.Removed, kids(m, now))
	}
	if res.Next == nil || res.Next.KID == next.KID || !res.Next.SignFrom.After(now) {
		t.Fatal("no new next key after Rotate")
	}
	// Another instance sees it on reload.
	other := r.manager(t, "")
	refresh(t, other)
	if signer(t, other, now).KID != next.KID {
		t.Fatal("another instance does not sign with the rotated key")
	}

	cur := res.Current
	res, err = m.Rotate(t.Context(), true)
	if err != nil {
		t.Fatal(err)
	}
	pub := strings.Join(kids(m, now), " ")
	if len(res.Removed) != 1 || res.Removed[0] != cur.KID || strings.Contains(pub, cur.KID) {
		t.Fatalf("Rotate with revocation removed %v, published %s; want %s gone", res.Removed, pub, cur.KID)
	}
	if !strings.Contains(pub, old.KID) {
		t.Fatal("revoking the current key removed an older one too")
	}
}

func TestAlgorithmChange(t *testing.T) {
	r := newRig(t, nil)
	refresh(t, r.manager(t, ES256))
	m := r.manager(t, RS256)
	refresh(t, m)
	v := m.view(t0)
	if v.current.Algorithm != ES256 || v.next.Algorithm != RS256 {
		t.Fatalf("current %s next %s, want ES256 then RS256", v.current.Algorithm, v.next.Algorithm)
	}
	if !v.next.SignFrom.Equal(t0.Add(DefaultRotation)) {
		t.Fatalf("the RS256 key signs from %v, want the replaced key's time", v.next.SignFrom)
	}
	if algs := m.Algorithms(t0); len(algs) != 2 {
		t.Fatalf("Algorithms %v, want both", algs)
	}
}

func TestConfigRefused(t *testing.T) {
	r := newRig(t, nil)
	for _, c := range []Config{
		{Store: r.st, Keys: r.keys, Algorithm: "HS256", MaxTokenTTL: ttl},
		{Store: r.st, Keys: r.keys, Rotation: time.Hour, MaxTokenTTL: ttl},
		{Store: r.st, Keys: r.keys},
		{Keys: r.keys, MaxTokenTTL: ttl},
	} {
		if _, err := New(c); err == nil {
			t.Errorf("New(%+v) accepted", c)
		}
	}
}

// TestJWKSHoldsPublicKeysOnly decodes the JWK set member by member: no
// private member of any key type is there, and each key has kid (its
// RFC 7638 thumbprint), alg and use.
func TestJWKSHoldsPublicKeysOnly(t *testing.T) {
	for _, alg := range []jose.SignatureAlgorithm{ES256, RS256} {
		t.Run(string(alg), func(t *testing.T) {
			r := newRig(t, nil)
			m := r.manager(t, alg)
			refresh(t, m)
			b, err := m.JWKS(t0)
			if err != nil {
				t.Fatal(err)
			}
			var raw struct {
				Keys []map[string]any `json:"keys"`
			}
			if err := json.Unmarshal(b, &raw); err != nil || len(raw.Keys) != 2 {
				t.Fatalf("JWKS %s: %v", b, err)
			}
			for _, k := range raw.Keys {
				for _, private := range []string{"d", "p", "q", "dp", "dq", "qi", "oth", "k", "priv"} {
					if _, ok := k[private]; ok {
						t.Fatalf("private member %q published: %s", private, b)
					}
				}
				if k["alg"] != string(alg) || k["use"] != "sig" || k["kid"] == "" {
					t.Fatalf("key without alg, use or kid: %v", k)
				}
			}
			var set jose.JSONWebKeySet
			if err := json.Unmarshal(b, &set); err != nil {
				t.Fatal(err)
			}
			for _, k := range set.Keys {
				tp, _ := k.Thumbprint(crypto.SHA256)
				if !k.IsPublic() || k.KeyID != base64.RawURLEncoding.EncodeToString(tp) {
					t.Fatalf("key %s is not public or its kid is not its thumbprint", k.KeyID)
				}
			}
			for _, v := range secretsOf(t, m) {
				if strings.Contains(string(b), v) {
					t.Fatal("the JWKS holds private key material")
				}
			}
			if _, err := MarshalJWKS([]jose.JSONWebKey{{Key: m.view(t0).current.priv, KeyID: "x"}}); err == nil {
				t.Fatal("MarshalJWKS published a private key")
			}
		})
	}
}

func TestSignatureVerifiesWithThePublishedKey(t *testing.T) {
	for _, alg := range []jose.SignatureAlgorithm{ES256, RS256} {
		r := newRig(t, nil)
		m := r.manager(t, alg)
		refresh(t, m)
		k := signer(t, m, t0)
		s, err := k.NewSigner((&jose.SignerOptions{}).WithType("at+jwt"))
		if err != nil {
			t.Fatal(err)
		}
		jws, err := s.Sign([]byte(`{"sub":"u"}`))
		if err != nil {
			t.Fatal(err)
		}
		compact, _ := jws.CompactSerialize()
		parsed, err := jose.ParseSignedCompact(compact, []jose.SignatureAlgorithm{alg})
		if err != nil {
			t.Fatal(err)
		}
		if parsed.Signatures[0].Header.KeyID != k.KID {
			t.Fatalf("kid %q in the header, want %q", parsed.Signatures[0].Header.KeyID, k.KID)
		}
		if _, err := parsed.Verify(k.Public()); err != nil {
			t.Fatalf("%s: %v", alg, err)
		}
	}
}

// secretsOf lists the encodings a private key of m's set could leak in:
// its scalar or primes in base64url, hex and decimal, and its PKCS #8 DER
// in base64.
func secretsOf(t *testing.T, m *Manager) []string {
	t.Helper()
	var out []string
	for _, k := range m.view(t0).published {
		var nums [][]byte
		switch p := k.priv.(type) {
		case *ecdsa.PrivateKey:
			d, err := p.Bytes()
			if err != nil {
				t.Fatal(err)
			}
			nums = append(nums, d)
		case *rsa.PrivateKey:
			nums = append(nums, p.D.Bytes(), p.Primes[0].Bytes(), p.Primes[1].Bytes())
		}
		for _, n := range nums {
			out = append(out, base64.RawURLEncoding.EncodeToString(n), base64.StdEncoding.EncodeToString(n)[:20],
				hex.EncodeToString(n), string(n))
		}
		der, err := x509.MarshalPKCS8PrivateKey(k.priv)
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, base64.StdEncoding.EncodeToString(der)[40:80], string(der[len(der)-32:]))
	}
	return out
}

// TestNoPrivateKeyInLogsErrorsOrStore runs the manager through its life
// (first keys, rotation, revocation, a failed open) and finds no private
// key in its logs, in its errors, in a formatted Key, or in the sealed
// blob the store holds.
func TestNoPrivateKeyInLogsErrorsOrStore(t *testing.T) {
	for _, alg := range []jose.SignatureAlgorithm{ES256, RS256} {
		t.Run(string(alg), func(t *testing.T) {
			r := newRig(t, nil)
			m := r.manager(t, alg)
			refresh(t, m)
			secrets := secretsOf(t, m)
			if _, err := m.Rotate(t.Context(), false); err != nil {
				t.Fatal(err)
			}
			secrets = append(secrets, secretsOf(t, m)...)
			if _, err := m.Rotate(t.Context(), true); err != nil {
				t.Fatal(err)
			}
			var seen strings.Builder
			seen.WriteString(r.logs.String())
			k := signer(t, m, t0)
			fmt.Fprintf(&seen, "%v %+v %#v %s %q %x", k, k, k, k, k, k)
			slog.New(slog.NewTextHandler(&seen, nil)).Info("key", "key", k, "ptr", &k)
			set, err := r.st.GetSigningKeys(t.Context())
			if err != nil {
				t.Fatal(err)
			}
			seen.Write(set.Sealed)
			// A wrong master key fails without telling what it read.
			other, _ := keyring.New(nil, bytes.Repeat([]byte{8}, keyring.KeySize))
			if _, err := open(other, set.Sealed); err != nil {
				seen.WriteString(err.Error())
			}
			if !strings.Contains(seen.String(), k.KID) {
				t.Fatal("the scan saw nothing: no kid either")
			}
			for _, s := range secrets {
				if strings.Contains(seen.String(), s) {
					t.Fatalf("private key material in the logs, a formatted key, an error or the store")
				}
			}
		})
	}
}

// TestSealedForItsPurpose: the set opens only as a key set, so a sealed
// value of another purpose cannot stand in for it, nor it for another.
func TestSealedForItsPurpose(t *testing.T) {
	r := newRig(t, nil)
	refresh(t, r.manager(t, ""))
	set, _ := r.st.GetSigningKeys(t.Context())
	if _, err := r.keys.Open(set.Sealed, []byte("wechat\x00wx1\x00openid")); err == nil {
		t.Fatal("the key set opened with another purpose's AAD")
	}
	forged, _ := r.keys.Seal([]byte(`{"keys":[]}`), []byte("another purpose"))
	if _, err := open(r.keys, forged); err == nil {
		t.Fatal("a value sealed for another purpose opened as a key set")
	}
}

// TestSQLiteFileHoldsNoPrivateKey looks in the database file itself.
func TestSQLiteFileHoldsNoPrivateKey(t *testing.T) {
	path := filepath.Join(t.TempDir(), "keys.db")
	st, err := sqlite.Open(t.Context(), path, sqlite.Options{})
	if err != nil {
		t.Fatal(err)
	}
	r := newRig(t, st)
	m := r.manager(t, RS256)
	refresh(t, m)
	secrets := secretsOf(t, m)
	if err := st.Close(); err != nil {
		t.Fatal(err)
	}
	var all []byte
	for _, p := range []string{path, path + "-wal"} {
		b, _ := os.ReadFile(p)
		all = append(all, b...)
	}
	if len(all) == 0 {
		t.Fatal("nothing read")
	}
	for _, s := range secrets {
		if bytes.Contains(all, []byte(s)) {
			t.Fatal("private key material in the SQLite file")
		}
	}
}

func TestRunReloads(t *testing.T) {
	r := newRig(t, nil)
	m := r.manager(t, "")
	ctx, cancel := context.WithCancel(t.Context())
	done := make(chan struct{})
	go func() { defer close(done); m.Run(ctx) }()
	deadline := time.Now().Add(10 * time.Second)
	for {
		if _, err := m.Signer(t0); err == nil {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("Run loaded no key")
		}
		time.Sleep(10 * time.Millisecond)
	}
	cancel()
	<-done
}

var _ Store = store.Store(nil)
