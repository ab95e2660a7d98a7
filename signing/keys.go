package signing

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/go-jose/go-jose/v4"
)

// Algorithms a key may have.
const (
	ES256 = jose.ES256 // ECDSA P-256 with SHA-256, the default
	RS256 = jose.RS256 // RSA 2048 PKCS#1 v1.5 with SHA-256
)

// rsaBits is the size of a new RSA key: what RFC 7518 requires at least,
// and what every verifier takes.
const rsaBits = 2048

// Key is a signing key. It formats itself (fmt, slog) as its kid only.
type Key struct {
	KID       string
	Algorithm jose.SignatureAlgorithm
	// SignFrom is when it signs (or signed) its first token.
	SignFrom time.Time
	Created  time.Time
	priv     crypto.Signer
	pub      jose.JSONWebKey // the public JWK with kid, alg and use
}

// String returns the kid.
func (k Key) String() string { return k.KID }

// Format implements fmt.Formatter: every verb prints the kid, so that a
// private key cannot be printed by mistake.
func (k Key) Format(f fmt.State, _ rune) { _, _ = f.Write([]byte(k.KID)) }

// LogValue implements slog.LogValuer with the kid and algorithm.
func (k Key) LogValue() slog.Value {
	return slog.GroupValue(slog.String("kid", k.KID), slog.String("alg", string(k.Algorithm)))
}

// Public returns the key's public JWK (kid, alg, use sig).
func (k Key) Public() jose.JSONWebKey { return k.pub }

// NewSigner returns a JWS signer with the key, its kid in the header.
func (k Key) NewSigner(opts *jose.SignerOptions) (jose.Signer, error) {
	if k.priv == nil {
		return nil, errors.New("signing: no private key")
	}
	s, err := jose.NewSigner(jose.SigningKey{Algorithm: k.Algorithm,
		Key: jose.JSONWebKey{Key: k.priv, KeyID: k.KID, Algorithm: string(k.Algorithm)}}, opts)
	if err != nil {
		return nil, fmt.Errorf("signing: signer for %s: %w", k.KID, err)
	}
	return s, nil
}

// generate makes a new key of alg from crypto/rand.
func generate(alg jose.SignatureAlgorithm, now, signFrom time.Time) (*Key, error) {
	var (
		priv crypto.Signer
		err  error
	)
	switch alg {
	case ES256:
		priv, err = ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	case RS256:
		priv, err = rsa.GenerateKey(rand.Reader, rsaBits)
	default:
		return nil, fmt.Errorf("signing: unsupported algorithm %q (ES256 or RS256)", alg)
	}
	if err != nil {
		return nil, fmt.Errorf("signing: generate %s key: %w", alg, err)
	}
	return newKey(priv, alg, now, signFrom)
}

// newKey completes a key: its public JWK and its kid, the RFC 7638
// thumbprint (so that the kid names the key itself, and one key has one kid
// wherever it is published).
func newKey(priv crypto.Signer, alg jose.SignatureAlgorithm, created, signFrom time.Time) (*Key, error) {
	pub := jose.JSONWebKey{Key: priv.Public(), Algorithm: string(alg), Use: "sig"}
	tp, err := pub.Thumbprint(crypto.SHA256)
	if err != nil {
		return nil, fmt.Errorf("signing: thumbprint: %w", err)
	}
	pub.KeyID = base64.RawURLEncoding.EncodeToString(tp)
	if !pub.Valid() || !pub.IsPublic() {
		return nil, errors.New("signing: not a valid public key")
	}
	return &Key{KID: pub.KeyID, Algorithm: alg, SignFrom: signFrom, Created: created, priv: priv, pub: pub}, nil
}

// storedKey is a key as the sealed set holds it.
type storedKey struct {
	Alg      string    `json:"alg"`
	Private  []byte    `json:"pkcs8"` // PKCS #8 DER
	Created  time.Time `json:"created"`
	SignFrom time.Time `json:"sign_from"`
}

type storedSet struct {
	Keys []storedKey `json:"keys"`
}

// aad binds the sealed blob to its purpose: a blob sealed for another row
// (a session key, a platform token) does not open as a key set.
var aad = []byte("mplogin signing keys\x00v1")

// Sealer seals and opens values with the master key (keyring.Keyring).
type Sealer interface {
	Seal(plaintext, aad []byte) ([]byte, error)
	Open(sealed, aad []byte) ([]byte, error)
}

// seal encodes and seals keys. The error never holds key material.
func seal(s Sealer, keys []*Key) ([]byte, error) {
	var set storedSet
	for _, k := range keys {
		der, err := x509.MarshalPKCS8PrivateKey(k.priv)
		if err != nil {
			return nil, errors.New("signing: cannot encode a private key")
		}
		set.Keys = append(set.Keys, storedKey{Alg: string(k.Algorithm), Private: der, Created: k.Created.UTC(), SignFrom: k.SignFrom.UTC()})
	}
	pt, err := json.Marshal(set)
	if err != nil {
		return nil, errors.New("signing: cannot encode the key set")
	}
	sealed, err := s.Seal(pt, aad)
	clear(pt)
	if err != nil {
		return nil, fmt.Errorf("signing: seal the key set: %w", err)
	}
	return sealed, nil
}

// open opens and decodes a sealed set, its keys in order of SignFrom.
func open(s Sealer, sealed []byte) ([]*Key, error) {
	pt, err := s.Open(sealed, aad)
	if err != nil {
		return nil, fmt.Errorf("signing: open the key set: %w", err)
	}
	defer clear(pt)
	var set storedSet
	if err := json.Unmarshal(pt, &set); err != nil {
		return nil, errors.New("signing: the key set does not decode")
	}
	keys := make([]*Key, 0, len(set.Keys))
	for i, sk := range set.Keys {
		p, err := x509.ParsePKCS8PrivateKey(sk.Private)
		if err != nil {
			return nil, fmt.Errorf("signing: key %d of the set does not decode", i)
		}
		priv, ok := p.(crypto.Signer)
		alg := jose.SignatureAlgorithm(sk.Alg)
		switch p.(type) {
		case *ecdsa.PrivateKey:
			ok = ok && alg == ES256
		case *rsa.PrivateKey:
			ok = ok && alg == RS256
		default:
			ok = false
		}
		if !ok {
			return nil, fmt.Errorf("signing: key %d of the set is not a %s key", i, sk.Alg)
		}
		k, err := newKey(priv, alg, sk.Created, sk.SignFrom)
		if err != nil {
			return nil, err
		}
		keys = append(keys, k)
	}
	sortKeys(keys)
	return keys, nil
}
