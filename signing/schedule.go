package signing

import (
	"slices"
	"time"

	"github.com/go-jose/go-jose/v4"
)

// Schedule constants.
const (
	// Lead is how long a key is published before it signs: far beyond the
	// 5 minutes verifiers are told to cache the JWK set, and beyond the
	// hours some gateways keep it whatever they are told, so that no
	// verifier meets a token whose key it has not fetched.
	Lead = 24 * time.Hour
	// MinRotation is the shortest rotation period: a key must be
	// published Lead before it signs, so rotating faster would have
	// several next keys waiting at once.
	MinRotation = Lead
	// DefaultRotation is how long a key signs before the next one does.
	DefaultRotation = 720 * time.Hour
	// Leeway is the clock skew verifiers allow on exp.
	Leeway = 30 * time.Second
	// ReloadEvery is how often an instance reloads the set: as often as
	// verifiers refetch the JWK set, so that a key added or revoked by
	// another instance (or by mplogin keys rotate) is seen as soon.
	ReloadEvery = 5 * time.Minute
)

// Policy is the schedule's parameters.
type Policy struct {
	Algorithm jose.SignatureAlgorithm // of new keys
	Rotation  time.Duration           // how long a key signs
	// MaxTokenTTL is the longest lifetime of a JWT signed with the keys.
	MaxTokenTTL time.Duration
}

// keep is how long a key stays published after it stopped signing: the
// longest JWT it signed then, the verifiers' leeway, and the time another
// instance may still sign with it before it reloads a forced rotation.
func (p Policy) keep() time.Duration { return p.MaxTokenTTL + Leeway + ReloadEvery }

func sortKeys(keys []*Key) {
	slices.SortStableFunc(keys, func(a, b *Key) int { return a.SignFrom.Compare(b.SignFrom) })
}

// view is what a set of keys (in order of SignFrom) means at now.
type view struct {
	current   *Key   // signs now; nil when no key has started
	next      *Key   // the first key yet to sign; nil when none
	published []*Key // next, current and the previous still kept
	expired   []*Key // superseded longer than keep ago
}

func viewAt(keys []*Key, now time.Time, keep time.Duration) view {
	var v view
	for i, k := range keys {
		if k.SignFrom.After(now) {
			if v.next == nil {
				v.next = k
			}
			v.published = append(v.published, k)
			continue
		}
		// k has started; it is superseded once a later key has.
		if i+1 < len(keys) && !keys[i+1].SignFrom.After(now) {
			if !keys[i+1].SignFrom.Add(keep).After(now) {
				v.expired = append(v.expired, k)
				continue
			}
		} else {
			v.current = k
		}
		v.published = append(v.published, k)
	}
	return v
}

// plan returns the set that should be stored at now, and whether it
// differs from keys: a first key that signs at once, a next key when there
// is none (or it has another algorithm than p's and has not started), and
// retired keys dropped once past their keep.
func plan(keys []*Key, now time.Time, p Policy) ([]*Key, bool, error) {
	v := viewAt(keys, now, p.keep())
	out := slices.DeleteFunc(slices.Clone(keys), func(k *Key) bool { return slices.Contains(v.expired, k) })
	changed := len(out) != len(keys)
	if v.current == nil && v.next != nil {
		// Only keys yet to sign (the current one was removed by hand):
		// the waiting key signs now rather than nothing signing.
		k := *v.next
		k.SignFrom = now
		out[slices.Index(out, v.next)] = &k
		v.current, v.next, changed = &k, nil, true
	}
	if v.current == nil {
		k, err := generate(p.Algorithm, now, now) // the deployment's first key
		if err != nil {
			return nil, false, err
		}
		out, v.current, changed = append(out, k), k, true
	}
	if v.next != nil && v.next.Algorithm != p.Algorithm {
		// The configured algorithm changed: the waiting key gives way to
		// one of the new algorithm, no sooner than it would have signed.
		signFrom := maxTime(v.next.SignFrom, now.Add(Lead))
		out = slices.DeleteFunc(out, func(k *Key) bool { return k == v.next })
		v.next, changed = nil, true
		k, err := generate(p.Algorithm, now, signFrom)
		if err != nil {
			return nil, false, err
		}
		out, v.next = append(out, k), k
	}
	if v.next == nil {
		from := now.Add(Lead)
		if v.current != nil {
			from = maxTime(from, v.current.SignFrom.Add(p.Rotation))
		}
		k, err := generate(p.Algorithm, now, from)
		if err != nil {
			return nil, false, err
		}
		out, changed = append(out, k), true
	}
	sortKeys(out)
	return out, changed, nil
}

func maxTime(a, b time.Time) time.Time {
	if a.After(b) {
		return a
	}
	return b
}
