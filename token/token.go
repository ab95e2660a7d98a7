// Package token mints and recognises mplogin's own opaque tokens: 32 bytes
// from crypto/rand, base64url, behind a type prefix. Only their SHA-256 is
// ever stored, and lookups go by that hash, so no code compares a token's
// bytes and a database dump holds nothing usable.
package token

import (
	"crypto/sha256"
	"encoding/base64"
	"fmt"
	"io"
	"strings"
)

// Type prefixes, so a leaked token says what it is and a refresh token can
// never pass as an access token.
const (
	Access  = "mpa_"
	Refresh = "mpr_"
)

const (
	randomBytes = 32
	encodedLen  = 43 // base64url of 32 bytes, no padding
)

// New mints a token of the given type and returns it with its hash.
func New(rnd io.Reader, prefix string) (string, []byte, error) {
	var b [randomBytes]byte
	if _, err := io.ReadFull(rnd, b[:]); err != nil {
		return "", nil, fmt.Errorf("token: random: %w", err)
	}
	raw := prefix + base64.RawURLEncoding.EncodeToString(b[:])
	return raw, Hash(raw), nil
}

// Hash is what is stored and looked up.
func Hash(raw string) []byte {
	sum := sha256.Sum256([]byte(raw))
	return sum[:]
}

// Parse checks that raw looks like a token of the given type and returns its
// hash. The shape check keeps garbage away from the store.
func Parse(raw, prefix string) ([]byte, bool) {
	if len(raw) != len(prefix)+encodedLen || !strings.HasPrefix(raw, prefix) {
		return nil, false
	}
	for i := len(prefix); i < len(raw); i++ {
		c := raw[i]
		if !(c >= 'A' && c <= 'Z' || c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c == '-' || c == '_') {
			return nil, false
		}
	}
	return Hash(raw), true
}
