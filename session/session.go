// Package session is mplogin's main job: it turns a platform login code into
// a session of our own, checks access tokens, rotates refresh tokens, logs
// out, and decrypts the user data a mini program got under the session's
// platform session key.
//
// Rules it keeps (see docs/security.md):
//   - concurrent logins with the same code share one platform call, and a
//     repeat of an exchanged code gets a new session for the same identity
//     instead of "code been used", but only within Policy.CodeReplayWindow
//     of the exchange, MaxCodeReplays times, and while the code's first
//     session is live; the sessions of one code end together;
//   - an identity has at most Policy.MaxSessionsPerIdentity live sessions:
//     a login past the cap ends the oldest;
//   - the platform session key is sealed before it reaches the store and
//     never leaves the server;
//   - tokens are opaque, typed and stored only as hashes; a refresh rotates
//     both tokens and a spent refresh token presented again revokes the
//     whole session, except the one the last refresh spent, within
//     Policy.RefreshReuseGrace, which gets that refresh's tokens again;
//   - every failure to decrypt user data is the one ErrDecryptFailed, and an
//     identity's session key stops being tried after MaxDecryptFailures of
//     them, whatever the sessions and the concurrency, until a new login
//     brings a new key;
//   - every end it stores (of an access or refresh token, a session, an
//     exchanged code, a previous session key) is mplogin.MaxClockSkew after
//     the lifetime the client is told, because another instance, whose
//     clock may run that much ahead, compares it: the client is never
//     refused early, and nothing outlives its lifetime by more than the
//     skew. Revocation is not a time and takes effect at once.
package session

import (
	"cmp"
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"strings"
	"sync/atomic"
	"time"

	"github.com/mplogin/mplogin"
	"github.com/mplogin/mplogin/keyring"
	"github.com/mplogin/mplogin/platform"
	"github.com/mplogin/mplogin/secret"
	"github.com/mplogin/mplogin/store"
	"github.com/mplogin/mplogin/token"
)

// App is one configured mini program.
type App struct {
	Name   string          // what clients send as "app"
	Family platform.Family // whose openids and unionids: the flavor of Client decides it
	AppID  string          // WeChat appid, Baidu app_key
	Client platform.Client
	// CodeTTL is how long the platform's login codes live (WeChat 5 min,
	// Baidu 10 min): how long a repeat of an exchanged code is honoured.
	CodeTTL time.Duration
	// UserdataMaxAge is the oldest decrypted WeChat payload accepted, by its
	// watermark timestamp; 0 = no age check. Baidu payloads carry no
	// timestamp, so Baidu apps ignore it.
	UserdataMaxAge time.Duration
	// The platform calls beyond login, each nil when the app's platform
	// or configuration has no such call (no access token, say): the
	// service then answers not_supported.
	Phones      PhoneResolver     // phone codes
	SessionKeys SessionKeyChecker // session key checks and resets
	UnionIDs    UnionIDFetcher    // unionids the login did not give
	// AlipayPhones opens an Alipay app's my.getPhoneNumber answers.
	AlipayPhones AlipayPhoneOpener
	// FetchUnionID asks UnionIDs for the unionid at login when the
	// platform did not give one with it (Baidu) and the identity has none
	// yet.
	FetchUnionID bool
	// ExposeUnionID lets Introspect tell the unionid of the app's sessions
	// to business clients and gateways; off, they get none, since a
	// unionid links a person across apps. It also puts the unionid in
	// the app's JWT access tokens.
	ExposeUnionID bool
	// JWT, when set, makes the app's access tokens JWTs (see JWTConfig);
	// nil keeps them opaque.
	JWT *AppJWT
}

// Policy holds lifetimes, as the client is told them; each is honoured for
// mplogin.MaxClockSkew more (see the package comment).
type Policy struct {
	AccessTTL  time.Duration // access token lifetime
	RefreshTTL time.Duration // idle limit: a refresh token unused this long expires
	MaxAge     time.Duration // absolute session lifetime; 0 = none
	KeyGrace   time.Duration // previous session key kept this long
	// PlatformTimeout bounds one exchange with the platform, retry included.
	PlatformTimeout time.Duration
	// CodeReplayWindow is how long after its exchange a repeat of a login
	// code gets a session; 0 = never. Like the lifetimes it is honoured
	// for mplogin.MaxClockSkew more, so that a client retrying through
	// another instance is not refused early.
	CodeReplayWindow time.Duration
	// MaxSessionsPerIdentity caps an identity's live sessions; 0 = no cap.
	MaxSessionsPerIdentity int
	// RefreshReuseGrace is how long the refresh token a refresh spent still
	// gets that refresh's tokens; 0 = never.
	RefreshReuseGrace time.Duration
	// LinkByPhone: a user who proves a phone number another user holds
	// joins that user (see Phone).
	LinkByPhone bool
}

// DefaultPolicy is the service's defaults.
var DefaultPolicy = Policy{
	AccessTTL:              2 * time.Hour,
	RefreshTTL:             30 * 24 * time.Hour,
	MaxAge:                 90 * 24 * time.Hour,
	KeyGrace:               5 * time.Minute,
	PlatformTimeout:        5 * time.Second,
	CodeReplayWindow:       10 * time.Second,
	MaxSessionsPerIdentity: 20,
	RefreshReuseGrace:      30 * time.Second,
}

// MaxCodeReplays is how many repeats of one login code get a session: a
// client that sends its login again after a lost answer needs one or two.
const MaxCodeReplays = 3

// Config assembles a Service.
type Config struct {
	Store store.Store
	// Changes, when set (to Store's change log), has access tokens sealed
	// and checked without a read while the store vouches for them
	// (sealed.go).
	Changes store.ChangeLog
	Keys    *keyring.Keyring
	Apps    []App
	Policy  Policy
	Now     func() time.Time // nil = time.Now
	Rand    io.Reader        // nil = crypto/rand
	Logger  *slog.Logger     // nil = discard
	// JWT signs the access tokens of the apps with App.JWT; required
	// when one has it.
	JWT *JWTConfig
}

