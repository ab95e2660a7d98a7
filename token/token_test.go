package token_test

import (
	"bytes"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/binary"
	"strings"
	"testing"
	"time"

	"github.com/mplogin/mplogin/keyring"
	"github.com/mplogin/mplogin/token"
)

var t0 = time.Date(2026, 11, 21, 8, 0, 0, 0, time.UTC)

func TestMintAndParse(t *testing.T) {
	seen := map[string]bool{}
	for i := 0; i < 1000; i++ {
		raw, hash, err := token.New(rand.Reader, token.Access, t0)
		if err != nil {
			t.Fatal(err)
		}
		if seen[raw] {
			t.Fatal("duplicate token")
		}
		seen[raw] = true
		body, err := base64.RawURLEncoding.DecodeString(strings.TrimPrefix(raw, token.Access))
		if err != nil || len(body) != 6+32 {
			t.Fatalf("%q carries %d bytes, want 6 of time and 32 random (256 bits)", raw, len(body))
		}
		if ms := binary.BigEndian.Uint64(append([]byte{0, 0}, body[:6]...)); ms != uint64(t0.UnixMilli()) {
			t.Fatalf("%q carries the millisecond %d, want %d", raw, ms, t0.UnixMilli())
		}
		sum := sha256.Sum256([]byte(raw))
		if !bytes.Equal(hash, append(body[:6:6], sum[:]...)) {
			t.Fatalf("hash of %q is %x, want its time then its SHA-256", raw, hash)
		}
		got, ok := token.Parse(raw, token.Access)
		if !ok || !bytes.Equal(got, hash) {
			t.Fatalf("parse %q", raw)
		}
		if _, ok := token.Parse(raw, token.Refresh); ok {
			t.Fatal("access token accepted as refresh token")
		}
	}
}

// The stores index tokens by hash: a later token must sort after an earlier
// one, whatever their random bytes.
func TestHashesAreTimeOrdered(t *testing.T) {
	var prev []byte
	for i := range 200 {
		_, hash, err := token.New(rand.Reader, token.Refresh, t0.Add(time.Duration(i)*time.Millisecond))
		if err != nil {
			t.Fatal(err)
		}
		if prev != nil && bytes.Compare(prev, hash) >= 0 {
			t.Fatalf("token %d's hash %x does not sort after the one minted a millisecond before, %x", i, hash, prev)
		}
		prev = hash
	}
}

// A token minted before tokens carried their time (32 random bytes alone)
// is still recognised, under the hash it was stored with then.
func TestLegacyTokens(t *testing.T) {
	var b [32]byte
	if _, err := rand.Read(b[:]); err != nil {
		t.Fatal(err)
	}
	raw := token.Access + base64.RawURLEncoding.EncodeToString(b[:])
	got, ok := token.Parse(raw, token.Access)
	sum := sha256.Sum256([]byte(raw))
	if !ok || !bytes.Equal(got, sum[:]) {
		t.Fatalf("legacy token: parse = %x, %v; want its SHA-256 %x", got, ok, sum)
	}
}

func TestParseRejectsGarbage(t *testing.T) {
	valid, _, _ := token.New(rand.Reader, token.Refresh, t0)
	for _, bad := range []string{"", "mpr_", "mpr_short", valid + "x", valid[:len(valid)-1] + "=", "mpa_" + valid[4:],
		strings.Replace(valid, valid[10:11], "!", 1), valid[:len(valid)-1], strings.Repeat("a", 10000),
		"mpr_" + strings.Repeat("A", 42), "mpr_" + strings.Repeat("A", 44)} {
		if _, ok := token.Parse(bad, token.Refresh); ok {
			t.Errorf("accepted %q", bad)
		}
	}
}

// FuzzParse: no input panics, and whatever Parse accepts has a hash of
// one of the two shapes.
func FuzzParse(f *testing.F) {
	valid, _, _ := token.New(rand.Reader, token.Access, t0)
	f.Add(valid)
	f.Add(token.Access + strings.Repeat("A", 43))
	f.Add("mpa_")
	f.Fuzz(func(t *testing.T, raw string) {
		hash, ok := token.Parse(raw, token.Access)
		if ok && len(hash) != 32 && len(hash) != 38 {
			t.Fatalf("Parse(%q) = a %d-byte hash", raw, len(hash))
		}
	})
}

func TestMinted(t *testing.T) {
	now := time.Date(2025, 3, 14, 9, 26, 53, 589_793_000, time.UTC)
	raw, h, err := token.New(rand.Reader, token.Access, now)
	if err != nil {
		t.Fatal(err)
	}
	got, ok := token.Minted(h)
	if want := now.Truncate(time.Millisecond); !ok || !got.Equal(want) {
		t.Fatalf("Minted = %v, %v; want %v", got, ok, want)
	}
	if parsed, _ := token.Parse(raw, token.Access); !bytes.Equal(parsed, h) {
		t.Fatal("Parse gives another hash")
	}
	legacy := sha256.Sum256([]byte("x"))
	if _, ok := token.Minted(legacy[:]); ok {
		t.Fatal("a legacy hash has a minting time")
	}
}

