// Package keyring seals session keys and platform access tokens at
// rest with AES-256-GCM under the master key. Each sealed value names the key
// that sealed it, so the master key can rotate: new values use the primary
// key, old ones still open with the keys kept beside it.
//
// It also makes lookups: keyed hashes that let a store find a row by a
// low-entropy value (a phone number) without holding the value, and
// without a plain hash that a dictionary of every number would reverse.
package keyring

import (
	"crypto/aes"
	"crypto/cipher"
	"crypto/hkdf"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
)

// KeySize is the size of a master key.
const KeySize = 32

const (
	version  = 1
	idLen    = 4
	nonceLen = 12
	header   = 1 + idLen + nonceLen
)

// ErrOpen is every failure to open a sealed value; the cause is not told.
var ErrOpen = errors.New("keyring: cannot open sealed value")

// Keyring seals with its primary key and opens with any of its keys.
type Keyring struct {
	primary [idLen]byte
	aeads   map[[idLen]byte]cipher.AEAD
	rand    io.Reader
	// lookupKeys derive from the master keys, the primary's first.
	lookupKeys [][]byte
}

// LookupSize is the size of a lookup.
const LookupSize = sha256.Size

// New returns a keyring sealing with primary and also opening values sealed
// with any of old. rand nil means crypto/rand.
func New(rnd io.Reader, primary []byte, old ...[]byte) (*Keyring, error) {
	if rnd == nil {
		rnd = rand.Reader
	}
	k := &Keyring{aeads: make(map[[idLen]byte]cipher.AEAD), rand: rnd}
	for i, key := range append([][]byte{primary}, old...) {
		if len(key) != KeySize {
			return nil, fmt.Errorf("keyring: key %d is %d bytes, want %d", i, len(key), KeySize)
		}
		block, err := aes.NewCipher(key)
		if err != nil {
			return nil, fmt.Errorf("keyring: %w", err)
		}
		aead, err := cipher.NewGCM(block)
		if err != nil {
			return nil, fmt.Errorf("keyring: %w", err)
		}
		id := keyID(key)
		if i == 0 {
			k.primary = id
		}
		k.aeads[id] = aead
		lk, err := hkdf.Key(sha256.New, key, nil, "mplogin lookup key", sha256.Size)
		if err != nil {
			return nil, fmt.Errorf("keyring: %w", err)
		}
		k.lookupKeys = append(k.lookupKeys, lk)
	}
	return k, nil
}

// keyID names a key without revealing it.
func keyID(key []byte) [idLen]byte {
	sum := sha256.Sum256(append([]byte("mplogin keyring id\x00"), key...))
	var id [idLen]byte
	copy(id[:], sum[:])
	return id
}

// PrimaryID is the hex id of the sealing key, for logs.
func (k *Keyring) PrimaryID() string { return hex.EncodeToString(k.primary[:]) }

// Seal encrypts plaintext bound to aad (what the value belongs to, so a
// sealed value cannot be moved to another row).
func (k *Keyring) Seal(plaintext, aad []byte) ([]byte, error) {
	aead := k.aeads[k.primary]
	out := make([]byte, header, header+len(plaintext)+aead.Overhead())
	out[0] = version
	copy(out[1:], k.primary[:])
	if _, err := io.ReadFull(k.rand, out[1+idLen:header]); err != nil {
		return nil, fmt.Errorf("keyring: nonce: %w", err)
	}
	return aead.Seal(out, out[1+idLen:header], plaintext, aad), nil
}

// Open decrypts a value sealed by Seal with the same aad.
func (k *Keyring) Open(sealed, aad []byte) ([]byte, error) {
	if len(sealed) < header || sealed[0] != version {
		return nil, ErrOpen
	}
	var id [idLen]byte
	copy(id[:], sealed[1:])
	aead, ok := k.aeads[id]
	if !ok {
		return nil, ErrOpen
	}
	pt, err := aead.Open(nil, sealed[1+idLen:header], sealed[header:], aad)
	if err != nil {
		return nil, ErrOpen
	}
	return pt, nil
}

// Lookup is the keyed hash of value for purpose (which keeps lookups of
// different kinds of value apart) under the primary key: what a store
// keeps to find the value's row again.
func (k *Keyring) Lookup(purpose string, value []byte) []byte {
	return lookup(k.lookupKeys[0], purpose, value)
}

// Lookups are value's lookups under every key, the primary's first: what
// a search matches, so that rows written before the master key rotated
// are still found.
func (k *Keyring) Lookups(purpose string, value []byte) [][]byte {
	out := make([][]byte, len(k.lookupKeys))
	for i, key := range k.lookupKeys {
		out[i] = lookup(key, purpose, value)
	}
	return out
}

func lookup(key []byte, purpose string, value []byte) []byte {
	m := hmac.New(sha256.New, key)
	m.Write([]byte(purpose))
	m.Write([]byte{0})
	m.Write(value)
	return m.Sum(nil)
}
