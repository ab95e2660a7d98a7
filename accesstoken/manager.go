// Package accesstoken manages the platforms' access tokens of our own apps
// (WeChat stable_token, Baidu client_credentials), which the calls beyond
// login need: phone numbers, unionids, session checks. The rules it keeps
// (docs/security.md, "Platform access tokens"):
//
//   - One fetch at a time per key in a process: callers that need a
//     fresh token share one fetch, which runs under a context detached from
//     the first caller, with its own timeout; each caller waits only as long
//     as its own context allows.
//   - Early refresh: a token is refreshed once 80% of its lifetime has
//     passed. If that refresh fails, the token is served until it expires.
//   - Shared through the store: a fetched token is stored sealed
//     with the keyring, and a manager that finds a fresh one there (another
//     instance's, or its own before a restart) fetches nothing.
//   - One fetch at a time across instances: with a store, the instance
//     that refreshes holds a lease on the key in the store; the others wait
//     for its token to appear there, and take over only if the lease ends
//     (its holder died) or was released without a token.
//   - Invalidate and refetch once: Do runs a call and, if the platform
//     rejects the token, drops it and retries once with a freshly fetched
//     one. Fetchers use stable_token's normal mode; nothing here ever asks
//     for force_refresh.
//   - Refreshes are logged at info with the key and expires_in; the token
//     never appears in a log or an error.
//   - Clocks may differ between instances by mplogin.MaxClockSkew: a token
//     is taken for expired that much early (a token from the store was
//     timed by another instance's clock), and a lease is held that much
//     past the holder's fetch timeout, so that an instance whose clock runs
//     ahead does not take it over while the holder is still fetching.
package accesstoken

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"golang.org/x/sync/singleflight"

	"github.com/mplogin/mplogin"
	"github.com/mplogin/mplogin/keyring"
	"github.com/mplogin/mplogin/platform"
	"github.com/mplogin/mplogin/secret"
	"github.com/mplogin/mplogin/store"
)

// Fetcher gets a fresh token and its lifetime from the platform.
// *wechat.Client (stable_token, normal mode) and *baidu.Client implement
// it. Its errors should be *platform.Error.
type Fetcher interface {
	FetchAccessToken(ctx context.Context) (secret.String, time.Duration, error)
}

// FetcherFunc adapts a function to Fetcher, e.g. a
// (*wechat.Client).FetchClassicAccessToken behind a central token service.
type FetcherFunc func(ctx context.Context) (secret.String, time.Duration, error)

// FetchAccessToken implements Fetcher.
func (f FetcherFunc) FetchAccessToken(ctx context.Context) (secret.String, time.Duration, error) {
	return f(ctx)
}

// DefaultFetchTimeout bounds one refresh (store read, fetch with its single
// retry, store write) when Config.FetchTimeout is 0.
const DefaultFetchTimeout = 15 * time.Second

// failureBackoff is how long a still-valid token is served without another
// refresh attempt after one failed, so that a platform outage is not met
// with a fetch per call.
const failureBackoff = 10 * time.Second

// ErrRegistered: Register was called twice for a key.
var ErrRegistered = errors.New("accesstoken: key already registered")

// ErrUnknownKey: no fetcher is registered under the key.
var ErrUnknownKey = errors.New("accesstoken: no fetcher registered for this key")

// Key is the conventional key of an app's token, e.g.
// "wechat:wx0123456789abcdef". Instances sharing a store must agree on keys.
func Key(family platform.Family, appID string) string { return string(family) + ":" + appID }

// Config configures a Manager.
type Config struct {
	// Store shares tokens between instances; nil keeps them in this
	// process only. Any store.Store will do.
	Store store.AccessTokens
	// Keys seals tokens in the store; required with Store.
	Keys *keyring.Keyring
	// Now is the clock; nil means time.Now.
	Now func() time.Time
	// Logger receives refreshes and failures; nil discards them.
	Logger *slog.Logger
	// FetchTimeout bounds one refresh; 0 means DefaultFetchTimeout.
	FetchTimeout time.Duration
	// LeaseWait is how often an instance waiting for another's refresh
	// looks in the store for the new token; 0 means DefaultLeaseWait.
	LeaseWait time.Duration
	// Holder names this instance in refresh leases; "" picks a random one.
	Holder string
}

