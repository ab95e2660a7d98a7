// Package memory is an in-memory store.Store: maps behind one mutex.
//
// It is the reference implementation of the semantics documented in package
// store, and the store for unit tests of other packages. To behave like the
// durable backends it keeps its own copies of byte slices, and it stores
// times in UTC truncated to the microsecond, the precision SQLite keeps, so
// that a test that passes against it does not fail against them on rounding.
// Nothing survives Close.
package memory

import (
	"bytes"
	"cmp"
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"
	"time"

	"github.com/mplogin/mplogin/platform"
	"github.com/mplogin/mplogin/store"
)

// Store is an in-memory store.Store. The zero value is not usable; call New.
type Store struct {
	mu         sync.Mutex
	closed     bool
	users      map[string]store.User
	identities map[identityKey]store.Identity
	attempts   map[identityKey]int // ReserveDecryptAttempt's counts
	sessions   map[string]store.Session
	byAccess   map[string]string              // access hash → session ID
	byPrev     map[string]string              // previous access hash → session ID
	prevOf     map[string]string              // session ID → previous access hash
	last       map[string]lastRotation        // session ID → its last rotation's successor
	refresh    map[string]*refreshToken       // refresh hash → token
	codes      map[string]store.ExchangedCode // code hash → code
	tokens     map[string]store.AccessToken
	leases     map[string]lease
	signing    *store.SigningKeySet // nil until the first PutSigningKeys
}

type lease struct {
	holder string
	until  time.Time
}

type identityKey struct {
	family        platform.Family
	appID, openID string
}

type refreshToken struct {
	sessionID string
	spent     bool
}

// lastRotation is what a session's last rotation left for a repeat of the
// token it spent (store.Rotation.Successor).
type lastRotation struct {
	spent     string // the refresh hash it spent
	successor []byte
	until     time.Time
}

var (
	_ store.Store        = (*Store)(nil)
	_ store.SessionStore = (*Store)(nil) // the session half of a Split, in tests
)

// New returns an empty store.
func New() *Store {
	return &Store{
		users:      make(map[string]store.User),
		identities: make(map[identityKey]store.Identity),
		attempts:   make(map[identityKey]int),
		sessions:   make(map[string]store.Session),
		byAccess:   make(map[string]string),
		byPrev:     make(map[string]string),
		prevOf:     make(map[string]string),
		last:       make(map[string]lastRotation),
		refresh:    make(map[string]*refreshToken),
		codes:      make(map[string]store.ExchangedCode),
		tokens:     make(map[string]store.AccessToken),
		leases:     make(map[string]lease),
	}
}

// lock takes the mutex for op, unless ctx is done or the store is closed.
// On success the caller must unlock.
func (s *Store) lock(ctx context.Context, op string) error {
	if err := ctx.Err(); err != nil {
		if errors.Is(err, context.DeadlineExceeded) {
			return fmt.Errorf("memory: %s: %w: %w", op, store.ErrUnavailable, err)
		}
		return fmt.Errorf("memory: %s: %w", op, err)
	}
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return fmt.Errorf("memory: %s: %w: store closed", op, store.ErrUnavailable)
	}
	return nil
}

func notFound(op string) error { return fmt.Errorf("memory: %s: %w", op, store.ErrNotFound) }

// UpsertIdentity implements store.Users.
func (s *Store) UpsertIdentity(ctx context.Context, in store.IdentityUpsert) (store.Identity, bool, error) {
	const op = "upsert identity"
	if in.Family == "" || in.AppID == "" || in.OpenID == "" {
		return store.Identity{}, false, fmt.Errorf("memory: %s: empty family, app ID or open ID", op)
	}
	if err := s.lock(ctx, op); err != nil {
		return store.Identity{}, false, err
	}
	defer s.mu.Unlock()
	id, created, err := s.upsertLocked(in)
	if err != nil {
		return store.Identity{}, false, fmt.Errorf("memory: %s: %w", op, err)
	}
	return id, created, nil
}

