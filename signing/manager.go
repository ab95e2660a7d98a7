package signing

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"sync"
	"time"

	"github.com/go-jose/go-jose/v4"

	"github.com/mplogin/mplogin/store"
)

// LeaseKey is the store lease under which one instance changes the set.
const LeaseKey = "signing-keys"

// leaseFor bounds how long a change may hold the lease: generating an RSA
// key and one write take well under a second.
const leaseFor = time.Minute

// ErrNoKey: the manager has no key that signs now (it has not loaded the
// set yet, or the store could not give one).
var ErrNoKey = errors.New("signing: no signing key")

// Store is what the manager needs of the store.
type Store interface {
	store.SigningKeys
	AcquireLease(ctx context.Context, key, holder string, now, until time.Time) (bool, error)
	ReleaseLease(ctx context.Context, key, holder string) error
}

// Config assembles a Manager.
type Config struct {
	Store Store
	Keys  Sealer // the master-key keyring
	// Algorithm of new keys: ES256 (the default when empty) or RS256.
	Algorithm jose.SignatureAlgorithm
	// Rotation is how long a key signs; 0 = DefaultRotation; at least
	// MinRotation.
	Rotation time.Duration
	// MaxTokenTTL is the longest lifetime of a JWT signed with the keys;
	// required.
	MaxTokenTTL time.Duration
	Now         func() time.Time // nil = time.Now
	Logger      *slog.Logger     // nil = discard
}

// Manager keeps the instance's copy of the key set, shared through the
// store with every other instance. It is safe for concurrent use.
type Manager struct {
	st     Store
	sealer Sealer
	policy Policy
	now    func() time.Time
	log    *slog.Logger
	holder string

	mu      sync.RWMutex
	keys    []*Key // in order of SignFrom; never changed once set
	version int64
}

// New returns a manager; nothing is loaded until Refresh or Run.
func New(cfg Config) (*Manager, error) {
	p := Policy{Algorithm: cfg.Algorithm, Rotation: cfg.Rotation, MaxTokenTTL: cfg.MaxTokenTTL}
	if p.Algorithm == "" {
		p.Algorithm = ES256
	}
	if p.Rotation == 0 {
		p.Rotation = DefaultRotation
	}
	switch {
	case cfg.Store == nil || cfg.Keys == nil:
		return nil, errors.New("signing: a store and a keyring are required")
	case p.Algorithm != ES256 && p.Algorithm != RS256:
		return nil, fmt.Errorf("signing: unsupported algorithm %q (ES256 or RS256)", p.Algorithm)
	case p.Rotation < MinRotation:
		return nil, fmt.Errorf("signing: rotation %s is shorter than %s", p.Rotation, MinRotation)
	case p.MaxTokenTTL <= 0:
		return nil, errors.New("signing: the longest token lifetime must be more than 0")
	}
	var id [8]byte
	_, _ = rand.Read(id[:])
	m := &Manager{st: cfg.Store, sealer: cfg.Keys, policy: p, now: cfg.Now, log: cfg.Logger, holder: hex.EncodeToString(id[:])}
	if m.now == nil {
		m.now = time.Now
	}
	if m.log == nil {
		m.log = slog.New(slog.DiscardHandler)
	}
	return m, nil
}

// Policy returns the schedule the manager keeps.
func (m *Manager) Policy() Policy { return m.policy }

// Run refreshes the set now and every ReloadEvery until ctx is done. A
// failed refresh is logged and tried again sooner, after a tenth of that.
func (m *Manager) Run(ctx context.Context) {
	for {
		wait := ReloadEvery
		if err := m.Refresh(ctx); err != nil {
			if ctx.Err() != nil {
				return
			}
			m.log.WarnContext(ctx, "signing keys: refresh failed", "error", err)
			wait = ReloadEvery / 10
		}
		t := time.NewTimer(wait)
		select {
		case <-ctx.Done():
			t.Stop()
			return
		case <-t.C:
		}
	}
}

