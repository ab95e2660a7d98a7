// Package store defines where mplogin keeps users, identities, sessions,
// exchanged login codes and cached platform access tokens, and what every
// backend must guarantee.
//
// The store never sees a secret in clear: tokens arrive as hashes (package
// token: the token's minting time, then its SHA-256; opaque bytes here),
// session keys and platform access tokens arrive sealed (encrypted by the
// caller). Times are passed in by the caller; a backend never reads the clock.
//
// Atomicity: every method is atomic on its own. The methods that decide
// something under contention (UpsertIdentity, RotateRefresh) do so in one
// transaction (or one script), so that concurrent callers cannot both win;
// AddDecryptFailure increments atomically, so that no increment is lost;
// ReserveDecryptAttempt checks and increments in one step;
// DeleteAccessToken compares and deletes in one step; WriteLogin writes a
// login's identity, code and session all or none (on Split, see there).
// The conformance suite in store/storetest checks all of this against every
// backend.
package store

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/mplogin/mplogin/platform"
)

// Errors a backend returns. Backends wrap them with %w; callers test them
// with errors.Is.
var (
	// ErrNotFound: no such row, or it has expired.
	ErrNotFound = errors.New("store: not found")
	// ErrReused: a spent refresh token was presented again. The backend has
	// already revoked the whole session when it returns this, and returns
	// the session it revoked with it.
	ErrReused = errors.New("store: refresh token reused")
	// ErrRecentlySpent: the refresh token presented is the one the
	// session's last rotation spent, again before that rotation's
	// SuccessorUntil (see RotateRefresh). Nothing changed; the session is
	// returned with it, carrying the Successor that rotation stored.
	ErrRecentlySpent = errors.New("store: refresh token spent by the last rotation")
	// ErrReplayRefused: a known login code may not be repeated now (see
	// ClaimReplay). The code is returned with it.
	ErrReplayRefused = errors.New("store: login code repeat refused")
	// ErrUnavailable: the backend did not answer (connection refused, timeout,
	// database locked for too long, closed). Wrap the driver's error with it.
	ErrUnavailable = errors.New("store: unavailable")
	// ErrSelfMerge: MergeUsers was asked to merge a user into itself.
	ErrSelfMerge = errors.New("store: a user cannot be merged into itself")
)

// Users holds users and their platform identities.
type Users interface {
	// UpsertIdentity finds the identity (Family, AppID, OpenID) or creates it,
	// in one transaction:
	//   - It exists: if in.SealedSessionKey is non-empty and differs from the
	//     current one, the current key moves to PrevSessionKey with
	//     PrevKeyExpiresAt = in.Now + in.KeyGrace, and the new key becomes
	//     current, and the count of ReserveDecryptAttempt goes back to 0.
	//     A non-empty in.UnionID is recorded if the identity had none.
	//     UpdatedAt = in.Now. created is false.
	//   - It is new and in.UnionID is non-empty and another identity of the
	//     same Family already carries that UnionID: the new identity joins
	//     that identity's user. created is false.
	//   - Otherwise a user with ID in.NewUserID is created with it. created
	//     is true.
	// Concurrent calls for the same new identity create exactly one user.
	UpsertIdentity(ctx context.Context, in IdentityUpsert) (id Identity, created bool, err error)
	// GetIdentity returns ErrNotFound when there is none.
	GetIdentity(ctx context.Context, family platform.Family, appID, openID string) (Identity, error)
	// GetUser returns ErrNotFound when there is none.
	GetUser(ctx context.Context, id string) (User, error)
	// SetPhone records the user's phone number, replacing the one before;
	// ErrNotFound when there is no such user.
	SetPhone(ctx context.Context, userID string, p Phone) error
	// FindUsersByPhone returns the users whose phone number's Lookup is
	// one of lookups (a number's lookups under every master key), oldest
	// first (by CreatedAt, then ID), at most MaxPhoneHolders of them; none
	// is an empty list, no error.
	FindUsersByPhone(ctx context.Context, lookups [][]byte) ([]User, error)
	// ReserveDecryptAttempt reserves one try of the identity's session key
	// at decrypting user data: if fewer than max tries were reserved since
	// the identity got its current session key, it adds one and returns the
	// new count and true; otherwise it changes nothing and returns the count
	// and false. ErrNotFound when there is no such identity. The check and
	// the increment are one atomic step, so that of concurrent callers at
	// most max (less those before) get true: the count is what caps tries
	// of a session key, and a burst must
	// not overshoot it. UpsertIdentity sets the count to 0 when it replaces
	// the session key with a different one; nothing else lowers it.
	ReserveDecryptAttempt(ctx context.Context, family platform.Family, appID, openID string, max int) (n int, ok bool, err error)
	// ReleaseDecryptAttempt gives back one reservation (the caller's, whose
	// try succeeded): the count goes down by one, never below 0. Unknown
	// identity: ErrNotFound.
	ReleaseDecryptAttempt(ctx context.Context, family platform.Family, appID, openID string) error

	// ListIdentities returns the user's identities, oldest first (by
	// CreatedAt, then Family, AppID and OpenID): a stable order for an
	// operator's listing. An unknown user has none: an empty list, no error.
	ListIdentities(ctx context.Context, userID string) ([]Identity, error)
	// FindUserByUnionID returns the user that UpsertIdentity would join a
	// new identity of family carrying unionID to: the user of the oldest
	// identity carrying it. ErrNotFound when none carries it.
	FindUserByUnionID(ctx context.Context, family platform.Family, unionID string) (User, error)
	// SetBlocked marks the user blocked (Blocked, BlockedReason = reason,
	// BlockedAt = now) or, with blocked false, not blocked (the reason and
	// time cleared). ErrNotFound when there is no such user. It ends no
	// session: the caller does, with RevokeUserSessions.
	SetBlocked(ctx context.Context, userID string, blocked bool, reason string, now time.Time) error
}

