package storetest

import (
	"bytes"
	"context"
	"errors"
	"testing"
	"time"

	"github.com/mplogin/mplogin/store"
)

var roundTripTests = []test{
	{"Times", testTimes},
	{"Bytes", testBytes},
	{"InputsCopied", testInputsCopied},
}

var contextTests = []test{
	{"Canceled", testCanceled},
	{"DeadlineExceeded", testDeadlineExceeded},
	{"Closed", testClosed},
}

// testTimes stores times in several locations and at the edges of the range
// a backend is likely to meet, and expects the same instants back.
func testTimes(t *testing.T, s store.Store) {
	beijing := time.FixedZone("CST", 8*60*60)
	newYork := time.FixedZone("EST", -5*60*60)
	in := func(loc *time.Location, d time.Duration) time.Time {
		return base.Add(d).In(loc).Truncate(time.Microsecond)
	}

	want := store.Session{
		ID: "s1", UserID: "u1", App: "main", Family: "wechat", AppID: "wxA", OpenID: "o1",
		AccessHash:       hash("a"),
		AccessExpiresAt:  in(beijing, 2*hour+time.Microsecond),
		RefreshHash:      hash("r"),
		RefreshExpiresAt: time.Date(2200, time.January, 1, 0, 0, 0, 999999000, newYork),
		CreatedAt:        time.Date(1969, time.July, 20, 20, 17, 40, 1000, time.UTC), // before the Unix epoch
		ExpiresAt:        time.Unix(0, 0).In(beijing),                                // the epoch is not "zero"
		LastUsedAt:       in(newYork, 123456*time.Microsecond),
		RevokedAt:        in(time.UTC, 3*hour+999999*time.Microsecond),
	}
	mustCreateSession(t, s, want)
	got := mustSessionByID(t, s, "s1")
	wantEqual(t, "session times", want, got)
	if got.ExpiresAt.IsZero() {
		t.Fatal("the Unix epoch came back as the zero time")
	}

	// Identity and user times.
	id, _ := mustUpsert(t, s, upsert("wxA", "o1", "", sealed("k1"), "u1", in(beijing, 0)))
	id2, _ := mustUpsert(t, s, upsert("wxA", "o1", "", sealed("k2"), "", in(newYork, hour+7*time.Microsecond)))
	if !id.PrevKeyExpiresAt.IsZero() {
		t.Fatalf("PrevKeyExpiresAt = %v with no previous key, want zero", id.PrevKeyExpiresAt)
	}
	if want := in(newYork, hour+7*time.Microsecond).Add(grace); !id2.PrevKeyExpiresAt.Equal(want) {
		t.Fatalf("PrevKeyExpiresAt = %v, want %v", id2.PrevKeyExpiresAt, want)
	}
	wantEqual(t, "identity times", id2, mustIdentity(t, s, "wechat", "wxA", "o1"))
	u, err := s.GetUser(t.Context(), "u1")
	if err != nil {
		t.Fatalf("GetUser: %v", err)
	}
	wantEqual(t, "user", store.User{ID: "u1", CreatedAt: in(beijing, 0)}, u)

	// Code times.
	c := newCode("c1", in(beijing, time.Minute+time.Microsecond))
	mustPutCode(t, s, c)
	gotCode, err := s.GetCode(t.Context(), c.Hash, in(newYork, time.Minute))
	if err != nil {
		t.Fatalf("GetCode: %v", err)
	}
	wantEqual(t, "code", c, gotCode)
	// One microsecond later the code has expired: precision matters for
	// comparisons too, whatever the location.
	_, err = s.GetCode(t.Context(), c.Hash, in(newYork, time.Minute+time.Microsecond))
	wantErr(t, "GetCode at expiry", err, store.ErrNotFound)
}

