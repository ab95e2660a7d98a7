package redis_test

import (
	"bytes"
	"encoding/hex"
	"errors"
	"reflect"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	goredis "github.com/redis/go-redis/v9"

	"github.com/mplogin/mplogin/store"
	"github.com/mplogin/mplogin/store/redis"
)

// legacyWriter writes sessions under prefix as the scripts of
// legacy_scripts_test.go did, for a store opened with the default
// ExpiryGrace.
type legacyWriter struct {
	c      *goredis.Client
	prefix string
}

func (l legacyWriter) run(t *testing.T, script *goredis.Script, args ...any) *goredis.Cmd {
	t.Helper()
	all := append([]any{l.prefix, time.Now().UnixMilli(), time.Minute.Milliseconds(),
		(100 * 365 * 24 * time.Hour).Milliseconds()}, args...)
	return script.Run(t.Context(), l.c, nil, all...)
}

// create stores sess as the legacy createSession did.
func (l legacyWriter) create(t *testing.T, sess store.Session) {
	t.Helper()
	n, err := l.run(t, legacyCreateScript, sess.ID, sess.UserID, sess.App, string(sess.Family), sess.AppID,
		sess.OpenID, sess.UnionID, hex.EncodeToString(sess.AccessHash), usec(sess.AccessExpiresAt),
		hex.EncodeToString(sess.RefreshHash), usec(sess.RefreshExpiresAt), usec(sess.CreatedAt),
		usec(sess.ExpiresAt), usec(sess.LastUsedAt), usec(sess.RevokedAt), strconv.Itoa(sess.DecryptFailures),
		sess.Origin).Int64()
	if err != nil || n != 0 {
		t.Fatalf("legacy create %s = %d, %v", sess.ID, n, err)
	}
	if typ := l.c.Type(t.Context(), l.prefix+"f:"+sess.ID).Val(); typ != "set" {
		t.Fatalf("legacy create %s: f: key of type %q", sess.ID, typ)
	}
}

// rotate rotates as the legacy rotateScript did; it must succeed.
func (l legacyWriter) rotate(t *testing.T, r store.Rotation) {
	t.Helper()
	res, err := l.run(t, legacyRotateScript, hex.EncodeToString(r.OldRefreshHash),
		hex.EncodeToString(r.NewAccessHash), usec(r.AccessExpiresAt),
		hex.EncodeToString(r.NewRefreshHash), usec(r.RefreshExpiresAt),
		usec(r.Now), r.Successor, usec(r.SuccessorUntil)).Result()
	if _, ok := res.(string); err != nil || !ok {
		t.Fatalf("legacy rotate = %v, %v", res, err)
	}
}

func (l legacyWriter) revoke(t *testing.T, id string, now time.Time) {
	t.Helper()
	if err := l.run(t, legacyRevokeScript, id, usec(now)).Err(); err != nil {
		t.Fatalf("legacy revoke: %v", err)
	}
}

func (l legacyWriter) decryptFailure(t *testing.T, id string) int64 {
	t.Helper()
	n, err := l.run(t, legacyDecryptFailureScript, id).Int64()
	if err != nil {
		t.Fatalf("legacy decrypt failure: %v", err)
	}
	return n
}

// usec encodes t as the scripts take times.
func usec(t time.Time) string {
	if t.IsZero() {
		return ""
	}
	return strconv.FormatInt(t.UnixMicro(), 10)
}

// firstRotation is the rotation at now of sess's first refresh token to
// the tokens named after name, with the successor succ (nil for none) for
// 30 seconds.
func firstRotation(sess store.Session, name string, now time.Time, succ []byte) store.Rotation {
	r := store.Rotation{
		OldRefreshHash: sess.RefreshHash, NewAccessHash: sha("mpa_" + name + "b"),
		AccessExpiresAt: now.Add(time.Hour), NewRefreshHash: sha("mpr_" + name + "b"),
		RefreshExpiresAt: now.Add(30 * day), Now: now,
	}
	if succ != nil {
		r.Successor, r.SuccessorUntil = succ, now.Add(30*time.Second)
	}
	return r
}

