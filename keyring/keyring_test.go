package keyring_test

import (
	"bytes"
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