// testBytes stores hashes and sealed keys with every byte value, including
// NUL and bytes that are not UTF-8, and expects them back exactly.
func testBytes(t *testing.T, s store.Store) {
	all := make([]byte, 256)
	for i := range all {
		all[i] = byte(i)
	}
	zeros := make([]byte, 32)
	ones := bytes.Repeat([]byte{0xff}, 32)

	sess := newSession("s1")
	sess.AccessHash = zeros
	sess.RefreshHash = ones
	mustCreateSession(t, s, sess)
	got, err := s.SessionByAccess(t.Context(), zeros)
	if err != nil {
		t.Fatalf("SessionByAccess(zeros): %v", err)
	}
	wantEqual(t, "session", sess, got)
	// Hashes are compared as bytes, not as prefixes or strings.
	_, err = s.SessionByAccess(t.Context(), zeros[:31])
	wantErr(t, "SessionByAccess(prefix)", err, store.ErrNotFound)
	r := rotation(ones, "1", at(hour))
	r.NewAccessHash = all[:32]
	r.NewRefreshHash = all[224:]
	got = mustRotate(t, s, r)
	wantEqual(t, "rotated session", apply(sess, r), got)

	id, _ := mustUpsert(t, s, upsert("wxA", "o1", "", all, "u1", base))
	if !bytes.Equal(id.SessionKey, all) {
		t.Fatalf("SessionKey = %x, want %x", id.SessionKey, all)
	}
	mustUpsert(t, s, upsert("wxA", "o1", "", []byte{0}, "", at(hour)))
	stored := mustIdentity(t, s, "wechat", "wxA", "o1")
	if !bytes.Equal(stored.SessionKey, []byte{0}) || !bytes.Equal(stored.PrevSessionKey, all) {
		t.Fatalf("keys = %x, %x; want 00, %x", stored.SessionKey, stored.PrevSessionKey, all)
	}

	// Missing keys come back empty, never as a zero-length non-secret value
	// that differs from "none".
	none, _ := mustUpsert(t, s, upsert("wxA", "o2", "", nil, "u2", base))
	if len(none.SessionKey) != 0 || len(none.PrevSessionKey) != 0 {
		t.Fatalf("identity without keys: %x, %x", none.SessionKey, none.PrevSessionKey)
	}
	stored = mustIdentity(t, s, "wechat", "wxA", "o2")
	if len(stored.SessionKey) != 0 || len(stored.PrevSessionKey) != 0 {
		t.Fatalf("stored identity without keys: %x, %x", stored.SessionKey, stored.PrevSessionKey)
	}

	c := newCode("c1", at(time.Minute))
	c.Hash = all[100:132]
	mustPutCode(t, s, c)
	gotCode, err := s.GetCode(t.Context(), all[100:132], base)
	if err != nil {
		t.Fatalf("GetCode: %v", err)
	}
	wantEqual(t, "code", c, gotCode)
}

// testInputsCopied checks that the store keeps its own copies: a caller that
// reuses a buffer after a call, or edits what it got back, changes nothing.
func testInputsCopied(t *testing.T, s store.Store) {
	key := sealed("k1")
	mustUpsert(t, s, upsert("wxA", "o1", "", key, "u1", base))
	key[0] ^= 0xff
	got := mustIdentity(t, s, "wechat", "wxA", "o1")
	if !bytes.Equal(got.SessionKey, sealed("k1")) {
		t.Fatalf("SessionKey = %q after the caller changed its buffer", got.SessionKey)
	}
	got.SessionKey[0] ^= 0xff
	if again := mustIdentity(t, s, "wechat", "wxA", "o1"); !bytes.Equal(again.SessionKey, sealed("k1")) {
		t.Fatalf("SessionKey = %q after the caller changed a result", again.SessionKey)
	}

	sess := newSession("s1")
	mustCreateSession(t, s, sess)
	sess.AccessHash[0] ^= 0xff
	sess.RefreshHash[0] ^= 0xff
	gotSess := mustSessionByID(t, s, "s1")
	wantEqual(t, "session after the caller changed its buffers", newSession("s1"), gotSess)
	gotSess.AccessHash[0] ^= 0xff
	wantEqual(t, "session after the caller changed a result", newSession("s1"), mustSessionByID(t, s, "s1"))

	c := newCode("c1", at(time.Minute))
	mustPutCode(t, s, c)
	c.Hash[0] ^= 0xff
	gotCode, err := s.GetCode(t.Context(), newCode("c1", time.Time{}).Hash, base)
	if err != nil {
		t.Fatalf("GetCode after the caller changed its buffer: %v", err)
	}
	wantEqual(t, "code after the caller changed its buffer", newCode("c1", at(time.Minute)), gotCode)
}