// UserAdmin is what an operator does to users as a whole, on a complete
// Store (it reaches sessions and codes as well as users).
type UserAdmin interface {
	// EraseUser removes the user and everything of theirs: every identity
	// (with its sealed session keys), the phone number, every session
	// whose UserID is the user with its refresh tokens (spent ones and
	// successors included), and every exchanged login code of the user's
	// identities. (Sessions of the user's identities carry the user's ID:
	// logins set it, MergeUsers moves it.) A later login of one of those identities creates
	// a new user. ErrNotFound when there is no such user (nothing changes).
	// One transaction on the SQL stores; on Split, see there.
	EraseUser(ctx context.Context, userID string, now time.Time) error
	// MergeUsers moves from's identities and sessions (their UserID
	// changes; their tokens keep working) to into, and from's phone
	// number when into has none, then deletes from. ErrNotFound when
	// either user is missing; into == from is refused with ErrSelfMerge.
	// One transaction on the SQL stores, so that a concurrent login of
	// either user lands wholly before or wholly after it; on Split, see
	// there.
	MergeUsers(ctx context.Context, into, from string, now time.Time) error
}

// ChangeLog is what a store offers when it knows, without a read, whether
// a session changed since an access token was minted for it: the session
// service then seals what a session check answers into the access token
// and answers checks from the token. Only a store that sees every write
// to its sessions can offer it (the SQLite store, which is its file's only
// writer).
type ChangeLog interface {
	// Unchanged reports whether session id still answers to the access
	// token hashed accessHash, which was minted for it at minted and is in
	// date until expires, exactly as when it was minted: nothing has ended
	// the session or changed its user, identity, app or ends since, nor
	// given it another access token. False whenever the store cannot tell;
	// the caller then reads the session.
	Unchanged(id string, accessHash []byte, minted, expires time.Time) bool
	// Changed records a change to session id, so that Unchanged vouches
	// for none of its current tokens.
	Changed(ctx context.Context, id string) error
}

