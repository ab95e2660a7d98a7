package main

import (
	"context"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"math"
	mrand "math/rand/v2"
	"sync"
	"time"

	"github.com/mplogin/mplogin/emulator"
	"github.com/mplogin/mplogin/keyring"
	"github.com/mplogin/mplogin/platform"
	"github.com/mplogin/mplogin/server"
	"github.com/mplogin/mplogin/session"
	"github.com/mplogin/mplogin/store"
	redisstore "github.com/mplogin/mplogin/store/redis"
	"github.com/mplogin/mplogin/token"
)

// Populated users are written straight into the store, so that the
// scenarios can run against millions of them without logging each in
// through the service first. Everything about user i (ids, openid, tokens)
// derives from i and a seed kept in the store, so the harness regenerates
// any user's tokens instead of keeping them.

// populatedPool names the populated users for the emulator's open codes
// (m0, m1, …): a returning login of one finds its populated identity.
const populatedPool = "m"

// markerKey is the store row that records the populated users: an entry
// of the platform access token cache, the one table that every store keeps
// as plain key and bytes. No app's key looks like it.
const markerKey = "mplogin-bench:populated"

// populateBatch is how many users one write holds: on SQLite, one
// transaction each.
const populateBatch = 10_000

// Lifetimes of the populated sessions: long enough that a store populated
// once serves every later run.
const populatedTTL = 10 * 365 * 24 * time.Hour

// mintStep separates the minting times of consecutive users: the stores'
// indexes by token hash are in time order (package token), so the users
// are written in the order of those indexes.
const mintStep = 100 * time.Microsecond

// populated describes the users that a store holds: users 0 to Users-1.
type populated struct {
	Users int       `json:"users"`
	Seed  []byte    `json:"seed"`
	Base  time.Time `json:"base"` // user i was minted at Base + i × mintStep
	// Sealed: the access tokens are sealed, as the service mints them on
	// a store with a change log (SQLite alone).
	Sealed bool `json:"sealed,omitempty"`
	// UnionIDs: the identities carry the unionid that the emulator gives
	// their users, as a returning user's identity does after its first
	// login. Stores populated before the harness wrote them have none.
	UnionIDs bool `json:"unionids,omitempty"`
}

func (p *populated) minted(i uint64) time.Time {
	return p.Base.Add(time.Duration(i) * mintStep)
}

// derive is 32 bytes that only the seed's holder can compute for user i.
func (p *populated) derive(what string, i uint64) [sha256.Size]byte {
	m := hmac.New(sha256.New, p.Seed)
	var b [8]byte
	binary.BigEndian.PutUint64(b[:], i)
	m.Write([]byte(what))
	m.Write(b[:])
	var sum [sha256.Size]byte
	m.Sum(sum[:0])
	return sum
}

// token is user i's access (token.Access) or refresh (token.Refresh)
// token, in the format of token.New: its minting time, then 32 bytes, here
// derived instead of random.
func (p *populated) token(prefix string, i uint64) string {
	var b [6 + sha256.Size]byte
	token.PutMillis(b[:], p.minted(i))
	sum := p.derive(prefix, i)
	copy(b[6:], sum[:])
	return prefix + base64.RawURLEncoding.EncodeToString(b[:])
}

// sealer seals populated users' access tokens as the service would, with
// a nonce derived from the user instead of a random one, so that the
// harness mints the same token again when it presents it. One per
// goroutine.
type sealer struct {
	keys  *keyring.Keyring
	nonce fixedReader
	emu   *emulator.Emulator
}

// fixedReader reads its bytes, again and again.
type fixedReader struct{ b []byte }

func (r *fixedReader) Read(p []byte) (int, error) { return copy(p, r.b), nil }

func newSealer(key []byte) (*sealer, error) {
	s := &sealer{emu: emulator.New(emulator.Config{})}
	k, err := keyring.New(&s.nonce, key)
	if err != nil {
		return nil, err
	}
	s.keys = k
	return s, nil
}

// access is user i's access token and its hash: sealed with sl when the
// populated tokens are, in the format of token.New otherwise.
func (p *populated) access(sl *sealer, i uint64) (string, []byte, error) {
	if !p.Sealed {
		raw := p.token(token.Access, i)
		h, ok := token.Parse(raw, token.Access)
		if !ok {
			return "", nil, errors.New("a derived token does not parse")
		}
		return raw, h, nil
	}
	nonce := p.derive("nonce", i)
	sl.nonce.b = nonce[:12]
	_, sess := p.rowOf(sl.emu, i)
	return session.SealedAccess(sl.keys, sess, p.minted(i))
}