// Refresh loads the set and, when the schedule asks for a change (no key,
// no next key, a retired key past its keep), makes it: under the lease, on
// the set as stored, with a compare-and-swap. An instance that does not get
// the lease, or loses the swap, uses what the winner stored.
func (m *Manager) Refresh(ctx context.Context) error {
	keys, version, err := m.load(ctx)
	if err != nil {
		return err
	}
	now := m.now()
	if _, changed, err := plan(keys, now, m.policy); err != nil {
		return err
	} else if !changed {
		m.set(keys, version)
		return nil
	}
	for try := 0; ; try++ {
		won, err := m.change(ctx, func(keys []*Key, now time.Time) ([]*Key, bool, error) {
			return plan(keys, now, m.policy)
		})
		// Another instance holds the lease. A set without a key that signs
		// is worth waiting a moment for (every instance of a new
		// deployment starts at once); anything else waits for the next
		// refresh.
		if err != nil || won || try == firstKeyTries {
			return err
		}
		if _, err := m.Signer(m.now()); err == nil {
			return nil
		}
		t := time.NewTimer(firstKeyWait)
		select {
		case <-ctx.Done():
			t.Stop()
			return ctx.Err()
		case <-t.C:
		}
	}
}

// While another instance makes the first keys, Refresh waits for them this
// many times this long.
const (
	firstKeyTries = 20
	firstKeyWait  = 250 * time.Millisecond
)

// kidOf names a key in logs; "" for none.
func kidOf(k *Key) string {
	if k == nil {
		return ""
	}
	return k.KID
}

// RotateResult is what Rotate did.
type RotateResult struct {
	Current *Key     // the key that signs from now on
	Next    *Key     // the key made to follow it
	Removed []string // kids that left the published set
}

// Rotate makes the next key sign at once (a key that was never published
// if there is none) and a new next key. With revokeCurrent the key that
// signed until now leaves the published set at once: JWTs it signed stop
// verifying as soon as verifiers reload the set. Other instances sign with
// the new key once they reload (ReloadEvery at most).
func (m *Manager) Rotate(ctx context.Context, revokeCurrent bool) (RotateResult, error) {
	var res RotateResult
	_, err := m.change(ctx, func(keys []*Key, now time.Time) ([]*Key, bool, error) {
		res = RotateResult{}
		keep := m.policy.keep()
		before := viewAt(keys, now, keep)
		out := slices.Clone(keys)
		if before.next != nil {
			k := *before.next
			k.SignFrom = now
			out[slices.Index(out, before.next)] = &k
		} else {
			k, err := generate(m.policy.Algorithm, now, now)
			if err != nil {
				return nil, false, err
			}
			out = append(out, k)
		}
		if revokeCurrent && before.current != nil {
			out = slices.DeleteFunc(out, func(k *Key) bool { return k == before.current })
		}
		sortKeys(out)
		// Drop what has expired, and add the new next key.
		out, _, err := plan(out, now, m.policy)
		if err != nil {
			return nil, false, err
		}
		after := viewAt(out, now, keep)
		res.Current, res.Next = after.current, after.next
		for _, k := range before.published {
			if !slices.ContainsFunc(after.published, func(a *Key) bool { return a.KID == k.KID }) {
				res.Removed = append(res.Removed, k.KID)
			}
		}
		return out, true, nil
	})
	if err != nil {
		return RotateResult{}, err
	}
	m.log.InfoContext(ctx, "signing keys rotated", "current", kidOf(res.Current), "next", kidOf(res.Next),
		"removed", res.Removed, "revoke_current", revokeCurrent)
	return res, nil
}