// calls returns one call of every Store method that takes a context.
func calls(s store.Store) []struct {
	name string
	call func(ctx context.Context) error
} {
	sess := newSession("s1")
	return []struct {
		name string
		call func(ctx context.Context) error
	}{
		{"UpsertIdentity", func(ctx context.Context) error {
			_, _, err := s.UpsertIdentity(ctx, upsert("wxA", "o1", "un1", sealed("k"), "u1", base))
			return err
		}},
		{"GetIdentity", func(ctx context.Context) error {
			_, err := s.GetIdentity(ctx, "wechat", "wxA", "o1")
			return err
		}},
		{"GetUser", func(ctx context.Context) error {
			_, err := s.GetUser(ctx, "u1")
			return err
		}},
		{"CreateSession", func(ctx context.Context) error { return s.CreateSession(ctx, newSession("s2")) }},
		{"SessionByAccess", func(ctx context.Context) error {
			_, err := s.SessionByAccess(ctx, sess.AccessHash)
			return err
		}},
		{"SessionByID", func(ctx context.Context) error {
			_, err := s.SessionByID(ctx, sess.ID)
			return err
		}},
		{"SessionByRefresh", func(ctx context.Context) error {
			_, err := s.SessionByRefresh(ctx, sess.RefreshHash)
			return err
		}},
		{"RotateRefresh", func(ctx context.Context) error {
			_, err := s.RotateRefresh(ctx, rotation(sess.RefreshHash, "1", at(hour)))
			return err
		}},
		{"RevokeSession", func(ctx context.Context) error { return s.RevokeSession(ctx, sess.ID, at(hour)) }},
		{"RevokeUserSessions", func(ctx context.Context) error {
			_, err := s.RevokeUserSessions(ctx, store.UserRevocation{UserID: sess.UserID, Now: at(hour)})
			return err
		}},
		{"AddDecryptFailure", func(ctx context.Context) error {
			_, err := s.AddDecryptFailure(ctx, sess.ID)
			return err
		}},
		{"ReserveDecryptAttempt", func(ctx context.Context) error {
			_, _, err := s.ReserveDecryptAttempt(ctx, "wechat", "wxA", "o1", 5)
			return err
		}},
		{"ReleaseDecryptAttempt", func(ctx context.Context) error {
			return s.ReleaseDecryptAttempt(ctx, "wechat", "wxA", "o1")
		}},
		{"PutCode", func(ctx context.Context) error { return s.PutCode(ctx, newCode("c2", at(hour))) }},
		{"GetCode", func(ctx context.Context) error {
			_, err := s.GetCode(ctx, newCode("c1", time.Time{}).Hash, base)
			return err
		}},
		{"ClaimReplay", func(ctx context.Context) error {
			_, err := s.ClaimReplay(ctx, newCode("c1", time.Time{}).Hash, base, 3)
			return err
		}},
		{"DeleteExpired", func(ctx context.Context) error {
			_, err := s.DeleteExpired(ctx, at(365*day))
			return err
		}},
		{"PutAccessToken", func(ctx context.Context) error {
			return s.PutAccessToken(ctx, newAccessToken("wechat:wxB", "b"))
		}},
		{"GetAccessToken", func(ctx context.Context) error {
			_, err := s.GetAccessToken(ctx, "wechat:wxA")
			return err
		}},
		{"DeleteAccessToken", func(ctx context.Context) error {
			return s.DeleteAccessToken(ctx, "wechat:wxA", newAccessToken("", "a").Sealed)
		}},
		{"SetPhone", func(ctx context.Context) error { return s.SetPhone(ctx, "u1", newPhone("1", base)) }},
		{"AcquireLease", func(ctx context.Context) error {
			_, err := s.AcquireLease(ctx, "refresh:wechat:wxA", "i1", base, at(time.Minute))
			return err
		}},
		{"ReleaseLease", func(ctx context.Context) error { return s.ReleaseLease(ctx, "refresh:wechat:wxA", "i1") }},
		{"Ping", func(ctx context.Context) error { return s.Ping(ctx) }},
	}
}