func sealKeys(t testing.TB, primary byte, old ...byte) *keyring.Keyring {
	t.Helper()
	key := func(b byte) []byte { return bytes.Repeat([]byte{b}, keyring.KeySize) }
	var olds [][]byte
	for _, o := range old {
		olds = append(olds, key(o))
	}
	k, err := keyring.New(nil, key(primary), olds...)
	if err != nil {
		t.Fatal(err)
	}
	return k
}

func TestSealed(t *testing.T) {
	keys := sealKeys(t, 1)
	payload := []byte("session 1, user 2, openid o-3")
	raw, hash, err := token.NewSealed(keys, t0, payload)
	if err != nil {
		t.Fatal(err)
	}
	if bytes.Contains([]byte(raw), payload) {
		t.Fatal("the payload shows in the token")
	}
	got, minted, ok := token.Unseal(keys, raw)
	if !ok || !bytes.Equal(got, payload) || !minted.Equal(t0) {
		t.Fatalf("Unseal = %q, %v, %v; want the payload and %v", got, minted, ok, t0)
	}
	if h, ok := token.Parse(raw, token.Access); !ok || !bytes.Equal(h, hash) {
		t.Fatal("Parse does not give a sealed token the hash NewSealed did")
	}
	if m, ok := token.Minted(hash); !ok || !m.Equal(t0) {
		t.Fatalf("the hash carries %v, want %v", m, t0)
	}
	raw2, _, err := token.NewSealed(keys, t0, payload)
	if err != nil || raw2 == raw {
		t.Fatal("two sealed tokens of the same payload and time are the same token")
	}

	// Rotation: a token sealed under the old primary still opens.
	rotated := sealKeys(t, 9, 1)
	if got, _, ok := token.Unseal(rotated, raw); !ok || !bytes.Equal(got, payload) {
		t.Fatal("a sealed token does not open once its key is an old one")
	}
	if _, ok := token.Parse(token.Refresh+strings.TrimPrefix(raw, token.Access), token.Refresh); ok {
		t.Fatal("a sealed body passes as a refresh token")
	}
	for name, bad := range map[string]struct {
		keys *keyring.Keyring
		raw  string
	}{
		"another key":          {sealKeys(t, 2), raw},
		"another type":         {keys, token.Refresh + strings.TrimPrefix(raw, token.Access)},
		"opaque":               {keys, mustNew(t)},
		"truncated":            {keys, raw[:len(raw)-1]},
		"too long":             {keys, raw + strings.Repeat("A", 600)},
		"not base64":           {keys, raw[:20] + "*" + raw[21:]},
		"time moved":           {keys, raw[:4] + flip(raw[4]) + raw[5:]},
		"last character moved": {keys, raw[:len(raw)-1] + flip(raw[len(raw)-1])},
	} {
		if _, _, ok := token.Unseal(bad.keys, bad.raw); ok {
			t.Errorf("%s: Unseal accepted it", name)
		}
	}
	// Every single-character change is refused.
	for i := len(token.Access); i < len(raw); i++ {
		if _, _, ok := token.Unseal(keys, raw[:i]+flip(raw[i])+raw[i+1:]); ok {
			t.Fatalf("changing character %d: Unseal accepted it", i)
		}
	}
	if _, _, err := token.NewSealed(keys, t0, make([]byte, 400)); err == nil {
		t.Fatal("NewSealed made a token longer than Parse accepts")
	}
}

func flip(c byte) string {
	if c == 'A' {
		return "B"
	}
	return "A"
}

func mustNew(t *testing.T) string {
	raw, _, err := token.New(rand.Reader, token.Access, t0)
	if err != nil {
		t.Fatal(err)
	}
	return raw
}

func FuzzUnseal(f *testing.F) {
	keys := sealKeys(f, 1)
	raw, _, err := token.NewSealed(keys, t0, []byte("payload"))
	if err != nil {
		f.Fatal(err)
	}
	f.Add(raw)
	f.Add(token.Access)
	f.Fuzz(func(t *testing.T, s string) {
		p, _, ok := token.Unseal(keys, s)
		if ok && !bytes.Equal(p, []byte("payload")) {
			t.Fatalf("Unseal(%q) opened a payload nobody sealed: %q", s, p)
		}
		if ok {
			if _, ok := token.Parse(s, token.Access); !ok {
				t.Fatalf("Unseal accepted %q, Parse does not", s)
			}
		}
	})
}

func TestIDBytes(t *testing.T) {
	want := [16]byte{0x01, 0x93, 0xa1, 0xb2, 0xc3, 0xd4, 0xe5, 0xf6, 0x07, 0x18, 0x29, 0x3a, 0x4b, 0x5c, 0x6d, 0x7e}
	if got, ok := token.IDBytes("0193a1b2c3d4e5f60718293a4b5c6d7e"); !ok || got != want {
		t.Fatalf("IDBytes = %x, %v; want %x", got, ok, want)
	}
	for _, bad := range []string{"", "0193a1b2", "0193A1B2C3D4E5F60718293A4B5C6D7E", "0193a1b2c3d4e5f60718293a4b5c6d7g",
		"0193a1b2c3d4e5f60718293a4b5c6d7e0", "s1"} {
		if _, ok := token.IDBytes(bad); ok {
			t.Errorf("IDBytes(%q) accepted", bad)
		}
	}
}