// id is user i's user or session id, time-ordered like the service's.
func (p *populated) id(what string, i uint64) string {
	var b [16]byte
	token.PutMillis(b[:], p.minted(i))
	sum := p.derive(what, i)
	copy(b[6:], sum[:])
	return hex.EncodeToString(b[:])
}

func populatedUser(i uint64) string { return poolUser(populatedPool, i) }

// row is user i as stored: the identity (its user created with it) and
// its one live session.
func (p *populated) row(sl *sealer, i uint64) (store.Identity, store.Session, error) {
	id, sess := p.rowOf(sl.emu, i)
	_, access, err := p.access(sl, i)
	if err != nil {
		return store.Identity{}, store.Session{}, err
	}
	refresh, ok := token.Parse(p.token(token.Refresh, i), token.Refresh)
	if !ok {
		return store.Identity{}, store.Session{}, errors.New("a derived token does not parse")
	}
	sess.AccessHash, sess.RefreshHash = access, refresh
	return id, sess, nil
}

// rowOf is row without the token hashes.
func (p *populated) rowOf(emu *emulator.Emulator, i uint64) (store.Identity, store.Session) {
	at := p.minted(i)
	id := store.Identity{Family: platform.Family("wechat"), AppID: benchAppID,
		OpenID: emu.OpenID("wechat", benchAppID, populatedUser(i)), UserID: p.id("user", i),
		CreatedAt: at, UpdatedAt: at}
	if p.UnionIDs {
		id.UnionID = emu.UnionID("wechat", benchAppID, populatedUser(i))
	}
	sess := store.Session{ID: p.id("session", i), UserID: id.UserID, App: benchApp,
		Family: id.Family, AppID: id.AppID, OpenID: id.OpenID, UnionID: id.UnionID,
		AccessExpiresAt: p.Base.Add(populatedTTL), RefreshExpiresAt: p.Base.Add(populatedTTL),
		CreatedAt: at, LastUsedAt: at}
	return id, sess
}

// bulkInserter is the bulk loader of the SQLite and PostgreSQL stores
// (their BulkInsert).
type bulkInserter interface {
	BulkInsert(ctx context.Context, ids []store.Identity, sessions []store.Session) error
}

// bulkFunc writes a batch of new users with their sessions.
type bulkFunc func(ctx context.Context, ids []store.Identity, sessions []store.Session) error