// DefaultLeaseWait is how often a waiting instance polls the store.
const DefaultLeaseWait = 50 * time.Millisecond

// Manager hands out access tokens for registered keys. It is safe for
// concurrent use.
type Manager struct {
	store        store.AccessTokens
	keys         *keyring.Keyring
	now          func() time.Time
	log          *slog.Logger
	fetchTimeout time.Duration
	leaseWait    time.Duration
	holder       string
	flight       singleflight.Group
	// flights numbers the fetches begun, so that a caller can tell a flight
	// that began before it arrived from one that began after.
	flights atomic.Uint64
	// onWait, if set (by tests), runs when a caller starts waiting on a
	// flight.
	onWait func(key string)

	mu   sync.Mutex // guards apps and every app's fields but fetch
	apps map[string]*app
}

// app is one registered key.
type app struct {
	fetch Fetcher
	cur   cached
	// rejected is the token last reported invalid: a copy of it found in
	// the store (sealed by another instance) is not taken up again.
	rejected secret.String
	// retryAt: after a failed refresh with cur still valid, no new attempt
	// before this time.
	retryAt time.Time
}

// cached is a token with its times; sealed is what the store holds for it,
// for a compare-and-delete.
type cached struct {
	tok                  secret.String
	sealed               []byte
	expiresAt, refreshAt time.Time
}

func (c cached) fresh(now time.Time) bool { return !c.tok.IsZero() && now.Before(c.refreshAt) }

// valid reports whether c may still be served, after a failed refresh:
// until MaxClockSkew before its end, since the end may have been timed by
// an instance whose clock runs behind this one (and served past its end, a
// token costs a rejected call). A fresh token is valid whatever its
// lifetime.
func (c cached) valid(now time.Time) bool {
	return c.fresh(now) || !c.tok.IsZero() && now.Before(c.expiresAt.Add(-mplogin.MaxClockSkew))
}

// New returns a Manager.
func New(cfg Config) (*Manager, error) {
	if cfg.Store != nil && cfg.Keys == nil {
		return nil, errors.New("accesstoken: a keyring is required to keep tokens in the store")
	}
	m := &Manager{
		store: cfg.Store, keys: cfg.Keys, now: cfg.Now, log: cfg.Logger,
		fetchTimeout: cfg.FetchTimeout, leaseWait: cfg.LeaseWait, holder: cfg.Holder, apps: make(map[string]*app),
	}
	if m.leaseWait <= 0 {
		m.leaseWait = DefaultLeaseWait
	}
	if m.holder == "" {
		var b [12]byte
		if _, err := rand.Read(b[:]); err != nil {
			return nil, fmt.Errorf("accesstoken: holder id: %w", err)
		}
		m.holder = hex.EncodeToString(b[:])
	}
	if m.now == nil {
		m.now = time.Now
	}
	if m.log == nil {
		m.log = slog.New(slog.DiscardHandler)
	}
	if m.fetchTimeout <= 0 {
		m.fetchTimeout = DefaultFetchTimeout
	}
	return m, nil
}