// Sessions holds sessions, their tokens and exchanged login codes.
type Sessions interface {
	// CreateSession stores a new session and its first refresh token.
	CreateSession(ctx context.Context, s Session) error
	// SessionByAccess returns the session whose current access token hashes
	// to accessHash, whatever its state (the caller checks expiry and
	// revocation against its clock); ErrNotFound when no session has it.
	SessionByAccess(ctx context.Context, accessHash []byte) (Session, error)
	// SessionForLogout is SessionByAccess for a logout: it also finds the
	// session by the access token its last rotation replaced (the previous
	// access hash, kept until the next rotation), so that a logout that
	// lost a race with a refresh still ends the session. The caller tells
	// which one matched by comparing the result's AccessHash.
	SessionForLogout(ctx context.Context, accessHash []byte) (Session, error)
	// SessionByID returns ErrNotFound when there is none.
	SessionByID(ctx context.Context, id string) (Session, error)
	// SessionByRefresh returns the session whose current refresh token
	// hashes to refreshHash, whatever its state (the caller checks expiry
	// and revocation against its clock), and changes nothing: it is a
	// look, not a use (token introspection). ErrNotFound when no session
	// has it as its current one: unknown, and spent, tokens alike.
	SessionByRefresh(ctx context.Context, refreshHash []byte) (Session, error)
	// RotateRefresh spends the refresh token r.OldRefreshHash and gives its
	// session new access and refresh tokens, in one transaction:
	//   - unknown token: ErrNotFound;
	//   - token already spent, and it is the token the session's last
	//     rotation spent, that rotation stored a Successor, r.Now is before
	//     that rotation's SuccessorUntil, and the session is rotatable (the
	//     next point's conditions): nothing changes, and the session is
	//     returned with ErrRecentlySpent and its Successor set;
	//   - token already spent otherwise: the session is revoked (RevokedAt =
	//     r.Now, or the earlier revocation time kept) and returned, with
	//     ErrReused;
	//   - session revoked, refresh token expired (RefreshExpiresAt <= r.Now)
	//     or session past ExpiresAt (when set): ErrNotFound, nothing changes;
	//   - otherwise the old token is marked spent (it stays known, so that a
	//     replay is detected, until its session is deleted), the session's
	//     AccessHash, AccessExpiresAt, RefreshHash, RefreshExpiresAt and
	//     LastUsedAt (= r.Now) are replaced, r.Successor and
	//     r.SuccessorUntil are kept with the session as the last rotation's
	//     (replacing the previous rotation's; an empty Successor keeps
	//     none), and the updated session returned.
	// Of concurrent rotations of the same token exactly one succeeds; the
	// others get ErrRecentlySpent (with the winner's Successor) or, when the
	// winner stored none, ErrReused.
	RotateRefresh(ctx context.Context, r Rotation) (Session, error)
	// RevokeSession marks the session revoked at now; its access and refresh
	// tokens stop working at once. Revoking a revoked or unknown session is
	// not an error.
	RevokeSession(ctx context.Context, id string, now time.Time) error
	// RevokeUserSessions marks every session of r.UserID not yet revoked
	// revoked at r.Now (each keeps an earlier revocation time), whatever the
	// app or identity, or only those of the identity (r.Family, r.AppID,
	// r.OpenID) when r.OpenID is set, and only those born of the login
	// r.Origin (the sessions whose Origin is r.Origin, and the session
	// whose ID is r.Origin) when r.Origin is set. With r.Keep > 0 it spares
	// the r.Keep most recently created (by CreatedAt, then ID) of the
	// matching sessions that are still rotatable at r.Now (not revoked,
	// RefreshExpiresAt and ExpiresAt, when set, after r.Now), and revokes
	// only the other rotatable ones: a cap on live sessions. Sessions
	// created by rotation are the same sessions and end with them. It
	// returns how many sessions it revoked; none is not an error. Like
	// RevokeSession, it takes effect at once and, where a backend delays
	// durability, returns once durable.
	RevokeUserSessions(ctx context.Context, r UserRevocation) (int, error)
	// AddDecryptFailure adds one to the session's DecryptFailures, whatever
	// the session's state, and returns the new count; ErrNotFound when there
	// is no such session. Concurrent calls lose no increment: the count is
	// what caps user data decryption (docs/security.md, "Decrypting user
	// data"), so a burst of failures must not undercount.
	AddDecryptFailure(ctx context.Context, sessionID string) (int, error)

	// PutCode remembers an exchanged login code until c.ExpiresAt. Putting a
	// code hash that is already known replaces it.
	PutCode(ctx context.Context, c ExchangedCode) error
	// GetCode returns the code, or ErrNotFound when unknown or expired
	// (ExpiresAt <= now).
	GetCode(ctx context.Context, hash []byte, now time.Time) (ExchangedCode, error)
	// ClaimReplay claims one repeat of a known login code, in one atomic
	// step: unknown or expired code (ExpiresAt <= now): ErrNotFound;
	// now not before ReplayUntil (a zero ReplayUntil included), or max
	// repeats already claimed (Replays >= max): the code, unchanged, with
	// ErrReplayRefused; otherwise Replays goes up by one and the code is
	// returned with the new count. Of concurrent callers at most max
	// (less those before) succeed.
	ClaimReplay(ctx context.Context, hash []byte, now time.Time, max int) (ExchangedCode, error)

	// DeleteExpired removes codes past ExpiresAt and sessions that can no
	// longer be used (revoked, or refresh token expired, or past ExpiresAt)
	// before now, with their refresh tokens. It returns how many sessions and
	// codes it removed. Unlike the other methods it need not be one
	// transaction: a backend may sweep in chunks, so that a large sweep does
	// not hold up logins; each row it removes was dead when removed.
	DeleteExpired(ctx context.Context, now time.Time) (int, error)

	// ListUserSessions returns the user's sessions still rotatable at now
	// (not revoked, RefreshExpiresAt after now, ExpiresAt after now when
	// set), newest first (by CreatedAt, then ID, descending).
	ListUserSessions(ctx context.Context, userID string, now time.Time) ([]Session, error)
	// EraseUserSessions deletes every session whose UserID is userID,
	// whatever its state, with all its refresh tokens, and every exchanged
	// code of one of identities (the codes carry their identity, not their
	// user). None is not an error. Atomic
	// on its own; the session half of EraseUser.
	EraseUserSessions(ctx context.Context, userID string, identities []Identity) error
	// MoveUserSessions gives every session of from the UserID into, in one
	// step; their tokens keep working. None is not an error. The session
	// half of MergeUsers.
	MoveUserSessions(ctx context.Context, into, from string) error
}

