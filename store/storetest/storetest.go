// Package storetest is the conformance suite every store.Store backend runs.
//
// A backend's test calls Run with a constructor that returns a fresh, empty
// store; Run checks the behaviour documented in package store, including the
// atomicity of UpsertIdentity, RotateRefresh, AddDecryptFailure and
// ReserveDecryptAttempt under concurrent callers:
//
//	func TestConformance(t *testing.T) {
//		storetest.Run(t, func(t *testing.T) store.Store { return memory.New() })
//	}
//
// Where package store leaves a choice open, the suite pins the reference
// behaviour of store/memory: a second revocation (by RevokeSession or by a
// replayed refresh token) keeps the first RevokedAt; a canceled context
// fails with an error that wraps context.Canceled, an expired deadline with
// one that wraps both store.ErrUnavailable and context.DeadlineExceeded; an
// empty byte slice means "none", like nil; and the store keeps its own
// copies of the byte slices it is given and returns.
//
// RevokeUserSessions is checked against refreshes of the user's sessions
// running at the same time: every session ends revoked, and no rotation
// begun after the revocation returned succeeds.
//
// PutSigningKeys is checked to be a compare-and-swap on the version: of
// concurrent puts over one version exactly one wins.
//
// The operator's methods (group Admin) are checked end to end: an erased
// user leaves nothing any lookup finds, and a merge concurrent with logins
// of both users leaves every identity, and (but on a split store, see
// store.Split) every session, on the user merged into. WriteEraseFixture
// gives the backends' own tests the same erased user to look for in their
// raw storage.
//
// DeleteAccessToken is checked to be a compare-and-delete: a newer value
// stored under the key survives a delete of an older one.
//
// The suite uses fixed times (a base time plus offsets), never the clock, and
// never sleeps. Inputs are truncated to microseconds, the precision every
// backend must keep.
package storetest

import (
	"bytes"
	"crypto/sha256"
	"errors"
	"fmt"
	"reflect"
	"testing"
	"time"

	"github.com/mplogin/mplogin/platform"
	"github.com/mplogin/mplogin/store"
)

// base is the suite's "now". It has a sub-second part so that a backend that
// drops microseconds is caught.
var base = time.Date(2025, time.March, 14, 9, 26, 53, 589793000, time.UTC)

// at returns base+d.
func at(d time.Duration) time.Time { return base.Add(d) }

const (
	hour = time.Hour
	day  = 24 * time.Hour
)

type test struct {
	name string
	run  func(t *testing.T, s store.Store)
}

// An Option tells Run where a backend may differ from the reference.
type Option func(*options)

type options struct {
	splitLogin bool
}

// SplitLogin is for a store whose WriteLogin writes the identity apart from
// the code and the session (store.Split): a login whose session cannot be
// stored may leave its identity, though never its code.
func SplitLogin() Option { return func(o *options) { o.splitLogin = true } }

// Run runs the conformance suite as subtests of t. Each subtest gets its own
// store from newStore and closes it when it ends; Close must therefore
// tolerate being called a second time (one subtest closes its store itself).
func Run(t *testing.T, newStore func(t *testing.T) store.Store, opts ...Option) {
	var o options
	for _, f := range opts {
		f(&o)
	}
	groups := []struct {
		name  string
		tests []test
	}{
		{"UpsertIdentity", identityTests},
		{"Get", getTests},
		{"Session", sessionTests},
		{"RotateRefresh", rotateTests},
		{"RevokeSession", revokeTests},
		{"DecryptFailures", decryptFailureTests},
		{"DecryptAttempts", attemptTests},
		{"Code", codeTests},
		{"Replay", replayTests},
		{"Grace", graceTests},
		{"Origin", originTests},
		{"Keep", keepTests},
		{"WriteLogin", loginTests(o)},
		{"AccessToken", accessTokenTests},
		{"Lease", leaseTests},
		{"SigningKeys", signingKeyTests},
		{"Phone", phoneTests},
		{"DeleteExpired", deleteTests},
		{"RoundTrip", roundTripTests},
		{"Context", contextTests},
		{"Admin", adminTests(o)},
	}
	for _, g := range groups {
		t.Run(g.name, func(t *testing.T) {
			for _, tc := range g.tests {
				t.Run(tc.name, func(t *testing.T) {
					s := newStore(t)
					t.Cleanup(func() {
						if err := s.Close(); err != nil {
							t.Errorf("Close: %v", err)
						}
					})
					tc.run(t, s)
				})
			}
		})
	}
}

// hash returns SHA-256 of s: the shape of a code hash, and of a token hash
// without the time in front (a store treats every hash as opaque bytes).
func hash(s string) []byte {
	h := sha256.Sum256([]byte(s))
	return h[:]
}

// sealed returns an opaque blob standing for a sealed session key.
func sealed(s string) []byte { return []byte("sealed:" + s) }

// newSession returns a live session (refresh valid for 30 days, absolute end
// in 90) with hashes derived from id.
func newSession(id string) store.Session {
	return store.Session{
		ID:               id,
		UserID:           "user-" + id,
		App:              "main",
		Family:           "wechat",
		AppID:            "wx0123456789",
		OpenID:           "open-" + id,
		UnionID:          "union-" + id,
		AccessHash:       hash("mpa_0_" + id),
		AccessExpiresAt:  at(2 * hour),
		RefreshHash:      hash("mpr_0_" + id),
		RefreshExpiresAt: at(30 * day),
		CreatedAt:        base,
		ExpiresAt:        at(90 * day),
		LastUsedAt:       base,
	}
}