// populateStore makes sure that the store (dsn, and sessions when not
// empty) holds at least users populated users, adding those it lacks, and
// returns what it holds, with a sealer for its tokens. It opens the store
// itself, and closes it before it returns: a SQLite file is then free for
// the service. key is the service's master key, which seals the access
// tokens of a new SQLite store's users.
func populateStore(ctx context.Context, dsn, sessions string, users int, key []byte, logf func(string, ...any)) (_ *populated, err error) {
	durable, err := server.OpenStore(ctx, dsn, slog.New(slog.DiscardHandler))
	if err != nil {
		return nil, err
	}
	st := durable
	var bulk bulkFunc
	db, _ := durable.(bulkInserter)
	if db != nil {
		bulk = db.BulkInsert
	}
	if sessions != "" {
		rs, err := redisstore.Open(ctx, sessions, redisstore.Options{})
		if err != nil {
			durable.Close()
			return nil, fmt.Errorf("sessions: %w", err)
		}
		st, bulk = store.Split(durable, rs), nil
		if db != nil {
			// Users and identities in one, sessions in the other, like
			// Split's WriteLogin.
			bulk = func(ctx context.Context, ids []store.Identity, sessions []store.Session) error {
				if err := db.BulkInsert(ctx, ids, nil); err != nil {
					return err
				}
				return rs.BulkCreateSessions(ctx, sessions)
			}
		}
	}
	defer func() { err = errors.Join(err, st.Close()) }()

	p, err := readMarker(ctx, st)
	if err != nil {
		return nil, err
	}
	if p == nil {
		p = &populated{UnionIDs: true, Seed: make([]byte, 32), Base: time.Now().UTC().Add(-time.Duration(users) * mintStep).Truncate(time.Millisecond)}
		if _, ok := durable.(store.ChangeLog); ok && sessions == "" {
			// The service seals access tokens on this store, and vouches
			// only for those minted since its change log began (when the
			// file was made, just now): the users are minted from now on.
			p.Sealed, p.Base = true, time.Now().UTC().Truncate(time.Millisecond).Add(time.Millisecond)
		}
		if _, err := rand.Read(p.Seed); err != nil {
			return nil, err
		}
	}
	sl, err := newSealer(key)
	if err != nil {
		return nil, err
	}
	if p.Users >= users {
		logf("the store holds %d populated users already", p.Users)
		return p, checkPopulated(ctx, st, p, sl)
	}
	logf("populating users %d to %d", p.Users, users-1)
	start, from := time.Now(), p.Users
	// One goroutine derives the next batch while the store writes this one.
	type batch struct {
		from     int
		ids      []store.Identity
		sessions []store.Session
	}
	gctx, cancel := context.WithCancel(ctx)
	batches := make(chan batch, 1)
	var genErr error
	var wg sync.WaitGroup
	defer func() {
		cancel()
		wg.Wait()
	}()
	wg.Go(func() {
		defer close(batches)
		for k := p.Users; k < users; k += populateBatch {
			b := batch{from: k}
			for i := k; i < min(k+populateBatch, users); i++ {
				id, sess, err := p.row(sl, uint64(i))
				if err != nil {
					genErr = err
					return
				}
				b.ids, b.sessions = append(b.ids, id), append(b.sessions, sess)
			}
			select {
			case batches <- b:
			case <-gctx.Done():
				return
			}
		}
	})
	resuming := p.Users > 0
	for b := range batches {
		if bulk != nil && !resuming {
			err = bulk(ctx, b.ids, b.sessions)
		} else {
			// Resuming after an interruption, the first batch may be
			// written, wholly or in part, without the marker saying so:
			// the one-by-one writes find what is there and skip it.
			err = insertEach(ctx, st, b.ids, b.sessions, resuming)
		}
		if err != nil {
			return nil, fmt.Errorf("populating users %d to %d: %w", b.from, b.from+len(b.ids)-1, err)
		}
		resuming = false
		p.Users = b.from + len(b.ids)
		if err := writeMarker(ctx, st, p); err != nil {
			return nil, err
		}
		if n := p.Users - from; n%(10*populateBatch) == 0 || p.Users == users {
			el := time.Since(start)
			logf("populated %d users (%d in %v, %.0f/s)", p.Users, n, el.Round(time.Millisecond), float64(n)/el.Seconds())
		}
	}
	if genErr != nil {
		return nil, genErr
	}
	return p, checkPopulated(ctx, st, p, sl)
}

// insertEach writes the batch through the Store's own methods, from
// several goroutines: for the stores without a bulk loader. With resuming,
// rows already written are skipped.
func insertEach(ctx context.Context, st store.Store, ids []store.Identity, sessions []store.Session, resuming bool) error {
	return forEach(ctx, 64, len(ids), func(k int) error {
		return insertOne(ctx, st, ids[k], sessions[k], resuming)
	})
}

func insertOne(ctx context.Context, st store.Store, id store.Identity, sess store.Session, resuming bool) error {
	if resuming {
		if _, err := st.SessionByAccess(ctx, sess.AccessHash); err == nil {
			return nil
		}
	}
	got, _, err := st.UpsertIdentity(ctx, store.IdentityUpsert{Family: id.Family, AppID: id.AppID, OpenID: id.OpenID, UnionID: id.UnionID,
		NewUserID: id.UserID, Now: id.CreatedAt})
	if err != nil {
		return err
	}
	if got.UserID != id.UserID {
		return fmt.Errorf("identity %s belongs to user %s, not %s: the store holds other users", id.OpenID, got.UserID, id.UserID)
	}
	return st.CreateSession(ctx, sess)
}