// LoginResult is the outcome of WriteLogin.
type LoginResult struct {
	Identity Identity
	Created  bool // the identity is new
	// Session is the session as stored: LoginWrite.Session with the
	// identity's UserID and UnionID.
	Session Session
	Ended   int // sessions past LoginWrite.Keep ended
	// Blocked is the identity's user's block, read after the session was
	// written (in its transaction, or after it) so that a block committed
	// after the read ends the session itself: the caller refuses the
	// login with no read of its own.
	Blocked bool
}

// LoginWrite is the input of WriteLogin.
type LoginWrite struct {
	Identity IdentityUpsert
	Code     ExchangedCode
	Session  Session // UserID and UnionID are set by WriteLogin
	// Keep, when more than 0, caps the identity's live sessions: the
	// oldest past the Keep newest end with the login.
	Keep int
	// Seal, when set, is called with the session once WriteLogin has set
	// its UserID and UnionID, before it is stored, and may give it another
	// AccessHash: a sealed access token carries them. It may be called
	// more than once; the last call's session is stored. Only a store that
	// offers ChangeLog is given one.
	Seal func(*Session) error
}

// CapRevocation is the revocation that in.Keep asks of WriteLogin, once
// the login's identity is id.
func (in LoginWrite) CapRevocation(id Identity) UserRevocation {
	return UserRevocation{UserID: id.UserID, Family: id.Family, AppID: id.AppID, OpenID: id.OpenID,
		Keep: in.Keep, Now: in.Session.CreatedAt}
}

// Check says what in lacks that every backend needs, or nil.
func (in LoginWrite) Check() error {
	switch {
	case in.Identity.Family == "" || in.Identity.AppID == "" || in.Identity.OpenID == "":
		return errors.New("empty family, app ID or open ID")
	case len(in.Code.Hash) == 0:
		return errors.New("empty code hash")
	case in.Session.ID == "" || len(in.Session.AccessHash) == 0 || len(in.Session.RefreshHash) == 0:
		return errors.New("empty session ID, access hash or refresh hash")
	}
	return nil
}