// Service implements login, check, refresh and logout.
type Service struct {
	store   store.Store
	changes store.ChangeLog // nil: opaque access tokens
	keys    *keyring.Keyring
	apps    map[string]*App
	policy  Policy
	now     func() time.Time
	rand    io.Reader
	log     *slog.Logger
	jwt     *JWTConfig
	flight  codeFlight
	// sleep waits d or until ctx ends (then it returns ctx's error); tests
	// replace it.
	sleep func(ctx context.Context, d time.Duration) error
}

// New returns a Service.
func New(cfg Config) (*Service, error) {
	if cfg.Store == nil || cfg.Keys == nil {
		return nil, errors.New("session: a store and a keyring are required")
	}
	s := &Service{store: cfg.Store, changes: cfg.Changes, keys: cfg.Keys, apps: make(map[string]*App), policy: cfg.Policy,
		now: cfg.Now, rand: cfg.Rand, log: cfg.Logger, jwt: cfg.JWT, sleep: sleepCtx}
	if s.now == nil {
		s.now = time.Now
	}
	if s.rand == nil {
		s.rand = rand.Reader
	}
	if s.log == nil {
		s.log = slog.New(slog.DiscardHandler)
	}
	if s.policy.AccessTTL <= 0 || s.policy.RefreshTTL <= 0 || s.policy.PlatformTimeout <= 0 {
		return nil, errors.New("session: access, refresh and platform timeouts must be positive")
	}
	if s.policy.CodeReplayWindow < 0 || s.policy.MaxSessionsPerIdentity < 0 || s.policy.RefreshReuseGrace < 0 {
		return nil, errors.New("session: the code replay window, the session cap and the refresh grace must not be negative")
	}
	for i := range cfg.Apps {
		a := cfg.Apps[i]
		if a.Name == "" || a.Family == "" || a.AppID == "" || a.Client == nil || a.CodeTTL <= 0 {
			return nil, fmt.Errorf("session: app %d (%q) is incomplete", i, a.Name)
		}
		if _, dup := s.apps[a.Name]; dup {
			return nil, fmt.Errorf("session: app %q twice", a.Name)
		}
		if a.JWT != nil && (cfg.JWT == nil || cfg.JWT.Keys == nil || cfg.JWT.Issuer == "" || a.JWT.TTL <= 0 || len(a.JWT.Audience) == 0) {
			return nil, fmt.Errorf("session: app %q has JWT access tokens without keys, an issuer, a lifetime or an audience", a.Name)
		}
		s.apps[a.Name] = &a
	}
	return s, nil
}

// User is what a client learns about the user.
type User struct {
	ID      string `json:"id"`
	OpenID  string `json:"openid"`
	UnionID string `json:"unionid,omitempty"`
	Created bool   `json:"created"`
	// Anonymous: a Douyin user who is not logged in to Douyin, known by
	// an anonymous_code alone; OpenID is then AnonymousPrefix and Douyin's
	// anonymous_openid.
	Anonymous bool `json:"anonymous,omitempty"`
	// PreviousUserID is set by the login that upgrades an anonymous user
	// (a code with the anonymous_code of the same device): the anonymous
	// user's id. It equals ID when the anonymous user became the logged-in
	// one, and differs when the anonymous user joined an existing user.
	PreviousUserID string `json:"previous_user_id,omitempty"`
}

// AnonymousPrefix starts the openid of an anonymous identity, which keeps
// Douyin's anonymous_openids apart from its openids.
const AnonymousPrefix = "anonymous:"

// userOf is the User of a session's identity.
func userOf(userID, openID, unionID string) User {
	return User{ID: userID, OpenID: openID, UnionID: unionID, Anonymous: strings.HasPrefix(openID, AnonymousPrefix)}
}

// LoginRequest is what a mini program sends to log in: a login code, or
// (Douyin) an anonymous_code alone, or both.
type LoginRequest struct {
	Code          string
	AnonymousCode string
}

// LogValue keeps the codes out of logs.
func (LoginRequest) LogValue() slog.Value { return slog.StringValue("[redacted]") }

// Tokens is a login or refresh result.
type Tokens struct {
	AccessToken      secret.String
	RefreshToken     secret.String
	ExpiresIn        time.Duration
	RefreshExpiresIn time.Duration
	User             User
	App              string
	session          store.Session // what a JWT access token is minted for
}

// Info describes an active session.
type Info struct {
	SessionID string
	App       string
	User      User
	ExpiresIn time.Duration // of the access token
	// SessionKeyValid is the platform's verdict on the identity's session
	// key, set only by CheckPlatform.
	SessionKeyValid *bool
}

// MaxCodeLen bounds a login code; real ones are about 32 bytes.
const MaxCodeLen = platform.MaxCodeLen

// Login exchanges code for a new session.
func (s *Service) Login(ctx context.Context, appName, code string) (*Tokens, error) {
	return s.LoginWith(ctx, appName, LoginRequest{Code: code})
}

// LoginWith is Login with everything a mini program may send: on Douyin,
// an anonymous_code alone logs in an anonymous user, and a code with the
// anonymous_code of the same device upgrades that anonymous user (see
// User.PreviousUserID).
func (s *Service) LoginWith(ctx context.Context, appName string, req LoginRequest) (*Tokens, error) {
	t, err := s.login(ctx, appName, req)
	if err != nil {
		return nil, err
	}
	return s.issue(t)
}