// Register makes key's tokens come from f. A key is registered once.
func (m *Manager) Register(key string, f Fetcher) error {
	if key == "" || f == nil {
		return errors.New("accesstoken: register: empty key or nil fetcher")
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	if _, dup := m.apps[key]; dup {
		return fmt.Errorf("%w: %q", ErrRegistered, key)
	}
	m.apps[key] = &app{fetch: f}
	return nil
}

func (m *Manager) app(key string) (*app, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	a := m.apps[key]
	if a == nil {
		return nil, fmt.Errorf("%w: %q", ErrUnknownKey, key)
	}
	return a, nil
}

// Token returns a valid token for key: from memory, else from the store,
// else fetched. A token past its refresh time is refreshed first, and
// still served if that refresh fails before it expires. A failed fetch is
// a *platform.Error; a caller whose ctx ends while waiting gets ctx's
// error, and the fetch goes on for the others.
func (m *Manager) Token(ctx context.Context, key string) (secret.String, error) {
	a, err := m.app(key)
	if err != nil {
		return secret.String{}, err
	}
	now := m.now()
	m.mu.Lock()
	c, retryAt := a.cur, a.retryAt
	m.mu.Unlock()
	if c.fresh(now) || (c.valid(now) && now.Before(retryAt)) {
		return c.tok, nil
	}
	// A flight that began before this caller arrived may fail for a cause
	// that has gone since (the platform was down a moment ago): a caller
	// that joined such a flight gets one more try, in a flight that begins
	// after it arrived (shared with any other latecomer).
	arrived, retried := m.flights.Load(), false
	for {
		ch := m.flight.DoChan(key, func() (any, error) {
			n := m.flights.Add(1)
			// Detached, so that the first caller giving up cannot fail the
			// fetch for everyone else; bounded by its own timeout.
			fctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), m.fetchTimeout)
			defer cancel()
			tok, err := m.refresh(fctx, key, a)
			return flightResult{tok: tok, n: n}, err
		})
		if m.onWait != nil {
			m.onWait(key)
		}
		select {
		case r := <-ch:
			res := r.Val.(flightResult)
			if r.Err == nil {
				return res.tok, nil
			}
			if res.n <= arrived && !retried && ctx.Err() == nil {
				retried = true
				continue
			}
			return secret.String{}, r.Err
		case <-ctx.Done():
			return secret.String{}, fmt.Errorf("accesstoken: waiting for %s: %w", key, ctx.Err())
		}
	}
}

// flightResult is what one fetch flight gives every caller waiting on it.
type flightResult struct {
	tok secret.String
	n   uint64 // the flight's number
}

// Invalidate reports that the platform rejected tok. If tok is still the
// current token of key it is dropped from memory and from the store
// (compare-and-delete: a newer token stored meanwhile stays), so that the
// next Token fetches; a stale report changes nothing. The error is the
// store's; memory is cleared regardless.
func (m *Manager) Invalidate(ctx context.Context, key string, tok secret.String) error {
	a, err := m.app(key)
	if err != nil || tok.IsZero() {
		return err
	}
	m.mu.Lock()
	a.rejected = tok
	cur := a.cur
	current := cur.tok.Equal(tok)
	if current {
		a.cur, a.retryAt = cached{}, time.Time{}
	}
	m.mu.Unlock()
	if !current {
		return nil
	}
	m.log.InfoContext(ctx, "platform access token invalidated", "key", key)
	if m.store == nil || len(cur.sealed) == 0 {
		return nil
	}
	if err := m.store.DeleteAccessToken(ctx, key, cur.sealed); err != nil {
		m.log.WarnContext(ctx, "cannot drop the invalidated access token from the store", "key", key, "err", err)
		return fmt.Errorf("accesstoken: invalidate %s: %w", key, err)
	}
	return nil
}

// Do runs call with key's token. If the call fails with
// platform.KindTokenInvalid, the token is invalidated, a new one fetched
// (normal mode: never force_refresh) and the call run once more; its result
// is final.
func (m *Manager) Do(ctx context.Context, key string, call func(ctx context.Context, tok secret.String) error) error {
	tok, err := m.Token(ctx, key)
	if err != nil {
		return err
	}
	err = call(ctx, tok)
	if platform.KindOf(err) != platform.KindTokenInvalid {
		return err
	}
	_ = m.Invalidate(ctx, key, tok) // logged; memory is cleared whatever the store says
	if tok, err = m.Token(ctx, key); err != nil {
		return err
	}
	return call(ctx, tok)
}