// AccessTokens caches the platforms' access tokens of our own apps (WeChat
// stable_token, Baidu client_credentials), so that every instance of the
// service shares one token per app instead of each fetching its own
// (docs/security.md, "Platform access tokens"). It is an interface of its
// own, not part of Sessions, because it belongs with the durable store even
// when sessions live in Redis. Values are sealed by the caller; the store
// never sees a token in clear.
//
// There is one row per key, replaced on each refresh, so DeleteExpired
// leaves these alone. A lease (only one instance calls the platform when
// the token is due) is meant to come as further methods on the same key.
type AccessTokens interface {
	// GetAccessToken returns the token cached under key, whatever its
	// times (the caller compares them with its clock); ErrNotFound when
	// there is none.
	GetAccessToken(ctx context.Context, key string) (AccessToken, error)
	// PutAccessToken stores t under t.Key, replacing what was there.
	PutAccessToken(ctx context.Context, t AccessToken) error
	// DeleteAccessToken deletes the token under key only if its sealed
	// value is still equal to sealed, in one atomic step, so that a late
	// report that an old token is invalid cannot drop a newer one. Nothing
	// to delete, or a different value stored, is not an error.
	DeleteAccessToken(ctx context.Context, key string, sealed []byte) error

	// AcquireLease gives holder the lease on key until the time until,
	// unless another holder's lease is still live at now (a lease is live
	// while now is before its end). Taking a lease one already holds moves
	// its end to until. It reports whether holder has the lease; of
	// concurrent callers at most one wins. The access-token manager takes
	// the lease "refresh:<token key>" before calling the platform, so that
	// one instance refreshes and the others wait for its result.
	AcquireLease(ctx context.Context, key, holder string, now, until time.Time) (bool, error)
	// ReleaseLease ends holder's lease on key at once. A lease held by
	// another holder, or none, is left alone and is not an error.
	ReleaseLease(ctx context.Context, key, holder string) error
}

// AccessToken is a cached platform access token.
type AccessToken struct {
	// Key names the app and token kind, e.g. "wechat:wx0123456789abcdef".
	Key string
	// Sealed is the token, sealed by the caller; never empty.
	Sealed []byte
	// ExpiresAt is when the platform stops accepting the token.
	ExpiresAt time.Time
	// RefreshAt is when a fresh token should be fetched, before ExpiresAt.
	RefreshAt time.Time
}

// SigningKeys keeps the set of keys mplogin signs JWT access tokens with,
// shared by every instance (package signing). The set is one value, sealed
// by the caller: the store never sees a private key in clear. It belongs
// with the durable store, like AccessTokens.
type SigningKeys interface {
	// GetSigningKeys returns the set; ErrNotFound when none was ever put.
	GetSigningKeys(ctx context.Context) (SigningKeySet, error)
	// PutSigningKeys replaces the set if its stored Version is still
	// prevVersion (0: only if there is none), in one atomic step, and
	// stores set as given (its Version is the caller's, normally
	// prevVersion+1). It reports whether it wrote: of concurrent callers
	// with the same prevVersion at most one wins, so that two instances
	// that rotate at once cannot both replace the set. A lost race is
	// false and no error.
	PutSigningKeys(ctx context.Context, set SigningKeySet, prevVersion int64) (bool, error)
}

// SigningKeySet is the stored set of signing keys.
type SigningKeySet struct {
	// Sealed is the whole set, private keys included, sealed by the
	// caller; never empty.
	Sealed []byte
	// Version counts the writes: the compare-and-swap of PutSigningKeys
	// compares it. Always more than 0 once stored.
	Version   int64
	UpdatedAt time.Time
}

// Store is a complete backend.
type Store interface {
	Users
	Sessions
	AccessTokens
	SigningKeys
	UserAdmin
	// WriteLogin records a login in one transaction, so that a login
	// waits for one commit instead of three: UpsertIdentity(in.Identity),
	// then PutCode(in.Code) and CreateSession(in.Session) with the
	// session's UserID and UnionID replaced by those of the identity, and,
	// with in.Keep > 0, what RevokeUserSessions would do for that identity
	// with Keep in.Keep and Now in.Session.CreatedAt (the new session
	// counted). It returns the identity as UpsertIdentity would, the
	// session as stored, and how many sessions the cap ended. All the
	// writes happen or none.
	WriteLogin(ctx context.Context, in LoginWrite) (LoginResult, error)
	// Ping reports whether the backend answers.
	Ping(ctx context.Context) error
	Close() error
}

// SessionStore is a backend that holds only sessions, refresh tokens and
// codes (Redis), beside a durable Store that holds the rest.
type SessionStore interface {
	Sessions
	// CreateLoginSession records a login's exchanged code and its first
	// session in one step: PutCode(c) and CreateSession(sess), both or
	// neither.
	CreateLoginSession(ctx context.Context, c ExchangedCode, sess Session) error
	Ping(ctx context.Context) error
	Close() error
}