func (s *Service) login(ctx context.Context, appName string, req LoginRequest) (*Tokens, error) {
	app, ok := s.apps[appName]
	if !ok {
		return nil, mplogin.Errorf(mplogin.CodeUnknownApp, "app names no configured app")
	}
	if req.AnonymousCode != "" && app.Family != platform.FamilyDouyin {
		return nil, mplogin.Errorf(mplogin.CodeInvalidRequest, "anonymous_code is Douyin's: this app's platform has none")
	}
	if len(req.Code) > MaxCodeLen || len(req.AnonymousCode) > MaxCodeLen || req.Code == "" && req.AnonymousCode == "" {
		if app.Family == platform.FamilyDouyin {
			return nil, mplogin.Errorf(mplogin.CodeInvalidRequest, "give code, anonymous_code or both, each of 1 to %d bytes", MaxCodeLen)
		}
		return nil, mplogin.Errorf(mplogin.CodeInvalidRequest, "code must be 1 to %d bytes", MaxCodeLen)
	}
	key := app.Name + "\x00" + req.Code
	if req.AnonymousCode != "" {
		key += "\x00anonymous\x00" + req.AnonymousCode
	}
	sum := sha256.Sum256([]byte(key))
	// The exchange is shared by the logins with this code, and detached
	// from this request's cancellation (see codeFlight).
	r, left, err := s.flight.do(ctx, string(sum[:]), func() (*codeResult, error) {
		return s.identityForCode(context.WithoutCancel(ctx), ctx, app, req, sum[:])
	})
	if left {
		return nil, mplogin.Wrap(mplogin.CodePlatformUnavailable, "the login did not finish in time", ctx.Err())
	}
	if err != nil {
		return nil, err
	}
	// An operator's block is checked once the identity, hence the user,
	// is known; a repeat below needs no check of its own, since a block
	// ends the code's first session, which a repeat looks at again after
	// its write.
	if err := s.refuseBlocked(ctx, app, r); err != nil {
		return nil, err
	}
	if r.first != nil && r.claimed.CompareAndSwap(false, true) {
		// The session written with the identity, for the first caller to
		// take it; callers sharing the exchange, and repeats of the code,
		// get sessions of their own.
		s.logLogin(ctx, app, r.identity, r.created)
		s.logCapped(ctx, r.identity, r.ended)
		return r.first, nil
	}
	return s.repeat(ctx, app, sum[:], r)
}

var errCodeUsed = mplogin.Errorf(mplogin.CodeInvalidCode, "the platform rejected the login code (invalid, expired or already used)")

// repeat is a login with a code already exchanged: a session of its own,
// born of the code's first session, if the code may be repeated now (see
// Policy.CodeReplayWindow and MaxCodeReplays) and that session is live.
func (s *Service) repeat(ctx context.Context, app *App, hash []byte, r *codeResult) (*Tokens, error) {
	c, err := s.store.ClaimReplay(ctx, hash, s.now(), MaxCodeReplays)
	switch {
	case errors.Is(err, store.ErrReplayRefused) || errors.Is(err, store.ErrNotFound):
		s.log.LogAttrs(ctx, slog.LevelInfo, "repeat of a used login code refused",
			slog.String("app", app.Name), slog.String("user", r.identity.UserID), slog.Int("repeats", c.Replays))
		return nil, errCodeUsed
	case err != nil:
		return nil, storeError("claim code repeat", err)
	}
	if live, err := s.originLive(ctx, c.SessionID); err != nil || !live {
		if err == nil {
			s.log.LogAttrs(ctx, slog.LevelInfo, "repeat of a login code whose session ended refused",
				slog.String("app", app.Name), slog.String("user", r.identity.UserID), slog.String("session", c.SessionID))
		}
		return nil, cmp.Or[error](err, errCodeUsed)
	}
	m, err := s.mintSession(app, r.identity)
	if err != nil {
		return nil, err
	}
	m.sess.Origin = c.SessionID
	if err := s.store.CreateSession(ctx, m.sess); err != nil {
		return nil, storeError("create session", err)
	}
	// A logout of the code's sessions between the check above and the
	// write did not see this one: look again, and end it if so.
	if live, err := s.originLive(ctx, c.SessionID); err != nil || !live {
		if rerr := s.store.RevokeSession(ctx, m.sess.ID, s.now()); rerr != nil {
			return nil, storeError("revoke session", rerr)
		}
		return nil, cmp.Or[error](err, errCodeUsed)
	}
	s.logLogin(ctx, app, r.identity, r.created)
	s.capSessions(ctx, r.identity)
	return m.tokens(r.created), nil
}

// originLive reports whether the session id, the first of a login code,
// is still live: its repeats get sessions only while it is.
func (s *Service) originLive(ctx context.Context, id string) (bool, error) {
	if id == "" {
		return false, nil // a code stored without its session
	}
	sess, err := s.store.SessionByID(ctx, id)
	switch {
	case errors.Is(err, store.ErrNotFound):
		return false, nil
	case err != nil:
		return false, storeError("session by id", err)
	}
	return sess.Active(s.now()), nil
}

// capSessions ends the oldest live sessions of identity id past
// Policy.MaxSessionsPerIdentity. The login stands whatever happens here.
func (s *Service) capSessions(ctx context.Context, id store.Identity) {
	if s.policy.MaxSessionsPerIdentity <= 0 {
		return
	}
	n, err := s.store.RevokeUserSessions(ctx, store.UserRevocation{UserID: id.UserID,
		Family: id.Family, AppID: id.AppID, OpenID: id.OpenID, Keep: s.policy.MaxSessionsPerIdentity, Now: s.now()})
	if err != nil {
		s.log.LogAttrs(ctx, slog.LevelWarn, "ending sessions past the cap failed", slog.String("user", id.UserID), slog.Any("error", err))
		return
	}
	s.logCapped(ctx, id, n)
}