// upsertLocked is UpsertIdentity with the mutex held. On error it has
// changed nothing.
func (s *Store) upsertLocked(in store.IdentityUpsert) (store.Identity, bool, error) {
	now := norm(in.Now)
	key := identityKey{in.Family, in.AppID, in.OpenID}
	if id, ok := s.identities[key]; ok {
		if len(in.SealedSessionKey) > 0 && !bytes.Equal(in.SealedSessionKey, id.SessionKey) {
			// With no current key there is nothing to keep for the grace period.
			if len(id.SessionKey) > 0 {
				id.PrevSessionKey = id.SessionKey
				id.PrevKeyExpiresAt = norm(in.Now.Add(in.KeyGrace))
			}
			id.SessionKey = clone(in.SealedSessionKey)
			delete(s.attempts, key) // a new key starts a new count
		}
		if id.UnionID == "" {
			id.UnionID = in.UnionID
		}
		id.UpdatedAt = now
		s.identities[key] = id
		return copyIdentity(id), false, nil
	}

	userID, created := s.unionUser(in.Family, in.UnionID), false
	if userID == "" {
		if in.NewUserID == "" {
			return store.Identity{}, false, errors.New("empty new user ID")
		}
		if _, ok := s.users[in.NewUserID]; ok {
			return store.Identity{}, false, fmt.Errorf("user %q already exists", in.NewUserID)
		}
		userID, created = in.NewUserID, true
		s.users[userID] = store.User{ID: userID, CreatedAt: now}
	}
	id := store.Identity{
		Family:     in.Family,
		AppID:      in.AppID,
		OpenID:     in.OpenID,
		UnionID:    in.UnionID,
		UserID:     userID,
		SessionKey: clone(in.SealedSessionKey),
		CreatedAt:  now,
		UpdatedAt:  now,
	}
	s.identities[key] = id
	return copyIdentity(id), created, nil
}

// unionUser returns the user of the oldest identity of family that carries
// unionID (ties broken by app ID, then open ID, as the SQL backends do), or
// "" when there is none. The caller holds the mutex.
func (s *Store) unionUser(family platform.Family, unionID string) string {
	if unionID == "" {
		return ""
	}
	var first *store.Identity
	for _, id := range s.identities {
		if id.Family != family || id.UnionID != unionID {
			continue
		}
		if first == nil || cmp.Or(
			id.CreatedAt.Compare(first.CreatedAt),
			cmp.Compare(id.AppID, first.AppID),
			cmp.Compare(id.OpenID, first.OpenID),
		) < 0 {
			first = &id
		}
	}
	if first == nil {
		return ""
	}
	return first.UserID
}

// GetIdentity implements store.Users.
func (s *Store) GetIdentity(ctx context.Context, family platform.Family, appID, openID string) (store.Identity, error) {
	const op = "get identity"
	if err := s.lock(ctx, op); err != nil {
		return store.Identity{}, err
	}
	defer s.mu.Unlock()
	id, ok := s.identities[identityKey{family, appID, openID}]
	if !ok {
		return store.Identity{}, notFound(op)
	}
	return copyIdentity(id), nil
}

// ReserveDecryptAttempt implements store.Users.
func (s *Store) ReserveDecryptAttempt(ctx context.Context, family platform.Family, appID, openID string, max int) (int, bool, error) {
	const op = "reserve decrypt attempt"
	if err := s.lock(ctx, op); err != nil {
		return 0, false, err
	}
	defer s.mu.Unlock()
	key := identityKey{family, appID, openID}
	if _, ok := s.identities[key]; !ok {
		return 0, false, notFound(op)
	}
	n := s.attempts[key]
	if n >= max {
		return n, false, nil
	}
	s.attempts[key] = n + 1
	return n + 1, true, nil
}

// ReleaseDecryptAttempt implements store.Users.
func (s *Store) ReleaseDecryptAttempt(ctx context.Context, family platform.Family, appID, openID string) error {
	const op = "release decrypt attempt"
	if err := s.lock(ctx, op); err != nil {
		return err
	}
	defer s.mu.Unlock()
	key := identityKey{family, appID, openID}
	if _, ok := s.identities[key]; !ok {
		return notFound(op)
	}
	if s.attempts[key] > 0 {
		s.attempts[key]--
	}
	return nil
}

// GetUser implements store.Users.
func (s *Store) GetUser(ctx context.Context, id string) (store.User, error) {
	const op = "get user"
	if err := s.lock(ctx, op); err != nil {
		return store.User{}, err
	}
	defer s.mu.Unlock()
	u, ok := s.users[id]
	if !ok {
		return store.User{}, notFound(op)
	}
	u.Phone.Sealed, u.Phone.Lookup = clone(u.Phone.Sealed), clone(u.Phone.Lookup)
	return u, nil
}