// rotated is sess after the rotation r.
func rotated(sess store.Session, r store.Rotation) store.Session {
	sess.AccessHash, sess.AccessExpiresAt = r.NewAccessHash, r.AccessExpiresAt
	sess.RefreshHash, sess.RefreshExpiresAt = r.NewRefreshHash, r.RefreshExpiresAt
	sess.LastUsedAt = r.Now
	return sess
}

// wantSession fails t unless err is nil and got is want (times to the
// microsecond).
func wantSession(t *testing.T, what string, got store.Session, err error, want store.Session) {
	t.Helper()
	if err != nil {
		t.Fatalf("%s: %v", what, err)
	}
	norm := func(s store.Session) store.Session {
		for _, p := range []*time.Time{&s.AccessExpiresAt, &s.RefreshExpiresAt, &s.CreatedAt,
			&s.ExpiresAt, &s.LastUsedAt, &s.RevokedAt} {
			if !p.IsZero() {
				*p = time.UnixMicro(p.UnixMicro()).UTC()
			}
		}
		return s
	}
	if g, w := norm(got), norm(want); !reflect.DeepEqual(g, w) {
		t.Fatalf("%s =\n%+v\nwant\n%+v", what, g, w)
	}
}

// wantCompact fails t unless the hash of session id is in this version's
// form, a listpack of the fields a, fx, p (when prev) and the family, and
// no f: key is left.
func wantCompact(t *testing.T, c *goredis.Client, p, id string, prev bool, family ...[]byte) {
	t.Helper()
	ctx := t.Context()
	if enc := c.ObjectEncoding(ctx, p+"s:"+id).Val(); enc != "listpack" {
		t.Errorf("session hash %s encoded as %q", id, enc)
	}
	want := []string{"a", "fx"}
	if prev {
		want = append(want, "p")
	}
	for _, h := range family {
		want = append(want, "r"+string(h))
	}
	got := c.HKeys(ctx, p+"s:"+id).Val()
	slices.Sort(got)
	slices.Sort(want)
	if !slices.Equal(got, want) {
		t.Errorf("session hash %s fields %q, want %q", id, got, want)
	}
	if n := c.Exists(ctx, p+"f:"+id).Val(); n != 0 {
		t.Errorf("f:%s survived", id)
	}
}