// logCapped logs the n sessions of identity id the cap ended, if any.
func (s *Service) logCapped(ctx context.Context, id store.Identity, n int) {
	if n > 0 {
		s.log.LogAttrs(ctx, slog.LevelInfo, "oldest sessions ended: cap reached", slog.String("user", id.UserID),
			slog.Int("sessions", n), slog.Int("cap", s.policy.MaxSessionsPerIdentity))
	}
}

type codeResult struct {
	identity store.Identity
	created  bool
	// first is the session WriteLogin stored with the identity, for one
	// caller; nil for a repeat of the code.
	first   *Tokens
	claimed atomic.Bool
	ended   int // sessions the cap ended when first was written
	// blockRead says that blocked is the user's block as WriteLogin read
	// it; otherwise refuseBlocked reads the user.
	blockRead, blocked bool
}

// identityForCode finds or creates the identity of a login code: a code
// already exchanged is a replay; otherwise the platform exchanges it. ctx
// runs to the end whatever the request; reqCtx is the request's, which
// bounds only the wait for another instance (see awaitCode).
func (s *Service) identityForCode(ctx, reqCtx context.Context, app *App, req LoginRequest, hash []byte) (*codeResult, error) {
	now := s.now()
	prev, err := s.store.GetCode(ctx, hash, now)
	switch {
	case err == nil:
		if !now.Before(prev.ReplayUntil) {
			return nil, errCodeUsed // used, and its repeats are over
		}
		return s.replay(ctx, prev)
	case !errors.Is(err, store.ErrNotFound):
		return nil, storeError("get code", err)
	}

	pctx, cancel := context.WithTimeout(ctx, s.policy.PlatformTimeout)
	login, err := app.Client.Exchange(pctx, platform.ExchangeRequest{Code: req.Code, AnonymousCode: req.AnonymousCode})
	cancel()
	if err != nil && platform.KindOf(err) == platform.KindCodeUsed {
		// Perhaps another instance exchanged this code a moment ago and
		// is still recording it (a client retrying a slow login through a
		// load balancer): wait for its record, and answer as a replay.
		prev, found, gerr := s.awaitCode(ctx, reqCtx, hash)
		if gerr != nil {
			return nil, storeError("get code", gerr)
		}
		if found {
			s.log.LogAttrs(ctx, slog.LevelInfo, "code exchanged by another instance: answered as a repeat", slog.String("app", app.Name))
			return s.replay(ctx, prev)
		}
	}
	if err != nil {
		s.log.LogAttrs(ctx, slog.LevelInfo, "platform login failed", slog.String("app", app.Name), slog.Any("error", err))
		return nil, platformError(err)
	}

	// An anonymous_code alone: the user is known by the anonymous openid.
	var anonymous string
	switch {
	case login.AnonymousOpenID != "" && login.OpenID == "":
		login.OpenID = AnonymousPrefix + login.AnonymousOpenID
	case login.AnonymousOpenID != "":
		anonymous = AnonymousPrefix + login.AnonymousOpenID
	case login.OpenID == "":
		return nil, platformError(&platform.Error{Host: string(app.Family), Kind: platform.KindUnknown,
			Err: errors.New("the platform answered without an openid")})
	}

	if app.FetchUnionID && login.UnionID == "" && app.UnionIDs != nil {
		login.UnionID = s.fetchUnionID(ctx, app, login.OpenID)
	}

	var sealed []byte
	if !login.SessionKey.IsZero() {
		sealed, err = s.keys.Seal([]byte(login.SessionKey.Reveal()), KeyAAD(app.Family, app.AppID, login.OpenID))
		if err != nil {
			return nil, mplogin.Wrap(mplogin.CodeInternal, "internal error", err)
		}
	}
	now = s.now()
	userID, err := s.newID(now)
	if err != nil {
		return nil, err
	}
	upsert := store.IdentityUpsert{
		Family: app.Family, AppID: app.AppID, OpenID: login.OpenID, UnionID: login.UnionID,
		SealedSessionKey: sealed, NewUserID: userID, Now: now, KeyGrace: s.keyGrace(),
	}
	c := store.ExchangedCode{Hash: hash, App: app.Name, Family: app.Family, AppID: app.AppID,
		OpenID: login.OpenID, ExpiresAt: deadline(now, app.CodeTTL)}
	if s.policy.CodeReplayWindow > 0 {
		c.ReplayUntil = deadline(now, s.policy.CodeReplayWindow)
	}

	// One write for the identity, the code, a first session and the cap.
	m, err := s.mintSession(app, store.Identity{Family: app.Family, AppID: app.AppID, OpenID: login.OpenID})
	if err != nil {
		return nil, err
	}
	c.SessionID = m.sess.ID
	lw := store.LoginWrite{Identity: upsert, Code: c, Session: m.sess, Keep: max(s.policy.MaxSessionsPerIdentity, 0)}
	if s.changes != nil {
		// The user and unionid a sealed token carries are known once the
		// store has upserted the identity.
		opaque := m.access
		lw.Seal = func(sess *store.Session) error {
			sealed, err := s.sealAccess(sess, sess.CreatedAt)
			m.access = cmp.Or(sealed, opaque)
			return err
		}
	}
	res, err := s.store.WriteLogin(ctx, lw)
	if err != nil {
		return nil, storeError("write login", err)
	}
	m.sess = res.Session
	r := &codeResult{identity: res.Identity, created: res.Created, ended: res.Ended,
		blockRead: true, blocked: res.Blocked}
	var previous string
	if anonymous != "" {
		if previous, err = s.upgradeAnonymous(ctx, app, anonymous, r); err != nil {
			return nil, err
		}
		m.sess.UserID = r.identity.UserID
		r.blockRead = r.identity.UserID == res.Identity.UserID
	}
	r.first = m.tokens(r.created)
	r.first.User.PreviousUserID = previous
	return r, nil
}