// SetPhone implements store.Users.
func (s *Store) SetPhone(ctx context.Context, userID string, p store.Phone) error {
	const op = "set phone"
	if len(p.Sealed) == 0 {
		return fmt.Errorf("memory: %s: empty sealed number", op)
	}
	if err := s.lock(ctx, op); err != nil {
		return err
	}
	defer s.mu.Unlock()
	u, ok := s.users[userID]
	if !ok {
		return notFound(op)
	}
	p.Sealed, p.Lookup = clone(p.Sealed), clone(p.Lookup)
	p.UpdatedAt = norm(p.UpdatedAt)
	u.Phone = p
	s.users[userID] = u
	return nil
}

// CreateSession implements store.Sessions.
func (s *Store) CreateSession(ctx context.Context, sess store.Session) error {
	const op = "create session"
	if err := s.lock(ctx, op); err != nil {
		return err
	}
	defer s.mu.Unlock()
	if err := s.checkNewSession(sess); err != nil {
		return fmt.Errorf("memory: %s: %w", op, err)
	}
	s.insertSession(sess)
	return nil
}

// checkNewSession says why sess cannot be created, with the mutex held.
func (s *Store) checkNewSession(sess store.Session) error {
	if sess.ID == "" || len(sess.AccessHash) == 0 || len(sess.RefreshHash) == 0 {
		return errors.New("empty ID, access hash or refresh hash")
	}
	// Unique like the SQL backends' keys: a collision is a caller bug.
	if _, ok := s.sessions[sess.ID]; ok {
		return fmt.Errorf("session %q already exists", sess.ID)
	}
	if _, ok := s.byAccess[string(sess.AccessHash)]; ok {
		return errors.New("access hash already in use")
	}
	if _, ok := s.refresh[string(sess.RefreshHash)]; ok {
		return errors.New("refresh hash already in use")
	}
	return nil
}

func (s *Store) insertSession(sess store.Session) {
	sess = normSession(sess)
	sess.Successor = nil
	s.sessions[sess.ID] = sess
	s.byAccess[string(sess.AccessHash)] = sess.ID
	s.refresh[string(sess.RefreshHash)] = &refreshToken{sessionID: sess.ID}
}

// WriteLogin implements store.Store.
func (s *Store) WriteLogin(ctx context.Context, in store.LoginWrite) (store.LoginResult, error) {
	const op = "write login"
	if err := in.Check(); err != nil {
		return store.LoginResult{}, fmt.Errorf("memory: %s: %w", op, err)
	}
	if err := s.lock(ctx, op); err != nil {
		return store.LoginResult{}, err
	}
	defer s.mu.Unlock()
	// Everything that can fail is checked before anything changes.
	if err := s.checkNewSession(in.Session); err != nil {
		return store.LoginResult{}, fmt.Errorf("memory: %s: %w", op, err)
	}
	id, created, err := s.upsertLocked(in.Identity)
	if err != nil {
		return store.LoginResult{}, fmt.Errorf("memory: %s: %w", op, err)
	}
	s.putCodeLocked(in.Code)
	sess := in.Session
	sess.UserID, sess.UnionID = id.UserID, id.UnionID
	s.insertSession(sess)
	res := store.LoginResult{Identity: id, Created: created, Session: sess,
		Blocked: s.users[id.UserID].Blocked}
	if in.Keep > 0 {
		res.Ended = s.revokeUserLocked(in.CapRevocation(id))
	}
	return res, nil
}

// SessionByAccess implements store.Sessions.
func (s *Store) SessionByAccess(ctx context.Context, accessHash []byte) (store.Session, error) {
	const op = "session by access"
	if err := s.lock(ctx, op); err != nil {
		return store.Session{}, err
	}
	defer s.mu.Unlock()
	id, ok := s.byAccess[string(accessHash)]
	if !ok {
		return store.Session{}, notFound(op)
	}
	return copySession(s.sessions[id]), nil
}