// TestLegacySessions writes sessions as the previous layout did (the
// session in a hash of hex fields, the refresh family and the user's
// sessions in sets, the successor in the hash) and drives every method
// over them: they keep working, and a write turns them into the compact
// form.
func TestLegacySessions(t *testing.T) {
	testURL(t)
	now := time.Now().UTC().Truncate(time.Microsecond)
	open := func(t *testing.T) (*redis.Store, *goredis.Client, string, legacyWriter) {
		s, p := openTest(t, redis.Options{})
		c := rawClient(t, testURL(t))
		return s, c, p, legacyWriter{c: c, prefix: p}
	}
	succ := []byte("sealed successor \x00\xff" + strings.Repeat("x", 130))

	t.Run("reads and rotation", func(t *testing.T) {
		s, c, p, l := open(t)
		ctx := t.Context()
		sess := session("L1", now, false)
		sess.Origin = "L0"
		l.create(t, sess)
		r1 := firstRotation(sess, "L1", now, succ)
		l.rotate(t, r1)
		want := rotated(sess, r1)

		got, err := s.SessionByAccess(ctx, r1.NewAccessHash)
		wantSession(t, "SessionByAccess", got, err, want)
		got, err = s.SessionByID(ctx, "L1")
		wantSession(t, "SessionByID", got, err, want)
		got, err = s.SessionByRefresh(ctx, r1.NewRefreshHash)
		wantSession(t, "SessionByRefresh", got, err, want)
		if _, err := s.SessionByRefresh(ctx, sess.RefreshHash); !errors.Is(err, store.ErrNotFound) {
			t.Fatalf("SessionByRefresh(spent) = %v, want ErrNotFound", err)
		}
		got, err = s.SessionForLogout(ctx, sess.AccessHash)
		wantSession(t, "SessionForLogout(previous access hash)", got, err, want)
		list, err := s.ListUserSessions(ctx, "u-L1", now)
		if err != nil || len(list) != 1 {
			t.Fatalf("ListUserSessions = %v, %v", list, err)
		}
		wantSession(t, "ListUserSessions", list[0], nil, want)

		// A repeat of the spent token within its grace gets the successor
		// and changes nothing.
		repeat := r1
		repeat.NewAccessHash, repeat.NewRefreshHash, repeat.Now = sha("x1"), sha("x2"), now.Add(time.Second)
		got, err = s.RotateRefresh(ctx, repeat)
		if !errors.Is(err, store.ErrRecentlySpent) || !bytes.Equal(got.Successor, succ) {
			t.Fatalf("repeat = %q, %v; want the successor, ErrRecentlySpent", got.Successor, err)
		}
		got.Successor = nil
		wantSession(t, "repeat", got, nil, want)
		if !c.HExists(ctx, p+"s:L1", "ah").Val() {
			t.Fatal("a repeat rewrote the session hash")
		}

		// The next rotation turns it into the compact form, family and all.
		famTTL := c.PTTL(ctx, p+"f:L1").Val()
		r2 := store.Rotation{
			OldRefreshHash: r1.NewRefreshHash, NewAccessHash: sha("mpa_L1c"),
			AccessExpiresAt: now.Add(2 * time.Hour), NewRefreshHash: sha("mpr_L1c"),
			RefreshExpiresAt: now.Add(31 * day), Now: now.Add(time.Minute),
		}
		want2 := rotated(want, r2)
		got, err = s.RotateRefresh(ctx, r2)
		wantSession(t, "RotateRefresh(legacy session)", got, err, want2)
		wantCompact(t, c, p, "L1", true, sess.RefreshHash, r1.NewRefreshHash, r2.NewRefreshHash)
		if got := c.PTTL(ctx, p+"s:L1").Val(); got < famTTL-time.Second {
			t.Errorf("the hash lives %v, less than the family set did (%v)", got, famTTL)
		}
		for _, k := range []string{"p:" + hex.EncodeToString(sess.AccessHash), "g:L1", "a:" + hex.EncodeToString(r1.NewAccessHash)} {
			if c.Exists(ctx, p+k).Val() != 0 {
				t.Errorf("%s survived the rotation", k)
			}
		}
		if v := c.Get(ctx, p+"a:"+hex.EncodeToString(r2.NewAccessHash)).Val(); !strings.HasPrefix(v, "*") {
			t.Errorf("the new access key holds %q", v)
		}
		got, err = s.SessionByAccess(ctx, r2.NewAccessHash)
		wantSession(t, "SessionByAccess(after the rotation)", got, err, want2)
		got, err = s.SessionForLogout(ctx, r1.NewAccessHash)
		wantSession(t, "SessionForLogout(previous access hash)", got, err, want2)
		if _, err := s.SessionForLogout(ctx, sess.AccessHash); !errors.Is(err, store.ErrNotFound) {
			t.Fatalf("SessionForLogout(access hash two rotations ago) = %v, want ErrNotFound", err)
		}

		// The first token, spent under the legacy layout: a replay revokes.
		replay := r2
		replay.OldRefreshHash, replay.NewAccessHash, replay.NewRefreshHash = sess.RefreshHash, sha("x3"), sha("x4")
		replay.Now = now.Add(2 * time.Minute)
		want2.RevokedAt = replay.Now
		got, err = s.RotateRefresh(ctx, replay)
		if !errors.Is(err, store.ErrReused) {
			t.Fatalf("replay = %v, want ErrReused", err)
		}
		wantSession(t, "replay", got, nil, want2)
		got, err = s.SessionByAccess(ctx, r2.NewAccessHash)
		wantSession(t, "SessionByAccess(after the replay)", got, err, want2)
	})

	t.Run("replay", func(t *testing.T) {
		s, c, p, l := open(t)
		ctx := t.Context()
		sess := session("L2", now, true)
		l.create(t, sess)
		r1 := firstRotation(sess, "L2", now, succ)
		l.rotate(t, r1)
		// Past the grace the spent token revokes the session, in the
		// legacy hash's form.
		replay := r1
		replay.NewAccessHash, replay.NewRefreshHash, replay.Now = sha("x1"), sha("x2"), now.Add(31*time.Second)
		want := rotated(sess, r1)
		want.RevokedAt = replay.Now
		got, err := s.RotateRefresh(ctx, replay)
		if !errors.Is(err, store.ErrReused) {
			t.Fatalf("replay after the grace = %v, want ErrReused", err)
		}
		wantSession(t, "replay", got, nil, want)
		got, err = s.SessionByAccess(ctx, r1.NewAccessHash)
		wantSession(t, "SessionByAccess(revoked)", got, err, want)
		wantCompact(t, c, p, "L2", true, sess.RefreshHash, r1.NewRefreshHash)
		// The current token is no use any more.
		next := store.Rotation{OldRefreshHash: r1.NewRefreshHash, NewAccessHash: sha("x5"),
			AccessExpiresAt: now.Add(time.Hour), NewRefreshHash: sha("x6"),
			RefreshExpiresAt: now.Add(30 * day), Now: now.Add(time.Minute)}
		if _, err := s.RotateRefresh(ctx, next); !errors.Is(err, store.ErrNotFound) {
			t.Fatalf("rotation of a revoked session = %v, want ErrNotFound", err)
		}
	})

	t.Run("decrypt failure", func(t *testing.T) {
		s, c, p, l := open(t)
		ctx := t.Context()
		sess := session("L3", now, false)
		l.create(t, sess)
		if n := l.decryptFailure(t, "L3"); n != 1 {
			t.Fatalf("legacy decrypt failure = %d", n)
		}
		if n, err := s.AddDecryptFailure(ctx, "L3"); err != nil || n != 2 {
			t.Fatalf("AddDecryptFailure = %d, %v; want 2", n, err)
		}
		want := sess
		want.DecryptFailures = 2
		got, err := s.SessionByAccess(ctx, sess.AccessHash)
		wantSession(t, "SessionByAccess", got, err, want)
		got, err = s.SessionByID(ctx, "L3")
		wantSession(t, "SessionByID", got, err, want)
		wantCompact(t, c, p, "L3", false, sess.RefreshHash)
		if _, err := s.AddDecryptFailure(ctx, "L-none"); !errors.Is(err, store.ErrNotFound) {
			t.Fatalf("AddDecryptFailure(unknown) = %v, want ErrNotFound", err)
		}
	})

	t.Run("revoke", func(t *testing.T) {
		s, c, p, l := open(t)
		ctx := t.Context()
		sess := session("L4", now, false)
		l.create(t, sess)
		r1 := firstRotation(sess, "L4", now, nil)
		l.rotate(t, r1)
		want := rotated(sess, r1)
		want.RevokedAt = now.Add(time.Minute)
		if err := s.RevokeSession(ctx, "L4", want.RevokedAt); err != nil {
			t.Fatal(err)
		}
		if err := s.RevokeSession(ctx, "L4", now.Add(time.Hour)); err != nil {
			t.Fatal(err)
		}
		got, err := s.SessionByAccess(ctx, r1.NewAccessHash)
		wantSession(t, "SessionByAccess(revoked)", got, err, want)
		got, err = s.SessionForLogout(ctx, sess.AccessHash)
		wantSession(t, "SessionForLogout(previous, revoked)", got, err, want)
		wantCompact(t, c, p, "L4", true, sess.RefreshHash, r1.NewRefreshHash)
		// Revoked by the legacy scripts: the first time is kept.
		old := session("L5", now, false)
		l.create(t, old)
		l.revoke(t, "L5", now)
		if err := s.RevokeSession(ctx, "L5", now.Add(time.Hour)); err != nil {
			t.Fatal(err)
		}
		want = old
		want.RevokedAt = now
		got, err = s.SessionByID(ctx, "L5")
		wantSession(t, "SessionByID(revoked by the legacy scripts)", got, err, want)
	})

	t.Run("revoke user", func(t *testing.T) {
		s, c, p, l := open(t)
		ctx := t.Context()
		uk := p + "u:uK"
		for i, id := range []string{"K0", "K1", "K2", "K3", "K5"} {
			sess := session(id, now.Add(time.Duration(i-10)*time.Minute), false)
			sess.UserID, sess.RefreshExpiresAt = "uK", now.Add(30*day)
			l.create(t, sess)
		}
		l.revoke(t, "K0", now.Add(-time.Hour))
		// K5 is gone (its keys expired), still in the user's set.
		if err := c.Del(ctx, p+"s:K5", p+"a:"+hex.EncodeToString(sha("mpa_K5"))).Err(); err != nil {
			t.Fatal(err)
		}
		if n, err := s.RevokeUserSessions(ctx, store.UserRevocation{UserID: "uK", Keep: 5, Now: now}); err != nil || n != 0 {
			t.Fatalf("RevokeUserSessions(keep 5) = %d, %v; want 0", n, err)
		}
		if n, err := s.RevokeUserSessions(ctx, store.UserRevocation{UserID: "uK", Keep: 1, Now: now}); err != nil || n != 2 {
			t.Fatalf("RevokeUserSessions(keep 1) = %d, %v; want 2", n, err)
		}
		if c.SIsMember(ctx, uk, "K5").Val() || !c.SIsMember(ctx, uk, "K3").Val() {
			t.Fatalf("the user's set after the revocation: %v", c.SMembers(ctx, uk).Val())
		}
		for id, at := range map[string]time.Time{"K0": now.Add(-time.Hour), "K1": now, "K2": now, "K3": {}} {
			got, err := s.SessionByID(ctx, id)
			if err != nil || !got.RevokedAt.Equal(at) {
				t.Fatalf("SessionByID(%s) = revoked at %v, %v; want %v", id, got.RevokedAt, err, at)
			}
		}
		// A new session of the user turns the set into a hash.
		k4 := session("K4", now, false)
		k4.UserID = "uK"
		if err := s.CreateSession(ctx, k4); err != nil {
			t.Fatal(err)
		}
		if typ := c.Type(ctx, uk).Val(); typ != "hash" {
			t.Fatalf("the user's index is a %s", typ)
		}
		ids := c.HKeys(ctx, uk).Val()
		slices.Sort(ids)
		if !slices.Equal(ids, []string{"K0", "K1", "K2", "K3", "K4"}) {
			t.Fatalf("the user's index holds %v", ids)
		}
		if ttl := c.PTTL(ctx, uk).Val(); ttl < 30*day-time.Minute {
			t.Fatalf("the user's index lives %v", ttl)
		}
		list, err := s.ListUserSessions(ctx, "uK", now)
		if err != nil || len(list) != 2 || list[0].ID != "K4" || list[1].ID != "K3" {
			t.Fatalf("ListUserSessions = %v, %v; want K4, K3", list, err)
		}
		n, err := s.RevokeUserSessions(ctx, store.UserRevocation{UserID: "uK", Family: "wechat", AppID: "wxA",
			OpenID: "o-K3", Now: now.Add(time.Second)})
		if err != nil || n != 1 {
			t.Fatalf("RevokeUserSessions(K3's identity) = %d, %v; want 1", n, err)
		}
		if got, err := s.SessionByID(ctx, "K4"); err != nil || !got.RevokedAt.IsZero() {
			t.Fatalf("K4 = %+v, %v; want it live", got, err)
		}
		wantCompact(t, c, p, "K3", false, sha("mpr_K3"))
	})

	t.Run("sweep", func(t *testing.T) {
		s, c, p, l := open(t)
		ctx := t.Context()
		hx := hex.EncodeToString
		d1 := session("D1", now.Add(-31*day), false) // refresh expired a day ago
		l.create(t, d1)
		d2 := session("D2", now.Add(-31*day), false)
		l.create(t, d2)
		// D2's hash and access key expired on their own; its family did not.
		if err := c.Del(ctx, p+"s:D2", p+"a:"+hx(d2.AccessHash)).Err(); err != nil {
			t.Fatal(err)
		}
		d3 := session("D3", now, false)
		l.create(t, d3)
		r := store.Rotation{OldRefreshHash: d3.RefreshHash, NewAccessHash: sha("mpa_D3b"),
			AccessExpiresAt: now.Add(time.Hour), NewRefreshHash: sha("mpr_D3b"),
			RefreshExpiresAt: now.Add(30 * day), Now: now}
		l.rotate(t, r)

		if n, err := s.DeleteExpired(ctx, now); err != nil || n != 1 {
			t.Fatalf("DeleteExpired = %d, %v; want 1", n, err)
		}
		keys := scanKeys(t, c, p)
		slices.Sort(keys)
		want := []string{
			p + "a:" + hx(r.NewAccessHash),
			p + "dl",
			p + "f:D3",
			p + "p:" + hx(d3.AccessHash),
			p + "r:" + hx(d3.RefreshHash),
			p + "r:" + hx(r.NewRefreshHash),
			p + "s:D3",
			p + "u:u-D2", // nothing left names D2's user
			p + "u:u-D3",
		}
		slices.Sort(want)
		if !slices.Equal(keys, want) {
			t.Fatalf("keys after the sweep:\n%s\nwant\n%s", strings.Join(keys, "\n"), strings.Join(want, "\n"))
		}
		got, err := s.SessionByAccess(ctx, r.NewAccessHash)
		wantSession(t, "SessionByAccess(D3)", got, err, rotated(d3, r))
	})

	t.Run("erase", func(t *testing.T) {
		s, c, p, l := open(t)
		ctx := t.Context()
		e1 := session("E1", now, false)
		e1.UserID = "uE"
		l.create(t, e1)
		l.rotate(t, store.Rotation{OldRefreshHash: e1.RefreshHash, NewAccessHash: sha("mpa_E1b"),
			AccessExpiresAt: now.Add(time.Hour), NewRefreshHash: sha("mpr_E1b"),
			RefreshExpiresAt: now.Add(30 * day), Now: now,
			Successor: succ, SuccessorUntil: now.Add(30 * time.Second)})
		e2 := session("E2", now, false)
		e2.UserID = "uE"
		l.create(t, e2)
		// E2 in the compact form since a rotation, with the grace under g:.
		if _, err := s.RotateRefresh(ctx, store.Rotation{OldRefreshHash: e2.RefreshHash,
			NewAccessHash: sha("mpa_E2b"), AccessExpiresAt: now.Add(time.Hour), NewRefreshHash: sha("mpr_E2b"),
			RefreshExpiresAt: now.Add(30 * day), Now: now,
			Successor: succ, SuccessorUntil: now.Add(30 * time.Second)}); err != nil {
			t.Fatal(err)
		}
		x := session("X1", now, false)
		l.create(t, x)

		if err := s.EraseUserSessions(ctx, "uE", nil); err != nil {
			t.Fatal(err)
		}
		keys := scanKeys(t, c, p)
		slices.Sort(keys)
		want := []string{
			p + "a:" + hex.EncodeToString(x.AccessHash),
			p + "dl",
			p + "f:X1",
			p + "r:" + hex.EncodeToString(x.RefreshHash),
			p + "s:X1",
			p + "u:u-X1",
		}
		if !slices.Equal(keys, want) {
			t.Fatalf("keys after the erasure:\n%s\nwant\n%s", strings.Join(keys, "\n"), strings.Join(want, "\n"))
		}
		if ids := c.ZRange(ctx, p+"dl", 0, -1).Val(); !slices.Equal(ids, []string{"X1"}) {
			t.Fatalf("dl holds %v", ids)
		}
	})

	t.Run("move", func(t *testing.T) {
		s, c, p, l := open(t)
		ctx := t.Context()
		for _, id := range []string{"M1", "M2", "N1"} {
			sess := session(id, now, false)
			sess.UserID = "uFrom"
			if id == "N1" {
				sess.UserID = "uInto"
			}
			l.create(t, sess)
		}
		if err := s.MoveUserSessions(ctx, "uInto", "uFrom"); err != nil {
			t.Fatal(err)
		}
		if n := c.Exists(ctx, p+"u:uFrom").Val(); n != 0 {
			t.Fatal("the old user's index survived")
		}
		ids := c.HKeys(ctx, p+"u:uInto").Val()
		slices.Sort(ids)
		if !slices.Equal(ids, []string{"M1", "M2", "N1"}) {
			t.Fatalf("the user's index holds %v", ids)
		}
		want := session("M1", now, false)
		want.UserID = "uInto"
		got, err := s.SessionByAccess(ctx, want.AccessHash)
		wantSession(t, "SessionByAccess(moved)", got, err, want)
		wantCompact(t, c, p, "M1", false, want.RefreshHash)
		if list, err := s.ListUserSessions(ctx, "uInto", now); err != nil || len(list) != 3 {
			t.Fatalf("ListUserSessions = %v, %v; want 3", list, err)
		}
	})
}