// Split returns a Store that keeps users, identities, access tokens and
// signing keys in durable and sessions, refresh tokens and codes in sessions. Ping and
// Close reach both; DeleteExpired sweeps both and adds their counts.
//
// Its EraseUser reads the user's identities from durable, erases their
// sessions and codes in sessions (EraseUserSessions), then the user in
// durable (EraseUser). A failure after the first step leaves a user
// without sessions, and EraseUser can be called again.
//
// Its MergeUsers moves from's sessions to into (MoveUserSessions), merges
// the users in durable (MergeUsers), then moves from's sessions again, for
// the logins of from that came in between. A failure after the first step
// leaves sessions of from's identities on into while the identities are
// still from's, harmless and mended by calling MergeUsers again; a login
// of from whose identity was read before the merge and whose session is
// written after the last move still carries from (it is not one
// transaction across two backends).
//
// Its WriteLogin cannot be one transaction across two backends. It writes
// the identity to durable, then the code and the session in one step
// (CreateLoginSession), then applies the cap. A failure at one step leaves
// the steps before it, each harmless alone: an identity without a session
// is a user whose session ended; a session whose client never got its
// tokens expires unused.
func Split(durable Store, sessions SessionStore) Store {
	return split{Store: durable, s: sessions}
}

type split struct {
	Store // users, identities, access tokens, signing keys
	s     SessionStore
}

func (p split) CreateSession(ctx context.Context, s Session) error {
	return p.s.CreateSession(ctx, s)
}
func (p split) SessionByAccess(ctx context.Context, h []byte) (Session, error) {
	return p.s.SessionByAccess(ctx, h)
}
func (p split) SessionForLogout(ctx context.Context, h []byte) (Session, error) {
	return p.s.SessionForLogout(ctx, h)
}
func (p split) SessionByID(ctx context.Context, id string) (Session, error) {
	return p.s.SessionByID(ctx, id)
}
func (p split) SessionByRefresh(ctx context.Context, h []byte) (Session, error) {
	return p.s.SessionByRefresh(ctx, h)
}
func (p split) RotateRefresh(ctx context.Context, r Rotation) (Session, error) {
	return p.s.RotateRefresh(ctx, r)
}
func (p split) RevokeSession(ctx context.Context, id string, now time.Time) error {
	return p.s.RevokeSession(ctx, id, now)
}
func (p split) RevokeUserSessions(ctx context.Context, r UserRevocation) (int, error) {
	return p.s.RevokeUserSessions(ctx, r)
}
func (p split) AddDecryptFailure(ctx context.Context, id string) (int, error) {
	return p.s.AddDecryptFailure(ctx, id)
}
func (p split) PutCode(ctx context.Context, c ExchangedCode) error { return p.s.PutCode(ctx, c) }
func (p split) ListUserSessions(ctx context.Context, userID string, now time.Time) ([]Session, error) {
	return p.s.ListUserSessions(ctx, userID, now)
}
func (p split) EraseUserSessions(ctx context.Context, userID string, ids []Identity) error {
	return p.s.EraseUserSessions(ctx, userID, ids)
}
func (p split) MoveUserSessions(ctx context.Context, into, from string) error {
	return p.s.MoveUserSessions(ctx, into, from)
}

// EraseUser implements Store; see Split.
func (p split) EraseUser(ctx context.Context, userID string, now time.Time) error {
	if _, err := p.Store.GetUser(ctx, userID); err != nil {
		return err
	}
	ids, err := p.Store.ListIdentities(ctx, userID)
	if err != nil {
		return err
	}
	if err := p.s.EraseUserSessions(ctx, userID, ids); err != nil {
		return err
	}
	return p.Store.EraseUser(ctx, userID, now)
}

// MergeUsers implements Store; see Split.
func (p split) MergeUsers(ctx context.Context, into, from string, now time.Time) error {
	if into == from {
		return fmt.Errorf("split: merge users: %w", ErrSelfMerge)
	}
	for _, id := range []string{into, from} {
		if _, err := p.Store.GetUser(ctx, id); err != nil {
			return err
		}
	}
	if err := p.s.MoveUserSessions(ctx, into, from); err != nil {
		return err
	}
	if err := p.Store.MergeUsers(ctx, into, from, now); err != nil {
		return err
	}
	return p.s.MoveUserSessions(ctx, into, from)
}

