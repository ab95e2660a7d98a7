// Package token mints and recognises mplogin's own opaque tokens: the
// minting millisecond and 32 bytes from crypto/rand, base64url, behind a type
// prefix. Only a hash is ever stored, and lookups go by that hash, so no code
// compares a token's bytes and a database dump holds nothing usable.
//
// A sealed token has the same front (prefix, then the minting millisecond)
// followed by a payload sealed with the master key instead of the random
// bytes: the service can read it back without a lookup, the client cannot
// read or change it. Its hash is made and stored like any other's.
//
// The stored hash is the token's 6 bytes of milliseconds followed by the
// SHA-256 of the whole token. The time in front costs nothing in secrecy (a
// session's creation time is stored beside it anyway) and puts new tokens at
// the end of the stores' indexes by hash instead of at random pages: each
// login then writes two fewer random index pages.
package token

import (
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/mplogin/mplogin/keyring"
)

// Type prefixes, so a leaked token says what it is and a refresh token can
// never pass as an access token.
const (
	Access  = "mpa_"
	Refresh = "mpr_"
)

const (
	timeBytes   = 6 // milliseconds since 1970, big-endian: until the year 10889
	randomBytes = 32
	encodedLen  = 51 // base64url of timeBytes+randomBytes, no padding
	timeChars   = 8  // base64url of the timeBytes alone: 6 bytes are exactly 8 characters

	// legacyLen is the body of a token minted before tokens carried their
	// time: 32 random bytes alone. Such a token is still recognised, and its
	// hash is the plain SHA-256, as it was stored then.
	legacyLen = 43

	// maxSealedLen bounds the body of a sealed token, so that a request
	// cannot make the service hash or open more than that.
	maxSealedLen = 512
)

// PutMillis writes now's Unix milliseconds into the first 6 bytes of b,
// big-endian: the time-ordered front of tokens, and of the service's user
// and session ids.
func PutMillis(b []byte, now time.Time) {
	ms := uint64(max(now.UnixMilli(), 0))
	for i := range timeBytes {
		b[i] = byte(ms >> (8 * (timeBytes - 1 - i)))
	}
}

// IDBytes returns the 16 bytes of an id made like the service's user and
// session ids (PutMillis, then random bytes: 32 lowercase hex digits);
// false for any other string.
func IDBytes(id string) ([16]byte, bool) {
	var b [16]byte
	if len(id) != 2*len(b) {
		return b, false
	}
	for i := range b {
		hi, ok1 := lowerHex(id[2*i])
		lo, ok2 := lowerHex(id[2*i+1])
		if !ok1 || !ok2 {
			return [16]byte{}, false
		}
		b[i] = hi<<4 | lo
	}
	return b, true
}

func lowerHex(c byte) (byte, bool) {
	switch {
	case '0' <= c && c <= '9':
		return c - '0', true
	case 'a' <= c && c <= 'f':
		return c - 'a' + 10, true
	}
	return 0, false
}

// New mints a token of the given type at now and returns it with its hash.
func New(rnd io.Reader, prefix string, now time.Time) (string, []byte, error) {
	var b [timeBytes + randomBytes]byte
	PutMillis(b[:], now)
	if _, err := io.ReadFull(rnd, b[timeBytes:]); err != nil {
		return "", nil, fmt.Errorf("token: random: %w", err)
	}
	raw := prefix + base64.RawURLEncoding.EncodeToString(b[:])
	return raw, hash(raw, len(prefix)), nil
}

// Minted returns the minting time, to the millisecond, that a hash from
// New or Parse carries; false for a token minted before tokens carried
// their time.
func Minted(hash []byte) (time.Time, bool) {
	if len(hash) != timeBytes+sha256.Size {
		return time.Time{}, false
	}
	var ms int64
	for _, b := range hash[:timeBytes] {
		ms = ms<<8 | int64(b)
	}
	return time.UnixMilli(ms).UTC(), true
}

// hash is what is stored and looked up: the token's time, then its SHA-256
// (see the package comment). raw has the shape Parse checks.
func hash(raw string, prefixLen int) []byte {
	sum := sha256.Sum256([]byte(raw))
	if len(raw)-prefixLen == legacyLen {
		return sum[:]
	}
	out := make([]byte, timeBytes, timeBytes+len(sum))
	// Parse has checked the alphabet, so this cannot fail.
	_, _ = base64.RawURLEncoding.Decode(out, []byte(raw[prefixLen:prefixLen+timeChars]))
	return append(out, sum[:]...)
}

// Parse checks that raw looks like a token of the given type and returns its
// hash. The shape check keeps garbage away from the store.
func Parse(raw, prefix string) ([]byte, bool) {
	n := len(raw) - len(prefix)
	sealed := prefix == Access && n > encodedLen && n <= maxSealedLen
	if n != encodedLen && n != legacyLen && !sealed || !strings.HasPrefix(raw, prefix) {
		return nil, false
	}
	if !base64url(raw[len(prefix):]) {
		return nil, false
	}
	return hash(raw, len(prefix)), true
}

// base64url reports whether s holds only base64url characters (the decoder
// alone would skip line breaks).
func base64url(s string) bool {
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !(c >= 'A' && c <= 'Z' || c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c == '-' || c == '_') {
			return false
		}
	}
	return true
}

// ErrTooLong: the payload does not fit in a sealed token.
var ErrTooLong = errors.New("token: sealed payload too long")

// NewSealed mints an access token at now that carries payload, sealed by
// keys, and returns it with its hash. The seal binds the payload to the
// token's type and minting time, so neither can be swapped. Only access
// tokens are sealed.
func NewSealed(keys *keyring.Keyring, now time.Time, payload []byte) (string, []byte, error) {
	const prefix = Access
	b := make([]byte, timeBytes, timeBytes+len(payload)+64)
	PutMillis(b, now)
	sealed, err := keys.Seal(payload, sealedAAD(prefix, b))
	if err != nil {
		return "", nil, fmt.Errorf("token: seal: %w", err)
	}
	raw := prefix + base64.RawURLEncoding.EncodeToString(append(b, sealed...))
	if len(raw)-len(prefix) > maxSealedLen {
		return "", nil, ErrTooLong
	}
	return raw, hash(raw, len(prefix)), nil
}

// Unseal returns the payload of an access token that NewSealed minted with
// keys (or with a key kept beside their primary), and when it was minted;
// false for any other token, and for one changed in any way.
func Unseal(keys *keyring.Keyring, raw string) ([]byte, time.Time, bool) {
	const prefix = Access
	n := len(raw) - len(prefix)
	if n <= encodedLen || n > maxSealedLen || !strings.HasPrefix(raw, prefix) || !base64url(raw[len(prefix):]) {
		return nil, time.Time{}, false
	}
	b, err := base64.RawURLEncoding.Strict().DecodeString(raw[len(prefix):])
	if err != nil || len(b) <= timeBytes {
		return nil, time.Time{}, false
	}
	payload, err := keys.Open(b[timeBytes:], sealedAAD(prefix, b[:timeBytes]))
	if err != nil {
		return nil, time.Time{}, false
	}
	minted, _ := Minted(append(b[:timeBytes:timeBytes], make([]byte, sha256.Size)...))
	return payload, minted, true
}

func sealedAAD(prefix string, millis []byte) []byte {
	return append([]byte("mplogin sealed token\x00"+prefix+"\x00"), millis...)
}