// SessionForLogout implements store.Sessions.
func (s *Store) SessionForLogout(ctx context.Context, accessHash []byte) (store.Session, error) {
	const op = "session for logout"
	if err := s.lock(ctx, op); err != nil {
		return store.Session{}, err
	}
	defer s.mu.Unlock()
	id, ok := s.byAccess[string(accessHash)]
	if !ok {
		id, ok = s.byPrev[string(accessHash)]
	}
	if !ok {
		return store.Session{}, notFound(op)
	}
	return copySession(s.sessions[id]), nil
}

// SessionByID implements store.Sessions.
func (s *Store) SessionByID(ctx context.Context, id string) (store.Session, error) {
	const op = "session by id"
	if err := s.lock(ctx, op); err != nil {
		return store.Session{}, err
	}
	defer s.mu.Unlock()
	sess, ok := s.sessions[id]
	if !ok {
		return store.Session{}, notFound(op)
	}
	return copySession(sess), nil
}

// SessionByRefresh implements store.Sessions.
func (s *Store) SessionByRefresh(ctx context.Context, refreshHash []byte) (store.Session, error) {
	const op = "session by refresh"
	if err := s.lock(ctx, op); err != nil {
		return store.Session{}, err
	}
	defer s.mu.Unlock()
	tok, ok := s.refresh[string(refreshHash)]
	if !ok || tok.spent {
		return store.Session{}, notFound(op)
	}
	return copySession(s.sessions[tok.sessionID]), nil
}

// RotateRefresh implements store.Sessions.
func (s *Store) RotateRefresh(ctx context.Context, r store.Rotation) (store.Session, error) {
	const op = "rotate refresh"
	if len(r.NewAccessHash) == 0 || len(r.NewRefreshHash) == 0 {
		return store.Session{}, fmt.Errorf("memory: %s: empty new access or refresh hash", op)
	}
	if err := s.lock(ctx, op); err != nil {
		return store.Session{}, err
	}
	defer s.mu.Unlock()

	now := norm(r.Now)
	tok, ok := s.refresh[string(r.OldRefreshHash)]
	if !ok {
		return store.Session{}, notFound(op)
	}
	sess := s.sessions[tok.sessionID]
	if tok.spent {
		if l := s.last[sess.ID]; l.spent == string(r.OldRefreshHash) && len(l.successor) > 0 &&
			now.Before(l.until) && rotatable(sess, now) {
			out := copySession(sess)
			out.Successor = clone(l.successor)
			return out, fmt.Errorf("memory: %s: %w", op, store.ErrRecentlySpent)
		}
		// Keep the first revocation time: a later replay changes nothing.
		if sess.RevokedAt.IsZero() {
			sess.RevokedAt = now
			s.sessions[sess.ID] = sess
		}
		return copySession(sess), fmt.Errorf("memory: %s: %w", op, store.ErrReused)
	}
	if !rotatable(sess, now) {
		return store.Session{}, notFound(op)
	}
	if _, ok := s.byAccess[string(r.NewAccessHash)]; ok {
		return store.Session{}, fmt.Errorf("memory: %s: access hash already in use", op)
	}
	if _, ok := s.refresh[string(r.NewRefreshHash)]; ok {
		return store.Session{}, fmt.Errorf("memory: %s: refresh hash already in use", op)
	}

	tok.spent = true
	s.last[sess.ID] = lastRotation{spent: string(r.OldRefreshHash), successor: clone(r.Successor), until: norm(r.SuccessorUntil)}
	delete(s.byAccess, string(sess.AccessHash))
	delete(s.byPrev, s.prevOf[sess.ID])
	s.byPrev[string(sess.AccessHash)] = sess.ID
	s.prevOf[sess.ID] = string(sess.AccessHash)
	sess.AccessHash = clone(r.NewAccessHash)
	sess.AccessExpiresAt = norm(r.AccessExpiresAt)
	sess.RefreshHash = clone(r.NewRefreshHash)
	sess.RefreshExpiresAt = norm(r.RefreshExpiresAt)
	sess.LastUsedAt = now
	s.sessions[sess.ID] = sess
	s.byAccess[string(sess.AccessHash)] = sess.ID
	s.refresh[string(sess.RefreshHash)] = &refreshToken{sessionID: sess.ID}
	return copySession(sess), nil
}

// rotatable reports whether the session's current refresh token may be
// spent at now: not revoked, refresh token not expired, session not ended.
func rotatable(sess store.Session, now time.Time) bool {
	return sess.RevokedAt.IsZero() &&
		now.Before(sess.RefreshExpiresAt) &&
		(sess.ExpiresAt.IsZero() || now.Before(sess.ExpiresAt))
}

