package accesstoken

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/mplogin/mplogin"
	"github.com/mplogin/mplogin/platform"
	"github.com/mplogin/mplogin/secret"
	"github.com/mplogin/mplogin/store"
)

// refresh runs inside the key's single flight: the store first, then the
// lease, then the platform.
func (m *Manager) refresh(ctx context.Context, key string, a *app) (secret.String, error) {
	now := m.now()
	m.mu.Lock()
	fallback, rejected := a.cur, a.rejected
	m.mu.Unlock()
	if fallback.fresh(now) {
		return fallback.tok, nil // refreshed by the flight that just ended
	}

	if stored, ok := m.load(ctx, key, rejected); ok {
		if stored.fresh(now) {
			m.set(a, stored)
			m.log.DebugContext(ctx, "platform access token taken from the store", "key", key)
			return stored.tok, nil
		}
		if stored.valid(now) && stored.expiresAt.After(fallback.expiresAt) {
			fallback = stored
		}
	}

	if m.store != nil {
		got, release, ok := m.lease(ctx, key, rejected)
		if ok {
			m.set(a, got)
			return got.tok, nil
		}
		if release != nil {
			defer release()
		}
	}

	tok, life, err := a.fetch.FetchAccessToken(ctx)
	if err == nil && (tok.IsZero() || life <= 0) {
		err = errors.New("fetcher returned no token or no lifetime")
	}
	if err != nil {
		err = platformError(key, err)
		if m.keepServing(a, fallback) {
			m.log.WarnContext(ctx, "platform access token refresh failed; serving the current one until it expires",
				"key", key, "expires_at", fallback.expiresAt, "err", err)
			return fallback.tok, nil
		}
		m.log.WarnContext(ctx, "platform access token fetch failed", "key", key, "err", err)
		return secret.String{}, err
	}

	// Times count from before the fetch: the token cannot outlive that.
	c := cached{tok: tok, expiresAt: now.Add(life), refreshAt: now.Add(life * 8 / 10)}
	c.sealed = m.save(ctx, key, c)
	m.set(a, c)
	m.log.InfoContext(ctx, "platform access token refreshed", "key", key, "expires_in", int64(life.Seconds()))
	return tok, nil
}

// keepServing makes a still-valid token current after a failed refresh,
// with no new attempt for failureBackoff, unless it was reported invalid
// meanwhile.
func (m *Manager) keepServing(a *app, c cached) bool {
	now := m.now()
	m.mu.Lock()
	defer m.mu.Unlock()
	if !c.valid(now) || c.tok.Equal(a.rejected) {
		return false
	}
	a.cur, a.retryAt = c, now.Add(failureBackoff)
	return true
}

// set makes c the current token and ends any failure backoff.
func (m *Manager) set(a *app, c cached) {
	m.mu.Lock()
	a.cur, a.retryAt = c, time.Time{}
	m.mu.Unlock()
}

// aad binds a sealed token to its key, so that a value cannot be moved to
// another key's row.
func aad(key string) []byte { return []byte("access_token\x00" + key) }

// load reads key's token from the store. A missing, unreadable or rejected
// one is no token: the caller fetches. Store trouble is logged, not
// returned, since the platform can still answer.
func (m *Manager) load(ctx context.Context, key string, rejected secret.String) (cached, bool) {
	if m.store == nil {
		return cached{}, false
	}
	st, err := m.store.GetAccessToken(ctx, key)
	if err != nil {
		if !errors.Is(err, store.ErrNotFound) {
			m.log.WarnContext(ctx, "cannot read the access token store; fetching", "key", key, "err", err)
		}
		return cached{}, false
	}
	plain, err := m.keys.Open(st.Sealed, aad(key))
	if err != nil {
		// Sealed under a master key we no longer have, or tampered with.
		m.log.WarnContext(ctx, "stored access token does not open; fetching a new one", "key", key)
		return cached{}, false
	}
	tok := secret.New(string(plain))
	if tok.Equal(rejected) {
		return cached{}, false
	}
	return cached{tok: tok, sealed: st.Sealed, expiresAt: st.ExpiresAt, refreshAt: st.RefreshAt}, true
}

// save stores c sealed and returns the sealed value, nil if it could not be
// stored (the token is still good in memory).
func (m *Manager) save(ctx context.Context, key string, c cached) []byte {
	if m.store == nil {
		return nil
	}
	sealed, err := m.keys.Seal([]byte(c.tok.Reveal()), aad(key))
	if err == nil {
		err = m.store.PutAccessToken(ctx, store.AccessToken{Key: key, Sealed: sealed, ExpiresAt: c.expiresAt, RefreshAt: c.refreshAt})
	}
	if err != nil {
		m.log.WarnContext(ctx, "cannot store the access token; other instances will fetch their own", "key", key, "err", err)
		return nil
	}
	return sealed
}

// platformError makes sure a failed fetch is a *platform.Error.
func platformError(key string, err error) error {
	if _, ok := errors.AsType[*platform.Error](err); ok {
		return err
	}
	return &platform.Error{Host: "accesstoken", Endpoint: key, Kind: platform.KindUnavailable,
		Err: fmt.Errorf("fetch: %w", err)}
}

// lease takes the store's refresh lease on key, or waits for the instance
// holding it to store a fresh token. It returns that token (ok), or, when
// this instance is to fetch, the function that gives the lease back (nil if
// the store could not be asked: the platform can still answer, so store
// trouble does not stop the fetch).
func (m *Manager) lease(ctx context.Context, key string, rejected secret.String) (got cached, release func(), ok bool) {
	lkey := "refresh:" + key
	for {
		now := m.now()
		// The fetch ends within fetchTimeout by this clock; another
		// instance reads the lease's end by its own, which may run up to
		// MaxClockSkew ahead.
		held, err := m.store.AcquireLease(ctx, lkey, m.holder, now, now.Add(m.fetchTimeout+mplogin.MaxClockSkew))
		if err != nil {
			m.log.WarnContext(ctx, "cannot take the access token refresh lease; fetching anyway", "key", key, "err", err)
			return cached{}, nil, false
		}
		if held {
			release := func() {
				// Detached: the lease must go even if ctx has ended.
				rctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
				defer cancel()
				if err := m.store.ReleaseLease(rctx, lkey, m.holder); err != nil {
					m.log.WarnContext(ctx, "cannot release the access token refresh lease", "key", key, "err", err)
				}
			}
			// Another instance may have refreshed between our look in the
			// store and taking the lease: look again before fetching.
			if c, found := m.load(ctx, key, rejected); found && c.fresh(m.now()) {
				release()
				return c, nil, true
			}
			return cached{}, release, false
		}
		// Another instance is fetching: wait for its token.
		t := time.NewTimer(m.leaseWait)
		select {
		case <-ctx.Done():
			t.Stop()
			return cached{}, nil, false
		case <-t.C:
		}
		if c, found := m.load(ctx, key, rejected); found && c.fresh(m.now()) {
			m.log.DebugContext(ctx, "platform access token refreshed by another instance", "key", key)
			return c, nil, true
		}
	}
}