// rotation returns a Rotation of old at now to tokens named by gen.
func rotation(old []byte, gen string, now time.Time) store.Rotation {
	return store.Rotation{
		OldRefreshHash:   old,
		NewAccessHash:    hash("mpa_" + gen),
		AccessExpiresAt:  now.Add(2 * hour),
		NewRefreshHash:   hash("mpr_" + gen),
		RefreshExpiresAt: now.Add(30 * day),
		Now:              now,
	}
}

// apply returns s as RotateRefresh must leave it after r.
func apply(s store.Session, r store.Rotation) store.Session {
	s.AccessHash = r.NewAccessHash
	s.AccessExpiresAt = r.AccessExpiresAt
	s.RefreshHash = r.NewRefreshHash
	s.RefreshExpiresAt = r.RefreshExpiresAt
	s.LastUsedAt = r.Now
	return s
}

func mustUpsert(t *testing.T, s store.Store, in store.IdentityUpsert) (store.Identity, bool) {
	t.Helper()
	id, created, err := s.UpsertIdentity(t.Context(), in)
	if err != nil {
		t.Fatalf("UpsertIdentity(%s/%s/%s): %v", in.Family, in.AppID, in.OpenID, err)
	}
	return id, created
}

func mustIdentity(t *testing.T, s store.Store, family platform.Family, appID, openID string) store.Identity {
	t.Helper()
	id, err := s.GetIdentity(t.Context(), family, appID, openID)
	if err != nil {
		t.Fatalf("GetIdentity(%s/%s/%s): %v", family, appID, openID, err)
	}
	return id
}

func mustCreateSession(t *testing.T, s store.Store, sess store.Session) {
	t.Helper()
	if err := s.CreateSession(t.Context(), sess); err != nil {
		t.Fatalf("CreateSession(%s): %v", sess.ID, err)
	}
}

func mustSessionByID(t *testing.T, s store.Store, id string) store.Session {
	t.Helper()
	sess, err := s.SessionByID(t.Context(), id)
	if err != nil {
		t.Fatalf("SessionByID(%s): %v", id, err)
	}
	return sess
}

func mustRotate(t *testing.T, s store.Store, r store.Rotation) store.Session {
	t.Helper()
	sess, err := s.RotateRefresh(t.Context(), r)
	if err != nil {
		t.Fatalf("RotateRefresh: %v", err)
	}
	return sess
}

// wantErr fails t unless err matches target (errors.Is).
func wantErr(t *testing.T, what string, err, target error) {
	t.Helper()
	if !errors.Is(err, target) {
		t.Fatalf("%s: err = %v, want %v", what, err, target)
	}
}

// wantEqual fails t when want and got differ; see diff.
func wantEqual(t *testing.T, what string, want, got any) {
	t.Helper()
	if d := diff(want, got); len(d) > 0 {
		t.Fatalf("%s differs:\n%s", what, joinLines(d))
	}
}

func joinLines(lines []string) string {
	var b bytes.Buffer
	for _, l := range lines {
		b.WriteString("  ")
		b.WriteString(l)
		b.WriteByte('\n')
	}
	return b.String()
}

var (
	timeType  = reflect.TypeFor[time.Time]()
	bytesType = reflect.TypeFor[[]byte]()
)

// diff compares two values of the same struct type field by field and
// describes the differences. Times compare with Equal (a backend may return
// another location) and byte slices by content, nil and empty alike (both
// mean "none"). Reflection keeps the comparison complete when a field is
// added to a store type.
func diff(want, got any) []string {
	wv, gv := reflect.ValueOf(want), reflect.ValueOf(got)
	if wv.Type() != gv.Type() {
		return []string{fmt.Sprintf("type %v, want %v", gv.Type(), wv.Type())}
	}
	var out []string
	for i := range wv.NumField() {
		f := wv.Type().Field(i)
		w, g := wv.Field(i), gv.Field(i)
		switch f.Type {
		case timeType:
			wt, gt := w.Interface().(time.Time), g.Interface().(time.Time)
			if !wt.Equal(gt) || wt.IsZero() != gt.IsZero() {
				out = append(out, fmt.Sprintf("%s: got %v, want %v", f.Name, gt, wt))
			}
		case bytesType:
			if !bytes.Equal(w.Bytes(), g.Bytes()) {
				out = append(out, fmt.Sprintf("%s: got %x, want %x", f.Name, g.Bytes(), w.Bytes()))
			}
		default:
			if !reflect.DeepEqual(w.Interface(), g.Interface()) {
				out = append(out, fmt.Sprintf("%s: got %#v, want %#v", f.Name, g.Interface(), w.Interface()))
			}
		}
	}
	return out
}

func isNotFound(err error) bool { return errors.Is(err, store.ErrNotFound) }

// timeOffset names an offset from base, for table tests.
type timeOffset struct {
	name string
	d    time.Duration
}