// dead reports whether DeleteExpired removes the session at now.
func dead(sess store.Session, now time.Time) bool {
	return (!sess.RevokedAt.IsZero() && !sess.RevokedAt.After(now)) ||
		!now.Before(sess.RefreshExpiresAt) ||
		(!sess.ExpiresAt.IsZero() && !now.Before(sess.ExpiresAt))
}

// RevokeSession implements store.Sessions.
func (s *Store) RevokeSession(ctx context.Context, id string, now time.Time) error {
	if err := s.lock(ctx, "revoke session"); err != nil {
		return err
	}
	defer s.mu.Unlock()
	if sess, ok := s.sessions[id]; ok && sess.RevokedAt.IsZero() {
		sess.RevokedAt = norm(now)
		s.sessions[id] = sess
	}
	return nil
}

// RevokeUserSessions implements store.Sessions. It looks at every session:
// the memory store is for tests and single small instances.
func (s *Store) RevokeUserSessions(ctx context.Context, r store.UserRevocation) (int, error) {
	if err := s.lock(ctx, "revoke user sessions"); err != nil {
		return 0, err
	}
	defer s.mu.Unlock()
	return s.revokeUserLocked(r), nil
}

// revokeUserLocked is RevokeUserSessions under s.mu.
func (s *Store) revokeUserLocked(r store.UserRevocation) int {
	now := norm(r.Now)
	var match []store.Session
	for _, sess := range s.sessions {
		if sess.UserID != r.UserID || !sess.RevokedAt.IsZero() {
			continue
		}
		if r.OpenID != "" && (sess.Family != r.Family || sess.AppID != r.AppID || sess.OpenID != r.OpenID) {
			continue
		}
		if r.Origin != "" && sess.ID != r.Origin && sess.Origin != r.Origin {
			continue
		}
		if r.Keep > 0 && !rotatable(sess, now) {
			continue
		}
		match = append(match, sess)
	}
	if r.Keep > 0 {
		// Newest first; the first Keep are spared.
		slices.SortFunc(match, func(a, b store.Session) int {
			if c := b.CreatedAt.Compare(a.CreatedAt); c != 0 {
				return c
			}
			return cmp.Compare(b.ID, a.ID)
		})
		match = match[min(r.Keep, len(match)):]
	}
	for _, sess := range match {
		sess.RevokedAt = now
		s.sessions[sess.ID] = sess
	}
	return len(match)
}

// AddDecryptFailure implements store.Sessions.
func (s *Store) AddDecryptFailure(ctx context.Context, sessionID string) (int, error) {
	const op = "add decrypt failure"
	if err := s.lock(ctx, op); err != nil {
		return 0, err
	}
	defer s.mu.Unlock()
	sess, ok := s.sessions[sessionID]
	if !ok {
		return 0, notFound(op)
	}
	sess.DecryptFailures++
	s.sessions[sessionID] = sess
	return sess.DecryptFailures, nil
}

// CreateLoginSession implements store.SessionStore.
func (s *Store) CreateLoginSession(ctx context.Context, c store.ExchangedCode, sess store.Session) error {
	const op = "create login session"
	if len(c.Hash) == 0 {
		return fmt.Errorf("memory: %s: empty code hash", op)
	}
	if err := s.lock(ctx, op); err != nil {
		return err
	}
	defer s.mu.Unlock()
	if err := s.checkNewSession(sess); err != nil {
		return fmt.Errorf("memory: %s: %w", op, err)
	}
	s.insertSession(sess)
	s.putCodeLocked(c)
	return nil
}

// PutCode implements store.Sessions.
func (s *Store) PutCode(ctx context.Context, c store.ExchangedCode) error {
	const op = "put code"
	if len(c.Hash) == 0 {
		return fmt.Errorf("memory: %s: empty hash", op)
	}
	if err := s.lock(ctx, op); err != nil {
		return err
	}
	defer s.mu.Unlock()
	s.putCodeLocked(c)
	return nil
}

func (s *Store) putCodeLocked(c store.ExchangedCode) {
	c.Hash = clone(c.Hash)
	c.ExpiresAt = norm(c.ExpiresAt)
	c.ReplayUntil = norm(c.ReplayUntil)
	s.codes[string(c.Hash)] = c
}