// upgradeAnonymous joins the anonymous identity (a Douyin anonymous_openid)
// of a login that came with both a code and the anonymous_code to the
// login's user r.identity, and returns the anonymous user's id; "" when
// there is nothing to join (no such anonymous identity, or one of this
// user already). If the login created its user, the anonymous user takes
// its place: that user is merged into the anonymous one, which keeps its
// id (r changes to say so); otherwise the anonymous user is merged into
// the login's existing user. Sessions move and keep working either way.
func (s *Service) upgradeAnonymous(ctx context.Context, app *App, anonymous string, r *codeResult) (string, error) {
	anon, err := s.store.GetIdentity(ctx, app.Family, app.AppID, anonymous)
	switch {
	case errors.Is(err, store.ErrNotFound):
		return "", nil
	case err != nil:
		return "", storeError("get identity", err)
	case anon.UserID == r.identity.UserID:
		return "", nil
	}
	into, from := r.identity.UserID, anon.UserID
	if r.created {
		into, from = anon.UserID, r.identity.UserID
	}
	if err := s.MergeUsers(ctx, into, from); err != nil {
		return "", err
	}
	s.log.LogAttrs(ctx, slog.LevelInfo, "anonymous user upgraded", slog.String("app", app.Name),
		slog.String("user", into), slog.String("from", from))
	r.identity.UserID, r.created = into, false
	return anon.UserID, nil
}