// change applies fn to the stored set under the lease and, when fn changed
// it, writes the result with a compare-and-swap, then keeps it. Without the
// lease, or after a lost swap, it reloads and returns false.
func (m *Manager) change(ctx context.Context, fn func(keys []*Key, now time.Time) ([]*Key, bool, error)) (bool, error) {
	now := m.now()
	ok, err := m.st.AcquireLease(ctx, LeaseKey, m.holder, now, now.Add(leaseFor))
	if err != nil {
		return false, fmt.Errorf("signing: lease: %w", err)
	}
	if !ok {
		// Another instance is changing the set: use what is stored.
		keys, version, err := m.load(ctx)
		if err == nil {
			m.set(keys, version)
		}
		return false, err
	}
	defer func() {
		if err := m.st.ReleaseLease(context.WithoutCancel(ctx), LeaseKey, m.holder); err != nil {
			m.log.WarnContext(ctx, "signing keys: releasing the lease failed", "error", err)
		}
	}()
	keys, version, err := m.load(ctx)
	if err != nil {
		return false, err
	}
	out, changed, err := fn(keys, now)
	if err != nil {
		return false, err
	}
	if !changed {
		// Another instance made the change while this one waited.
		m.set(keys, version)
		return true, nil
	}
	sealed, err := seal(m.sealer, out)
	if err != nil {
		return false, err
	}
	won, err := m.st.PutSigningKeys(ctx, store.SigningKeySet{Sealed: sealed, Version: version + 1, UpdatedAt: now}, version)
	if err != nil {
		return false, fmt.Errorf("signing: store the key set: %w", err)
	}
	if !won {
		keys, version, err := m.load(ctx)
		if err == nil {
			m.set(keys, version)
		}
		return false, err
	}
	m.set(out, version+1)
	v := viewAt(out, now, m.policy.keep())
	m.log.InfoContext(ctx, "signing keys changed", "version", version+1, "current", kidOf(v.current), "next", kidOf(v.next),
		"published", len(v.published))
	return true, nil
}

// load reads and opens the stored set; none is an empty set of version 0.
func (m *Manager) load(ctx context.Context) ([]*Key, int64, error) {
	set, err := m.st.GetSigningKeys(ctx)
	if errors.Is(err, store.ErrNotFound) {
		return nil, 0, nil
	}
	if err != nil {
		return nil, 0, fmt.Errorf("signing: load the key set: %w", err)
	}
	// The set as loaded is kept unless it changed since.
	m.mu.RLock()
	keys, version := m.keys, m.version
	m.mu.RUnlock()
	if version == set.Version && keys != nil {
		return keys, version, nil
	}
	keys, err = open(m.sealer, set.Sealed)
	if err != nil {
		return nil, 0, err
	}
	return keys, set.Version, nil
}

func (m *Manager) set(keys []*Key, version int64) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if version >= m.version {
		m.keys, m.version = keys, version
	}
}

func (m *Manager) view(now time.Time) view {
	m.mu.RLock()
	keys := m.keys
	m.mu.RUnlock()
	return viewAt(keys, now, m.policy.keep())
}

// Signer returns the key that signs at now: the latest of the set to have
// reached its SignFrom. ErrNoKey before the set is loaded.
func (m *Manager) Signer(now time.Time) (Key, error) {
	v := m.view(now)
	if v.current == nil {
		return Key{}, ErrNoKey
	}
	return *v.current, nil
}

// Published returns the public keys published at now: next, current and
// previous.
func (m *Manager) Published(now time.Time) []jose.JSONWebKey {
	v := m.view(now)
	out := make([]jose.JSONWebKey, 0, len(v.published))
	for _, k := range v.published {
		out = append(out, k.pub)
	}
	return out
}

// JWKS returns the published keys as a JWK set (RFC 7517), public halves
// only, each with kid, alg and use sig.
func (m *Manager) JWKS(now time.Time) ([]byte, error) {
	return MarshalJWKS(m.Published(now))
}

// Algorithms returns the algorithms of the published keys and of new keys,
// for the metadata.
func (m *Manager) Algorithms(now time.Time) []string {
	algs := []string{string(m.policy.Algorithm)}
	for _, k := range m.view(now).published {
		if !slices.Contains(algs, string(k.Algorithm)) {
			algs = append(algs, string(k.Algorithm))
		}
	}
	return algs
}

// MarshalJWKS encodes keys as a JWK set, refusing any that holds private
// material: a published private key signs for anyone.
func MarshalJWKS(keys []jose.JSONWebKey) ([]byte, error) {
	set := jose.JSONWebKeySet{Keys: make([]jose.JSONWebKey, 0, len(keys))}
	for _, k := range keys {
		if !k.IsPublic() {
			return nil, errors.New("signing: refusing to publish a private key")
		}
		set.Keys = append(set.Keys, k)
	}
	b, err := json.Marshal(set)
	if err != nil {
		return nil, fmt.Errorf("signing: encode the JWK set: %w", err)
	}
	return b, nil
}