// addExpired writes n sessions of populated users, picked at random, that
// ended an hour ago: what a month of logins leaves for the janitor. Their
// tokens are random (nobody presents them), their ids and hashes as old as
// they pretend to be, so they sit where such sessions sit in the indexes.
func addExpired(ctx context.Context, dsn string, p *populated, n int, logf func(string, ...any)) (err error) {
	st, err := server.OpenStore(ctx, dsn, slog.New(slog.DiscardHandler))
	if err != nil {
		return err
	}
	defer func() { err = errors.Join(err, st.Close()) }()
	db, ok := st.(bulkInserter)
	if !ok {
		return fmt.Errorf("the store %T has no bulk loader", st)
	}
	emu := emulator.New(emulator.Config{})
	now := time.Now().UTC()
	base := now.Add(-30 * 24 * time.Hour)
	step := 30 * 24 * time.Hour / time.Duration(n)
	start := time.Now()
	for k := 0; k < n; k += populateBatch {
		batch := make([]store.Session, 0, populateBatch)
		for i := k; i < min(k+populateBatch, n); i++ {
			at := base.Add(time.Duration(i) * step)
			_, access, err := token.New(rand.Reader, token.Access, at)
			if err != nil {
				return err
			}
			_, refresh, err := token.New(rand.Reader, token.Refresh, at)
			if err != nil {
				return err
			}
			var id [16]byte
			token.PutMillis(id[:], at)
			if _, err := rand.Read(id[6:]); err != nil {
				return err
			}
			u := uint64(mrand.IntN(p.Users))
			batch = append(batch, store.Session{ID: hex.EncodeToString(id[:]), UserID: p.id("user", u), App: benchApp,
				Family: platform.Family("wechat"), AppID: benchAppID, OpenID: emu.OpenID("wechat", benchAppID, populatedUser(u)),
				AccessHash: access, AccessExpiresAt: at.Add(2 * time.Hour),
				RefreshHash: refresh, RefreshExpiresAt: now.Add(-time.Hour),
				CreatedAt: at, LastUsedAt: at})
		}
		if err := db.BulkInsert(ctx, nil, batch); err != nil {
			return fmt.Errorf("writing dead sessions %d to %d: %w", k, k+len(batch)-1, err)
		}
	}
	logf("wrote %d dead sessions in %v", n, time.Since(start).Round(time.Millisecond))
	return nil
}

// checkPopulated checks that the first and the last even populated users'
// sessions are live: the marker could outlive the rows (a Redis flushed
// under a kept PostgreSQL, say).
func checkPopulated(ctx context.Context, st store.Store, p *populated, sl *sealer) error {
	now := time.Now()
	// The checked half only: the returning logins may end the odd users'
	// populated sessions at the cap.
	for _, i := range []uint64{0, uint64(p.Users-1) &^ 1} {
		_, want, err := p.row(sl, i)
		if err != nil {
			return err
		}
		sess, err := st.SessionByAccess(ctx, want.AccessHash)
		if err != nil {
			return fmt.Errorf("populated user %d of %d: %w (remove the store's data to populate it again)", i, p.Users, err)
		}
		if sess.ID != want.ID || !sess.Active(now) || !now.Before(sess.AccessExpiresAt) {
			return fmt.Errorf("populated user %d of %d: the session is not the one populated, or not live", i, p.Users)
		}
	}
	return nil
}

func readMarker(ctx context.Context, st store.Store) (*populated, error) {
	t, err := st.GetAccessToken(ctx, markerKey)
	if errors.Is(err, store.ErrNotFound) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("reading the populated users' marker: %w", err)
	}
	var p populated
	if err := json.Unmarshal(t.Sealed, &p); err != nil || len(p.Seed) == 0 || p.Users < 0 {
		return nil, fmt.Errorf("the populated users' marker does not decode: %v", err)
	}
	return &p, nil
}

func writeMarker(ctx context.Context, st store.Store, p *populated) error {
	b, err := json.Marshal(p)
	if err != nil {
		return err
	}
	end := p.Base.Add(populatedTTL)
	if err := st.PutAccessToken(ctx, store.AccessToken{Key: markerKey, Sealed: b, ExpiresAt: end, RefreshAt: end}); err != nil {
		return fmt.Errorf("writing the populated users' marker: %w", err)
	}
	return nil
}

// skewedPick is like pick, but not uniform: the user of rank k (from 0)
// comes with a probability in proportion to (k+1)^-s, s > 1, as a few users
// of a real app make most of its requests (a continuous Zipf law, drawn by
// inverting its distribution). Ranks land on users spread over the store.
func skewedPick(w int, n uint64, users int, s float64) uint64 {
	const one = 1 << 53
	u := float64(pick(w, n, one)) / one
	tail := math.Pow(float64(users)+1, 1-s)
	k := min(uint64(math.Pow(1-u*(1-tail), 1/(1-s))), uint64(users)) - 1
	return pick(-1, k, users) // a fixed scattering of the ranks
}

// pick is the populated user that request n of worker w goes to: uniform
// over the first users, and the same for the same (w, n) in every run.
func pick(w int, n uint64, users int) uint64 {
	// splitmix64's finaliser: consecutive inputs land far apart.
	z := uint64(w)<<40 ^ n + 0x9e3779b97f4a7c15
	z = (z ^ z>>30) * 0xbf58476d1ce4e5b9
	z = (z ^ z>>27) * 0x94d049bb133111eb
	return (z ^ z>>31) % uint64(users)
}
