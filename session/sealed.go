package session

import (
	"context"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"time"

	"github.com/mplogin/mplogin/keyring"
	"github.com/mplogin/mplogin/platform"
	"github.com/mplogin/mplogin/store"
	"github.com/mplogin/mplogin/token"
)

// Sealed access tokens: on a store that keeps a change log (the SQLite
// store), an access token carries, sealed with the master key, what a
// session check answers. A check (Check, IntrospectAccess) of such a token
// then reads nothing: the store vouches from memory that the session has
// not changed since the token was minted, and the answer comes from the
// token. Anything the store cannot vouch for is read, as before.

// claims is what a sealed access token carries.
type claims struct {
	SessionID, UserID, App, OpenID, UnionID string
	Family                                  platform.Family
	AccessExpiresAt, ExpiresAt              time.Time // ExpiresAt zero: none
}

func claimsOf(sess store.Session) claims {
	return claims{SessionID: sess.ID, UserID: sess.UserID, App: sess.App, OpenID: sess.OpenID, UnionID: sess.UnionID,
		Family: sess.Family, AccessExpiresAt: sess.AccessExpiresAt, ExpiresAt: sess.ExpiresAt}
}

// same reports whether sess still answers as c says.
func (c claims) same(sess store.Session) bool {
	return c.SessionID == sess.ID && c.UserID == sess.UserID && c.App == sess.App && c.OpenID == sess.OpenID &&
		c.UnionID == sess.UnionID && c.Family == sess.Family && c.ExpiresAt.Equal(sess.ExpiresAt)
}

const claimsVersion = 1

// Flags of the claims' encoding: the ids the service makes (32 hex digits)
// travel as their 16 bytes.
const (
	packedSession = 1 << iota
	packedUser
)

func (c claims) marshal() []byte {
	b := make([]byte, 2, 128)
	b[0] = claimsVersion
	b, b[1] = putID(b, c.SessionID, packedSession, b[1])
	b, b[1] = putID(b, c.UserID, packedUser, b[1])
	for _, s := range []string{c.App, string(c.Family), c.OpenID, c.UnionID} {
		b = binary.AppendUvarint(b, uint64(len(s)))
		b = append(b, s...)
	}
	b = binary.AppendUvarint(b, micros(c.AccessExpiresAt))
	return binary.AppendUvarint(b, micros(c.ExpiresAt))
}

func putID(b []byte, id string, flag, flags byte) ([]byte, byte) {
	if raw, ok := token.IDBytes(id); ok {
		return append(b, raw[:]...), flags | flag
	}
	b = binary.AppendUvarint(b, uint64(len(id)))
	return append(b, id...), flags
}

func micros(t time.Time) uint64 {
	if t.IsZero() || t.UnixMicro() <= 0 {
		return 0
	}
	return uint64(t.UnixMicro())
}

// parseClaims reads what marshal wrote; false for anything else.
func parseClaims(b []byte) (claims, bool) {
	if len(b) < 2 || b[0] != claimsVersion || b[1]&^(packedSession|packedUser) != 0 {
		return claims{}, false
	}
	flags := b[1]
	r := reader{b: b[2:]}
	var c claims
	c.SessionID = r.id(flags&packedSession != 0)
	c.UserID = r.id(flags&packedUser != 0)
	c.App = r.str()
	c.Family = platform.Family(r.str())
	c.OpenID = r.str()
	c.UnionID = r.str()
	c.AccessExpiresAt = r.time()
	c.ExpiresAt = r.time()
	if r.bad || len(r.b) != 0 || c.SessionID == "" || c.AccessExpiresAt.IsZero() {
		return claims{}, false
	}
	return c, true
}

type reader struct {
	b   []byte
	bad bool
}

func (r *reader) uvarint() uint64 {
	v, n := binary.Uvarint(r.b)
	if n <= 0 {
		r.bad = true
		return 0
	}
	r.b = r.b[n:]
	return v
}

func (r *reader) bytes(n uint64) []byte {
	if r.bad || n > uint64(len(r.b)) {
		r.bad = true
		return nil
	}
	out := r.b[:n]
	r.b = r.b[n:]
	return out
}

func (r *reader) str() string { return string(r.bytes(r.uvarint())) }

func (r *reader) id(packed bool) string {
	if packed {
		return hex.EncodeToString(r.bytes(16))
	}
	return r.str()
}

func (r *reader) time() time.Time {
	v := r.uvarint()
	if r.bad || v == 0 || v > 1<<62 {
		r.bad = r.bad || v > 1<<62
		return time.Time{}
	}
	return time.UnixMicro(int64(v)).UTC()
}

// sealAccess gives sess a sealed access token, minted at now, when the
// store keeps a change log; otherwise, and when its claims are too long
// for one (ids of hundreds of bytes), it leaves sess and its opaque token
// as they are and returns "".
func (s *Service) sealAccess(sess *store.Session, now time.Time) (string, error) {
	if s.changes == nil {
		return "", nil
	}
	raw, hash, err := SealedAccess(s.keys, *sess, now)
	if errors.Is(err, token.ErrTooLong) {
		return "", nil
	}
	if err != nil {
		return "", err
	}
	sess.AccessHash = hash
	return raw, nil
}

// unsealed is the session a sealed access token describes, when the store
// vouches that it still does; ok false sends the caller to the store.
// A sealed token in its own words expired, or of an app no longer
// configured, is invalid without a read.
func (s *Service) unsealed(raw string) (sess store.Session, ok bool, err error) {
	if s.changes == nil {
		return store.Session{}, false, nil
	}
	payload, minted, ok := token.Unseal(s.keys, raw)
	if !ok {
		return store.Session{}, false, nil
	}
	c, ok := parseClaims(payload)
	if !ok {
		return store.Session{}, false, nil
	}
	now := s.now()
	if _, known := s.apps[c.App]; !known || !now.Before(c.AccessExpiresAt) || !c.ExpiresAt.IsZero() && !now.Before(c.ExpiresAt) {
		return store.Session{}, false, errInvalidToken
	}
	hash, ok := token.Parse(raw, token.Access)
	if !ok || !s.changes.Unchanged(c.SessionID, hash, minted, c.AccessExpiresAt) {
		return store.Session{}, false, nil
	}
	return store.Session{ID: c.SessionID, UserID: c.UserID, App: c.App, Family: c.Family, OpenID: c.OpenID, UnionID: c.UnionID,
		AccessHash: hash, AccessExpiresAt: c.AccessExpiresAt, ExpiresAt: c.ExpiresAt}, true, nil
}

// checked is active for the calls that answer no more than a session check
// does (Check, IntrospectAccess): a sealed token the store vouches for
// needs no read.
func (s *Service) checked(ctx context.Context, accessToken string) (store.Session, error) {
	sess, ok, err := s.unsealed(accessToken)
	if err != nil || ok {
		return sess, err
	}
	return s.active(ctx, accessToken)
}

// SealedAccess mints, at now, the sealed access token that a Service with
// keys and a change log gives sess, with its hash: for a tool that writes
// sessions straight into a store and presents their tokens later.
func SealedAccess(keys *keyring.Keyring, sess store.Session, now time.Time) (string, []byte, error) {
	return token.NewSealed(keys, now, claimsOf(sess).marshal())
}