// WriteLogin implements Store; see Split.
func (p split) WriteLogin(ctx context.Context, in LoginWrite) (LoginResult, error) {
	if err := in.Check(); err != nil {
		return LoginResult{}, fmt.Errorf("split: write login: %w", err)
	}
	id, created, err := p.Store.UpsertIdentity(ctx, in.Identity)
	if err != nil {
		return LoginResult{}, err
	}
	sess := in.Session
	sess.UserID, sess.UnionID = id.UserID, id.UnionID
	if err := p.s.CreateLoginSession(ctx, in.Code, sess); err != nil {
		return LoginResult{}, err
	}
	res := LoginResult{Identity: id, Created: created, Session: sess}
	if in.Keep > 0 {
		if res.Ended, err = p.s.RevokeUserSessions(ctx, in.CapRevocation(id)); err != nil {
			return LoginResult{}, err
		}
	}
	if !created {
		// After the session's write, as LoginResult.Blocked asks.
		if res.Blocked, err = p.blocked(ctx, id); err != nil {
			return LoginResult{}, err
		}
	}
	return res, nil
}

// blocked reads the block of id's user; of the user it was merged into,
// when a merge has just removed that user.
func (p split) blocked(ctx context.Context, id Identity) (bool, error) {
	u, err := p.Store.GetUser(ctx, id.UserID)
	if errors.Is(err, ErrNotFound) {
		if id, err = p.Store.GetIdentity(ctx, id.Family, id.AppID, id.OpenID); err == nil {
			u, err = p.Store.GetUser(ctx, id.UserID)
		}
	}
	if errors.Is(err, ErrNotFound) {
		return false, nil // merged again, or erased: nothing left to refuse
	}
	return u.Blocked, err
}

func (p split) GetCode(ctx context.Context, h []byte, now time.Time) (ExchangedCode, error) {
	return p.s.GetCode(ctx, h, now)
}
func (p split) ClaimReplay(ctx context.Context, h []byte, now time.Time, max int) (ExchangedCode, error) {
	return p.s.ClaimReplay(ctx, h, now, max)
}

func (p split) DeleteExpired(ctx context.Context, now time.Time) (int, error) {
	a, err := p.s.DeleteExpired(ctx, now)
	if err != nil {
		return a, err
	}
	b, err := p.Store.DeleteExpired(ctx, now)
	return a + b, err
}

func (p split) Ping(ctx context.Context) error {
	if err := p.s.Ping(ctx); err != nil {
		return err
	}
	return p.Store.Ping(ctx)
}

func (p split) Close() error {
	return errors.Join(p.s.Close(), p.Store.Close())
}

// User is a person, who may own several identities.
type User struct {
	ID        string
	CreatedAt time.Time
	Phone     Phone // zero when no number is known
	// Blocked is set by SetBlocked, with why and when; the reason is
	// empty and the time zero when not blocked.
	Blocked       bool
	BlockedReason string
	BlockedAt     time.Time
}

// Phone is a user's phone number and where it came from: the two sources
// are not equally trustworthy (docs/security.md, "Phone numbers").
type Phone struct {
	// Sealed is the number, sealed by the caller: it is personal data, and
	// a database dump must not list it.
	Sealed []byte
	// Lookup is a keyed hash of the number (keyring.Lookup), which
	// FindUsersByPhone matches; nil for a number recorded without one.
	Lookup []byte
	// Source is PhoneFromPlatform or PhoneFromUserData.
	Source string
	// App is the configured app it came through.
	App       string
	UpdatedAt time.Time
}

// MaxPhoneHolders bounds what FindUsersByPhone returns. Without linking
// by phone, several users may hold one number; a search names a few.
const MaxPhoneHolders = 20

// Where a phone number came from.
const (
	// PhoneFromPlatform: the platform's server-to-server API (WeChat
	// getuserphonenumber), the more trustworthy source.
	PhoneFromPlatform = "platform"
	// PhoneFromUserData: a payload the client sent, decrypted with the
	// session key; only as trustworthy as that key.
	PhoneFromUserData = "userdata"
)

// Identity is one account on one platform's app: (Family, AppID, OpenID).
type Identity struct {
	Family  platform.Family // whose openids: "wechat", "baidu", …
	AppID   string          // WeChat appid, Baidu app_key
	OpenID  string
	UnionID string // "" when unknown
	UserID  string
	// Session keys, sealed by the caller; the store treats them as opaque.
	SessionKey       []byte
	PrevSessionKey   []byte
	PrevKeyExpiresAt time.Time // zero when there is no previous key
	CreatedAt        time.Time
	UpdatedAt        time.Time
}

