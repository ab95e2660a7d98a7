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
