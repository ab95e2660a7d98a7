package keyring_test

import (
	"bytes"
	"encoding/hex"
	"errors"
	"testing"

	"github.com/mplogin/mplogin/keyring"
)

func key(b byte) []byte { return bytes.Repeat([]byte{b}, keyring.KeySize) }

func TestSealOpenRotate(t *testing.T) {
	old, err := keyring.New(nil, key(1))
	if err != nil {
		t.Fatal(err)
	}
	pt := []byte("tiihtNczf5v6AKRyjwEUhQ==")
	aad := []byte("wechat\x00wx1\x00openid")
	sealed, err := old.Seal(pt, aad)
	if err != nil {
		t.Fatal(err)
	}
	if bytes.Contains(sealed, pt) {
		t.Fatal("plaintext visible in sealed value")
	}
	again, _ := old.Seal(pt, aad)
	if bytes.Equal(sealed, again) {
		t.Fatal("nonce reused")
	}
	rotated, err := keyring.New(nil, key(2), key(1))
	if err != nil {
		t.Fatal(err)
	}
	got, err := rotated.Open(sealed, aad)
	if err != nil || !bytes.Equal(got, pt) {
		t.Fatalf("open after rotation: %q %v", got, err)
	}
	resealed, _ := rotated.Seal(pt, aad)
	if _, err := old.Open(resealed, aad); !errors.Is(err, keyring.ErrOpen) {
		t.Fatalf("old keyring opened a value of the new key: %v", err)
	}
	if old.PrimaryID() == rotated.PrimaryID() {
		t.Fatal("key ids collide")
	}
	bad := map[string][]byte{
		"other aad": nil, "empty": {}, "short": sealed[:10], "flipped": append(append([]byte{}, sealed[:len(sealed)-1]...), sealed[len(sealed)-1]^1),
	}
	for name, v := range bad {
		a := aad
		if name == "other aad" {
			v, a = sealed, []byte("wechat\x00wx1\x00other")
		}
		if _, err := rotated.Open(v, a); !errors.Is(err, keyring.ErrOpen) {
			t.Errorf("%s: %v", name, err)
		}
	}
	if _, err := keyring.New(nil, key(1)[:16]); err == nil {
		t.Fatal("short key accepted")
	}
}

func TestLookup(t *testing.T) {
	old, err := keyring.New(nil, key(1))
	if err != nil {
		t.Fatal(err)
	}
	v := []byte("8613800000000")
	// Computed apart: HMAC-SHA256 under HKDF-SHA256(key, no salt,
	// "mplogin lookup key"), of "phone\x00" and the value.
	const want = "d17f3278ed7256e442488c4990cd91809c0b5b8845b4609fa0abe6696277953f"
	if got := hex.EncodeToString(old.Lookup("phone", v)); got != want {
		t.Fatalf("Lookup = %s, want %s", got, want)
	}
	if bytes.Equal(old.Lookup("phone", v), old.Lookup("phone", []byte("8613800000001"))) {
		t.Fatal("two values share a lookup")
	}
	if bytes.Equal(old.Lookup("phone", v), old.Lookup("email", v)) {
		t.Fatal("two purposes share a lookup")
	}
	if bytes.Contains(old.Lookup("phone", v), v) {
		t.Fatal("the value is visible in its lookup")
	}

	rotated, err := keyring.New(nil, key(2), key(1))
	if err != nil {
		t.Fatal(err)
	}
	all := rotated.Lookups("phone", v)
	if len(all) != 2 || !bytes.Equal(all[0], rotated.Lookup("phone", v)) || !bytes.Equal(all[1], old.Lookup("phone", v)) {
		t.Fatalf("Lookups after a rotation = %x; want the new key's lookup, then the old one's", all)
	}
	if bytes.Equal(all[0], all[1]) {
		t.Fatal("two master keys make the same lookup")
	}
	if len(all[0]) != keyring.LookupSize {
		t.Fatalf("lookup is %d bytes, want %d", len(all[0]), keyring.LookupSize)
	}
}