// IdentityUpsert is the input of UpsertIdentity.
type IdentityUpsert struct {
	Family           platform.Family
	AppID, OpenID    string
	UnionID          string
	SealedSessionKey []byte // nil or empty keeps the current key
	NewUserID        string // used only when a user is created
	Now              time.Time
	KeyGrace         time.Duration
}

// Session is one login of one identity through one configured app.
type Session struct {
	ID     string
	UserID string
	App    string // the configured app name it was issued for
	// The identity it belongs to.
	Family        platform.Family
	AppID, OpenID string
	// UnionID is the identity's unionid when the session was created (""
	// when unknown then), kept here so that a session check is one read.
	UnionID string

	AccessHash       []byte // hash of the current access token (package token)
	AccessExpiresAt  time.Time
	RefreshHash      []byte // hash of the current refresh token (package token)
	RefreshExpiresAt time.Time

	CreatedAt  time.Time
	ExpiresAt  time.Time // absolute end; zero means none
	LastUsedAt time.Time
	RevokedAt  time.Time // zero while active

	// DecryptFailures counts failed user data decryptions in this session.
	// CreateSession stores it as given (0 for a new login); after that only
	// AddDecryptFailure changes it, and nothing resets it.
	DecryptFailures int

	// Origin is the ID of the session a login code's exchange made, for
	// the sessions that repeats of the code made; "" (or its own ID) for
	// that first session itself. A logout ends the sessions of one origin
	// together (RevokeUserSessions with Origin).
	Origin string

	// Successor is what the last rotation stored as r.Successor (sealed by
	// the caller; opaque here). Only RotateRefresh returns it, and only
	// with ErrRecentlySpent; every other read leaves it empty.
	Successor []byte
}

// Active reports whether the session can still be used at now.
func (s Session) Active(now time.Time) bool {
	return s.RevokedAt.IsZero() && (s.ExpiresAt.IsZero() || now.Before(s.ExpiresAt))
}

// UserRevocation is the input of RevokeUserSessions.
type UserRevocation struct {
	UserID string
	// Family, AppID and OpenID, when OpenID is set, restrict the
	// revocation to the sessions of that identity of the user.
	Family        platform.Family
	AppID, OpenID string
	// Origin, when set, restricts it to the sessions born of one login:
	// the session with that ID and the sessions whose Origin it is.
	Origin string
	// Keep, when more than 0, spares the Keep newest rotatable sessions
	// among those matched.
	Keep int
	Now  time.Time
}

// Rotation is the input of RotateRefresh.
type Rotation struct {
	OldRefreshHash   []byte
	NewAccessHash    []byte
	AccessExpiresAt  time.Time
	NewRefreshHash   []byte
	RefreshExpiresAt time.Time
	Now              time.Time
	// Successor, when not empty, is kept with the session (sealed by the
	// caller) until SuccessorUntil: a repeat of OldRefreshHash before then
	// gets it back with ErrRecentlySpent instead of revoking the session.
	Successor      []byte
	SuccessorUntil time.Time
}

// ExchangedCode is a login code that was exchanged with the platform,
// remembered for its lifetime: a repeat within ReplayUntil gets a session
// for the same identity, and after it the code is known to be used without
// asking the platform. Only its hash is kept.
type ExchangedCode struct {
	Hash          []byte // SHA-256 of (app name, code)
	App           string
	Family        platform.Family
	AppID, OpenID string
	ExpiresAt     time.Time
	// SessionID is the session the code's exchange made: the Origin of the
	// sessions its repeats make.
	SessionID string
	// ReplayUntil ends the window in which a repeat is honoured; zero
	// means never.
	ReplayUntil time.Time
	// Replays counts the repeats ClaimReplay granted. PutCode stores it as
	// given (0 for a new code).
	Replays int
}

// CheckBulk checks what the bulk loaders are given: each identity names its
// family, app ID, open ID and user ID, and each session its ID and both
// token hashes.
func CheckBulk(ids []Identity, sessions []Session) error {
	for _, id := range ids {
		if id.Family == "" || id.AppID == "" || id.OpenID == "" || id.UserID == "" {
			return errors.New("empty family, app ID, open ID or user ID")
		}
	}
	for _, sess := range sessions {
		if sess.ID == "" || len(sess.AccessHash) == 0 || len(sess.RefreshHash) == 0 {
			return errors.New("empty ID, access hash or refresh hash")
		}
	}
	return nil
}