// GetCode implements store.Sessions.
func (s *Store) GetCode(ctx context.Context, hash []byte, now time.Time) (store.ExchangedCode, error) {
	const op = "get code"
	if err := s.lock(ctx, op); err != nil {
		return store.ExchangedCode{}, err
	}
	defer s.mu.Unlock()
	c, ok := s.codes[string(hash)]
	if !ok || !norm(now).Before(c.ExpiresAt) {
		return store.ExchangedCode{}, notFound(op)
	}
	c.Hash = clone(c.Hash)
	return c, nil
}

// ClaimReplay implements store.Sessions.
func (s *Store) ClaimReplay(ctx context.Context, hash []byte, now time.Time, max int) (store.ExchangedCode, error) {
	const op = "claim replay"
	if err := s.lock(ctx, op); err != nil {
		return store.ExchangedCode{}, err
	}
	defer s.mu.Unlock()
	now = norm(now)
	c, ok := s.codes[string(hash)]
	if !ok || !now.Before(c.ExpiresAt) {
		return store.ExchangedCode{}, notFound(op)
	}
	if !now.Before(c.ReplayUntil) || c.Replays >= max {
		c.Hash = clone(c.Hash)
		return c, fmt.Errorf("memory: %s: %w", op, store.ErrReplayRefused)
	}
	c.Replays++
	s.codes[string(hash)] = c
	c.Hash = clone(c.Hash)
	return c, nil
}

// DeleteExpired implements store.Sessions.
func (s *Store) DeleteExpired(ctx context.Context, now time.Time) (int, error) {
	if err := s.lock(ctx, "delete expired"); err != nil {
		return 0, err
	}
	defer s.mu.Unlock()
	now = norm(now)
	n := 0
	for h, c := range s.codes {
		if !now.Before(c.ExpiresAt) {
			delete(s.codes, h)
			n++
		}
	}
	gone := make(map[string]bool)
	for id, sess := range s.sessions {
		if dead(sess, now) {
			delete(s.sessions, id)
			delete(s.byAccess, string(sess.AccessHash))
			delete(s.byPrev, s.prevOf[id])
			delete(s.prevOf, id)
			delete(s.last, id)
			gone[id] = true
			n++
		}
	}
	if len(gone) > 0 {
		for h, tok := range s.refresh {
			if gone[tok.sessionID] {
				delete(s.refresh, h)
			}
		}
	}
	return n, nil
}

// Ping implements store.Store.
func (s *Store) Ping(ctx context.Context) error {
	if err := s.lock(ctx, "ping"); err != nil {
		return err
	}
	s.mu.Unlock()
	return nil
}

// Close implements store.Store. It drops all data; closing twice is not an
// error.
func (s *Store) Close() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.closed = true
	clear(s.users)
	clear(s.identities)
	clear(s.attempts)
	clear(s.sessions)
	clear(s.byAccess)
	clear(s.byPrev)
	clear(s.prevOf)
	clear(s.refresh)
	clear(s.codes)
	return nil
}

// norm returns t as the SQL backends give it back: UTC, whole microseconds,
// no monotonic reading. The zero time stays zero.
func norm(t time.Time) time.Time {
	if t.IsZero() {
		return time.Time{}
	}
	return t.Truncate(time.Microsecond).UTC()
}

// clone copies b; empty means "none" and becomes nil.
func clone(b []byte) []byte {
	if len(b) == 0 {
		return nil
	}
	return bytes.Clone(b)
}

func normSession(s store.Session) store.Session {
	s = copySession(s)
	s.AccessExpiresAt = norm(s.AccessExpiresAt)
	s.RefreshExpiresAt = norm(s.RefreshExpiresAt)
	s.CreatedAt = norm(s.CreatedAt)
	s.ExpiresAt = norm(s.ExpiresAt)
	s.LastUsedAt = norm(s.LastUsedAt)
	s.RevokedAt = norm(s.RevokedAt)
	return s
}

func copySession(s store.Session) store.Session {
	s.AccessHash = clone(s.AccessHash)
	s.RefreshHash = clone(s.RefreshHash)
	return s
}

func copyIdentity(id store.Identity) store.Identity {
	id.SessionKey = clone(id.SessionKey)
	id.PrevSessionKey = clone(id.PrevSessionKey)
	return id
}