// seed stores what calls reads, so that a call that ignores its context
// would succeed and be caught.
func seed(t *testing.T, s store.Store) {
	t.Helper()
	mustUpsert(t, s, upsert("wxA", "o1", "un1", sealed("k"), "u1", base))
	mustCreateSession(t, s, newSession("s1"))
	mustPutCode(t, s, newCode("c1", at(hour)))
	mustPutAccessToken(t, s, newAccessToken("wechat:wxA", "a"))
}

// callBounded runs call and fails t if it does not return promptly. The
// bound only turns a hang into a failure; it plays no part in the logic.
func callBounded(t *testing.T, name string, call func() error) error {
	t.Helper()
	done := make(chan error, 1)
	go func() { done <- call() }()
	timer := time.NewTimer(10 * time.Second)
	defer timer.Stop()
	select {
	case err := <-done:
		return err
	case <-timer.C:
		t.Fatalf("%s did not return", name)
		return nil
	}
}

func testCanceled(t *testing.T, s store.Store) {
	seed(t, s)
	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	for _, c := range calls(s) {
		err := callBounded(t, c.name, func() error { return c.call(ctx) })
		if !errors.Is(err, context.Canceled) {
			t.Errorf("%s with a canceled context: err = %v, want context.Canceled", c.name, err)
		}
	}
	// Nothing was done, and the store still works.
	wantEqual(t, "session", newSession("s1"), mustSessionByID(t, s, "s1"))
	if _, err := s.SessionByID(t.Context(), "s2"); !isNotFound(err) {
		t.Fatalf("SessionByID(s2) = %v, want ErrNotFound: a canceled CreateSession stored it", err)
	}
	mustRotate(t, s, rotation(newSession("s1").RefreshHash, "1", at(hour)))
	wantEqual(t, "access token", newAccessToken("wechat:wxA", "a"), mustGetAccessToken(t, s, "wechat:wxA"))
	if _, err := s.GetAccessToken(t.Context(), "wechat:wxB"); !isNotFound(err) {
		t.Fatalf("GetAccessToken(wxB) = %v, want ErrNotFound: a canceled PutAccessToken stored it", err)
	}
}

// testDeadlineExceeded expects an expired deadline to read as "the backend
// did not answer in time": ErrUnavailable, with the context's error kept.
func testDeadlineExceeded(t *testing.T, s store.Store) {
	seed(t, s)
	// A deadline long past: expired however slow the machine.
	ctx, cancel := context.WithDeadline(t.Context(), time.Unix(0, 0))
	defer cancel()
	for _, c := range calls(s) {
		err := callBounded(t, c.name, func() error { return c.call(ctx) })
		if !errors.Is(err, store.ErrUnavailable) || !errors.Is(err, context.DeadlineExceeded) {
			t.Errorf("%s past its deadline: err = %v, want ErrUnavailable and context.DeadlineExceeded", c.name, err)
		}
	}
	wantEqual(t, "session", newSession("s1"), mustSessionByID(t, s, "s1"))
}

func testClosed(t *testing.T, s store.Store) {
	seed(t, s)
	if err := s.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}
	for _, c := range calls(s) {
		err := callBounded(t, c.name, func() error { return c.call(t.Context()) })
		if !errors.Is(err, store.ErrUnavailable) {
			t.Errorf("%s after Close: err = %v, want ErrUnavailable", c.name, err)
		}
	}
}