// sleepCtx waits d, or until ctx ends.
func sleepCtx(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// replay is the identity of an exchanged code's repeat.
func (s *Service) replay(ctx context.Context, prev store.ExchangedCode) (*codeResult, error) {
	id, err := s.store.GetIdentity(ctx, prev.Family, prev.AppID, prev.OpenID)
	if err != nil {
		return nil, storeError("get identity", err)
	}
	return &codeResult{identity: id}, nil
}

// CodeUsedWait bounds how long a login whose code the platform reports as
// already used waits for the instance that exchanged it to record it (and
// Policy.PlatformTimeout, when shorter, bounds it too: the other instance
// had its answer from the platform before this one, and has only its store
// write left).
const CodeUsedWait = 2 * time.Second

// awaitCode looks for the exchanged code hash in the store until it is
// there, the wait is over (CodeUsedWait or PlatformTimeout) or reqCtx ends,
// with waits that double from 50 ms. found is false when the code did not
// come; err is set only when the store fails.
func (s *Service) awaitCode(ctx, reqCtx context.Context, hash []byte) (c store.ExchangedCode, found bool, err error) {
	delay, waited := 50*time.Millisecond, time.Duration(0)
	limit := min(CodeUsedWait, s.policy.PlatformTimeout)
	for {
		c, err := s.store.GetCode(ctx, hash, s.now())
		switch {
		case err == nil:
			return c, true, nil
		case !errors.Is(err, store.ErrNotFound):
			return store.ExchangedCode{}, false, err
		}
		if waited >= limit {
			return store.ExchangedCode{}, false, nil
		}
		d := min(delay, limit-waited)
		if s.sleep(reqCtx, d) != nil {
			return store.ExchangedCode{}, false, nil // the request ended
		}
		waited += d
		delay *= 2
	}
}

// KeyAAD binds a sealed session key to its identity.
func KeyAAD(family platform.Family, appID, openID string) []byte {
	return []byte(string(family) + "\x00" + appID + "\x00" + openID)
}

// minted is a new session and its tokens, not yet stored.
type minted struct {
	sess            store.Session
	access, refresh string
	expiresIn       time.Duration
}

// mintSession makes a session of identity id with a new pair of tokens.
func (s *Service) mintSession(app *App, id store.Identity) (minted, error) {
	now := s.now()
	access, accessHash, refresh, refreshHash, err := s.mintPair(now)
	if err != nil {
		return minted{}, err
	}
	sid, err := s.newID(now)
	if err != nil {
		return minted{}, err
	}
	sess := store.Session{
		ID: sid, UserID: id.UserID, App: app.Name, Family: id.Family, AppID: id.AppID, OpenID: id.OpenID,
		UnionID:    id.UnionID,
		AccessHash: accessHash, AccessExpiresAt: deadline(now, s.policy.AccessTTL),
		RefreshHash: refreshHash, RefreshExpiresAt: s.refreshExpiry(now, time.Time{}),
		CreatedAt: now, LastUsedAt: now,
	}
	if s.policy.MaxAge > 0 {
		sess.ExpiresAt = deadline(now, s.policy.MaxAge)
		sess.RefreshExpiresAt = s.refreshExpiry(now, sess.ExpiresAt)
	}
	if id.UserID != "" {
		// Otherwise WriteLogin seals it, once it knows the user.
		if sealed, err := s.sealAccess(&sess, now); err != nil {
			return minted{}, mplogin.Wrap(mplogin.CodeInternal, "internal error", err)
		} else if sealed != "" {
			access = sealed
		}
	}
	return minted{sess: sess, access: access, refresh: refresh, expiresIn: s.policy.AccessTTL}, nil
}

// tokens is what the caller of Login gets for m.
func (m minted) tokens(created bool) *Tokens {
	u := userOf(m.sess.UserID, m.sess.OpenID, m.sess.UnionID)
	u.Created = created
	return &Tokens{
		AccessToken: secret.New(m.access), RefreshToken: secret.New(m.refresh),
		ExpiresIn: m.expiresIn, RefreshExpiresIn: left(m.sess.RefreshExpiresAt, m.sess.CreatedAt),
		User: u, App: m.sess.App, session: m.sess,
	}
}

func (s *Service) logLogin(ctx context.Context, app *App, id store.Identity, created bool) {
	s.log.LogAttrs(ctx, slog.LevelInfo, "login", slog.String("app", app.Name), slog.String("user", id.UserID), slog.Bool("created", created))
}

// refreshExpiry is the stored end of the idle limit, but never past the
// absolute end (a stored end too).
func (s *Service) refreshExpiry(now, end time.Time) time.Time {
	t := deadline(now, s.policy.RefreshTTL)
	if !end.IsZero() && end.Before(t) {
		return end
	}
	return t
}

// deadline is the end to store for something that lives d from now: an
// instance whose clock runs up to mplogin.MaxClockSkew ahead of this one
// must still honour it for all of d (see the package comment).
func deadline(now time.Time, d time.Duration) time.Time {
	return now.Add(d + mplogin.MaxClockSkew)
}

// left is what the client is told remains at now of something whose stored
// end, as deadline made it, is end: never below zero, which a read within
// the tolerance would give.
func left(end, now time.Time) time.Duration {
	return max(end.Sub(now)-mplogin.MaxClockSkew, 0)
}

// keyGrace is how long UpsertIdentity keeps a replaced session key, as a
// stored end. No grace stays none.
func (s *Service) keyGrace() time.Duration {
	if s.policy.KeyGrace <= 0 {
		return s.policy.KeyGrace
	}
	return s.policy.KeyGrace + mplogin.MaxClockSkew
}

// Check returns the session an access token belongs to.
func (s *Service) Check(ctx context.Context, accessToken string) (*Info, error) {
	// At most one read: the session row carries what the answer needs,
	// and a sealed token does too (sealed.go).
	sess, err := s.checked(ctx, accessToken)
	if err != nil {
		return nil, err
	}
	info := s.info(sess)
	return &info, nil
}

func (s *Service) info(sess store.Session) Info {
	return Info{
		SessionID: sess.ID, App: sess.App,
		User:      userOf(sess.UserID, sess.OpenID, sess.UnionID),
		ExpiresIn: left(sess.AccessExpiresAt, s.now()).Truncate(time.Second),
	}
}

// Authed is a session whose access token Authenticate found active. A
// request that checks its token first (to rate-limit by the token's app
// before reading the body, say) acts on it with DecryptAuthed and
// PhoneAuthed, and so reads the session once. Only Authenticate makes a
// usable one; it is meant for the request it was made for.
type Authed struct {
	sess store.Session
	info Info
}

// Info describes the session as Check does, as of Authenticate.
func (a *Authed) Info() Info { return a.info }

// Authenticate checks an access token and returns its session.
func (s *Service) Authenticate(ctx context.Context, accessToken string) (*Authed, error) {
	sess, err := s.active(ctx, accessToken)
	if err != nil {
		return nil, err
	}
	return &Authed{sess: sess, info: s.info(sess)}, nil
}

// authed is a's session, unless its access token has expired since
// Authenticate (which the clock tells without another read).
func (s *Service) authed(a *Authed) (store.Session, error) {
	if a == nil {
		return store.Session{}, errInvalidToken
	}
	now := s.now()
	if !a.sess.Active(now) || !now.Before(a.sess.AccessExpiresAt) {
		return store.Session{}, errInvalidToken
	}
	return a.sess, nil
}

var errInvalidToken = mplogin.Errorf(mplogin.CodeInvalidToken, "the access token is missing, malformed, expired or revoked")

// active is the one check of an access token: Check, Authenticate and
// Introspect all come here, so another token format is one more branch
// here.
func (s *Service) active(ctx context.Context, accessToken string) (store.Session, error) {
	return s.sessionOf(ctx, accessToken, "session by access token", s.store.SessionByAccess)
}

// sessionOf finds the active session of an access token with find, which
// is one of the store's lookups by access-token hash.
func (s *Service) sessionOf(ctx context.Context, accessToken, op string, find func(context.Context, []byte) (store.Session, error)) (store.Session, error) {
	if s.jwt != nil && looksLikeJWT(accessToken) {
		return s.jwtSession(ctx, accessToken, op)
	}
	hash, ok := token.Parse(accessToken, token.Access)
	if !ok {
		return store.Session{}, errInvalidToken
	}
	sess, err := find(ctx, hash)
	if errors.Is(err, store.ErrNotFound) {
		return store.Session{}, errInvalidToken
	}
	if err != nil {
		return store.Session{}, storeError(op, err)
	}
	now := s.now()
	if !sess.Active(now) || !now.Before(sess.AccessExpiresAt) {
		return store.Session{}, errInvalidToken
	}
	if _, ok := s.apps[sess.App]; !ok {
		// The app was removed from the configuration: its sessions end.
		return store.Session{}, errInvalidToken
	}
	return sess, nil
}

var errInvalidGrant = mplogin.Errorf(mplogin.CodeInvalidGrant, "the refresh token is unknown, expired, spent or revoked")

// Refresh spends a refresh token for new tokens. The refresh token the
// session's last refresh spent, presented again within
// Policy.RefreshReuseGrace, gets that refresh's tokens again (two requests
// of one client that refreshed at once, or a retry after a lost answer);
// any other spent token revokes the session and the sessions of its login.
func (s *Service) Refresh(ctx context.Context, refreshToken string) (*Tokens, error) {
	t, err := s.refresh(ctx, refreshToken)
	if err != nil {
		return nil, err
	}
	return s.issue(t)
}

func (s *Service) refresh(ctx context.Context, refreshToken string) (*Tokens, error) {
	hash, ok := token.Parse(refreshToken, token.Refresh)
	if !ok {
		return nil, errInvalidGrant
	}
	now := s.now()
	access, accessHash, refresh, refreshHash, err := s.mintPair(now)
	if err != nil {
		return nil, err
	}
	// The absolute end is not known before the lookup; the store keeps
	// RefreshExpiresAt as given, so cap it after reading the session.
	rot := store.Rotation{
		OldRefreshHash: hash, NewAccessHash: accessHash, AccessExpiresAt: deadline(now, s.policy.AccessTTL),
		NewRefreshHash: refreshHash, RefreshExpiresAt: s.refreshExpiry(now, time.Time{}), Now: now,
	}
	// A sealed access token needs the session's claims before the
	// rotation: read them first. A merge between the read and the
	// rotation is caught after it.
	var sealedFor *claims
	if s.changes != nil {
		cur, err := s.store.SessionByRefresh(ctx, hash)
		switch {
		case err == nil:
			cur.AccessExpiresAt = rot.AccessExpiresAt
			sealed, err := s.sealAccess(&cur, now)
			if err != nil {
				return nil, mplogin.Wrap(mplogin.CodeInternal, "internal error", err)
			}
			if sealed != "" {
				c := claimsOf(cur)
				access, rot.NewAccessHash, sealedFor = sealed, cur.AccessHash, &c
			}
		case !errors.Is(err, store.ErrNotFound):
			return nil, storeError("session by refresh token", err)
		}
		// Not found: a spent or unknown token, which the rotation
		// answers; the opaque access token minted above is never given.
	}
	if s.policy.RefreshReuseGrace > 0 {
		// The new pair, sealed, for a repeat of the token spent here.
		rot.Successor, err = s.keys.Seal([]byte(access+"\x00"+refresh), successorAAD(hash))
		if err != nil {
			return nil, mplogin.Wrap(mplogin.CodeInternal, "internal error", err)
		}
		rot.SuccessorUntil = deadline(now, s.policy.RefreshReuseGrace)
	}
	sess, err := s.store.RotateRefresh(ctx, rot)
	switch {
	case errors.Is(err, store.ErrRecentlySpent):
		return s.successor(ctx, sess, hash, now)
	case errors.Is(err, store.ErrReused):
		s.log.LogAttrs(ctx, slog.LevelWarn, "refresh token reused: session revoked",
			slog.String("app", sess.App), slog.String("user", sess.UserID), slog.String("session", sess.ID))
		s.endLogin(ctx, sess)
		return nil, errInvalidGrant
	case errors.Is(err, store.ErrNotFound):
		return nil, errInvalidGrant
	case err != nil:
		return nil, storeError("rotate refresh token", err)
	}
	if _, ok := s.apps[sess.App]; !ok {
		return nil, errInvalidGrant
	}
	if sealedFor != nil && !sealedFor.same(sess) {
		// The session changed between the read and the rotation: the new
		// token's claims are stale, so the store must not vouch for it.
		if err := s.changes.Changed(ctx, sess.ID); err != nil {
			return nil, storeError("mark session changed", err)
		}
	}
	s.log.LogAttrs(ctx, slog.LevelInfo, "refresh", slog.String("app", sess.App), slog.String("user", sess.UserID))
	return &Tokens{
		AccessToken: secret.New(access), RefreshToken: secret.New(refresh),
		ExpiresIn: s.policy.AccessTTL, RefreshExpiresIn: s.refreshLeft(sess, now),
		User: userOf(sess.UserID, sess.OpenID, sess.UnionID), App: sess.App,
		session: sess,
	}, nil
}

// successorAAD binds a sealed successor pair to the refresh token whose
// rotation made it.
func successorAAD(spent []byte) []byte {
	return append([]byte("refresh successor\x00"), spent...)
}

// successor answers a repeat, within the grace, of the refresh token the
// session's last refresh spent (hash): that refresh's tokens.
func (s *Service) successor(ctx context.Context, sess store.Session, hash []byte, now time.Time) (*Tokens, error) {
	if _, ok := s.apps[sess.App]; !ok {
		return nil, errInvalidGrant
	}
	pair, err := s.keys.Open(sess.Successor, successorAAD(hash))
	access, refresh, ok := strings.Cut(string(pair), "\x00")
	if err != nil || !ok {
		// Sealed under a key since retired, or damaged: no tokens to give.
		s.log.LogAttrs(ctx, slog.LevelWarn, "a refresh repeated within the grace: its tokens do not open",
			slog.String("app", sess.App), slog.String("session", sess.ID), slog.Any("error", err))
		return nil, errInvalidGrant
	}
	s.log.LogAttrs(ctx, slog.LevelInfo, "refresh repeated within the grace: same tokens",
		slog.String("app", sess.App), slog.String("user", sess.UserID), slog.String("session", sess.ID))
	return &Tokens{
		AccessToken: secret.New(access), RefreshToken: secret.New(refresh),
		ExpiresIn: left(sess.AccessExpiresAt, now).Truncate(time.Second), RefreshExpiresIn: s.refreshLeft(sess, now),
		User: userOf(sess.UserID, sess.OpenID, sess.UnionID), App: sess.App,
		session: sess,
	}, nil
}

// refreshLeft is what the client is told remains of sess's refresh token.
func (s *Service) refreshLeft(sess store.Session, now time.Time) time.Duration {
	end := sess.RefreshExpiresAt
	if !sess.ExpiresAt.IsZero() && sess.ExpiresAt.Before(end) {
		end = sess.ExpiresAt
	}
	return left(end, now)
}

// endLogin revokes the sessions born of the same login code as sess (the
// replay of a spent refresh token revoked sess itself). Failure is logged:
// sess is revoked already.
func (s *Service) endLogin(ctx context.Context, sess store.Session) {
	if sess.ID == "" {
		return
	}
	if _, err := s.store.RevokeUserSessions(ctx, store.UserRevocation{UserID: sess.UserID, Origin: originOf(sess), Now: s.now()}); err != nil {
		s.log.LogAttrs(ctx, slog.LevelWarn, "ending the sessions of a login failed", slog.String("session", sess.ID), slog.Any("error", err))
	}
}

// originOf is the ID of the first session of sess's login.
func originOf(sess store.Session) string {
	if sess.Origin != "" {
		return sess.Origin
	}
	return sess.ID
}

// forLogout is active for a logout: the access token may also be the one
// the session's last refresh replaced, so that a logout that lost a race
// with a refresh (the client's own, or a thief's) still ends the session.
// That token counts while the session is active and its successor has not
// expired (the replaced token expired no later); a session check never
// takes it.
func (s *Service) forLogout(ctx context.Context, accessToken string) (store.Session, error) {
	return s.sessionOf(ctx, accessToken, "session for logout", s.store.SessionForLogout)
}

// Logout revokes the session of an access token at once, with the sessions
// born of the same login code (repeats of it). The token may be the one the
// session's last refresh replaced (see forLogout).
func (s *Service) Logout(ctx context.Context, accessToken string) error {
	sess, err := s.forLogout(ctx, accessToken)
	if err != nil {
		return err
	}
	// The sessions born of the same login code end with it.
	if _, err := s.store.RevokeUserSessions(ctx, store.UserRevocation{UserID: sess.UserID, Origin: originOf(sess), Now: s.now()}); err != nil {
		return storeError("revoke session", err)
	}
	s.log.LogAttrs(ctx, slog.LevelInfo, "logout", slog.String("app", sess.App), slog.String("user", sess.UserID), slog.String("session", sess.ID))
	return nil
}

// LogoutAll revokes, at once, every session of the access token's user:
// in every app and of every identity of the user, since a user is one
// person, sessions made by refreshes included (a thief's too). It returns
// how many sessions it ended, the token's own included. Like Logout, it
// takes the access token the session's last refresh replaced.
func (s *Service) LogoutAll(ctx context.Context, accessToken string) (int, error) {
	sess, err := s.forLogout(ctx, accessToken)
	if err != nil {
		return 0, err
	}
	n, err := s.store.RevokeUserSessions(ctx, store.UserRevocation{UserID: sess.UserID, Now: s.now()})
	if err != nil {
		return 0, storeError("revoke user sessions", err)
	}
	s.log.LogAttrs(ctx, slog.LevelInfo, "logout of all sessions", slog.String("app", sess.App),
		slog.String("user", sess.UserID), slog.String("session", sess.ID), slog.Int("sessions", n))
	return n, nil
}

// Ready reports whether the store answers.
func (s *Service) Ready(ctx context.Context) error {
	if err := s.store.Ping(ctx); err != nil {
		// Whatever the cause, a store that fails a ping is not ready: the
		// probe's answer is 503, for the balancer to route elsewhere.
		return mplogin.Wrap(mplogin.CodeStoreUnavailable, "the store did not answer; try again", &StoreError{Op: "ping", Err: err})
	}
	return nil
}

// mintPair mints a new access token and refresh token with their hashes.
func (s *Service) mintPair(now time.Time) (access string, accessHash []byte, refresh string, refreshHash []byte, err error) {
	if access, accessHash, err = token.New(s.rand, token.Access, now); err == nil {
		refresh, refreshHash, err = token.New(s.rand, token.Refresh, now)
	}
	if err != nil {
		return "", nil, "", nil, mplogin.Wrap(mplogin.CodeInternal, "internal error", err)
	}
	return access, accessHash, refresh, refreshHash, nil
}

// newID is a time-ordered id for a user or a session: 6 bytes of
// milliseconds, then 10 random bytes (the layout of a UUIDv7, without its
// version bits). New rows then land at the end of the stores' indexes by id
// instead of at random pages, which is fewer pages written per login. A
// user's id tells its creation time to the millisecond and nothing else;
// a session's id is no credential, and only business clients and
// gateways see it (introspection's sid, /v1/authz's X-Mplogin-Session).
func (s *Service) newID(now time.Time) (string, error) {
	var b [16]byte
	token.PutMillis(b[:], now)
	if _, err := io.ReadFull(s.rand, b[6:]); err != nil {
		return "", mplogin.Wrap(mplogin.CodeInternal, "internal error", err)
	}
	return hex.EncodeToString(b[:]), nil
}

// StoreError is the cause of every error of this package that a store call
// made: which call, and what the store said. errors.As finds it in them.
type StoreError struct {
	Op  string // "get identity", "session by access token", …
	Err error
}

func (e *StoreError) Error() string { return "store " + e.Op + ": " + e.Err.Error() }

func (e *StoreError) Unwrap() error { return e.Err }

// storeError classifies a failed store call. An outage (the store wraps
// store.ErrUnavailable, or the call's context ended) is store_unavailable,
// which tells the client to try again. Anything else is a bug or a broken
// constraint that trying again will not fix: internal_error.
func storeError(op string, err error) error {
	cause := &StoreError{Op: op, Err: err}
	if errors.Is(err, store.ErrUnavailable) || errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) {
		return mplogin.Wrap(mplogin.CodeStoreUnavailable, "the store did not answer; try again", cause)
	}
	return mplogin.Wrap(mplogin.CodeInternal, "internal error", cause)
}

// platformError maps a platform failure to what the client sees.
func platformError(err error) error {
	e := &mplogin.Error{Err: err}
	switch platform.KindOf(err) {
	case platform.KindInvalidCode, platform.KindCodeUsed:
		e.Code, e.Message = mplogin.CodeInvalidCode, "the platform rejected the login code (invalid, expired or already used)"
	case platform.KindUserBlocked:
		e.Code, e.Message = mplogin.CodeUserBlocked, "the platform blocks this user"
	case platform.KindRateLimited:
		e.Code, e.Message, e.RetryAfter = mplogin.CodeRateLimited, "the platform's rate limit was hit", time.Minute
	case platform.KindBusy, platform.KindUnavailable, platform.KindTokenInvalid:
		e.Code, e.Message, e.RetryAfter = mplogin.CodePlatformUnavailable, "the platform did not answer in time or is busy", 2*time.Second
	default:
		e.Code, e.Message = mplogin.CodePlatformError, "the platform refused the request; check the app's credentials"
	}
	return e
}

// HasApp reports whether name is a configured app.
func (s *Service) HasApp(name string) bool {
	_, ok := s.apps[name]
	return ok
}
