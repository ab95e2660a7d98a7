package redis_test

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"net/url"
	"os"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	goredis "github.com/redis/go-redis/v9"

	"github.com/mplogin/mplogin/internal/testutil"
	"github.com/mplogin/mplogin/store"
	"github.com/mplogin/mplogin/store/memory"
	"github.com/mplogin/mplogin/store/redis"
	"github.com/mplogin/mplogin/store/storetest"
)

// testURL returns the Redis URL of MPLOGIN_TEST_REDIS, or skips t. It may
// also name Sentinels (a master_name parameter; see Open).
func testURL(t testing.TB) string {
	t.Helper()
	u := os.Getenv("MPLOGIN_TEST_REDIS")
	if u == "" {
		t.Skip("MPLOGIN_TEST_REDIS is unset: set it to a Redis 7 URL, e.g. " +
			"MPLOGIN_TEST_REDIS=redis://127.0.0.1:6379/0, to run the Redis store tests")
	}
	return u
}

var (
	runID     = rand.Text()[:8] // keeps concurrent test runs on one Redis apart
	prefixSeq atomic.Int64
)

// openTest opens a store on MPLOGIN_TEST_REDIS under a fresh key prefix.
// When t ends (after the store is closed) it checks that every key under
// the prefix has a TTL and deletes them all.
func openTest(t testing.TB, opts redis.Options) (*redis.Store, string) {
	t.Helper()
	u := testURL(t)
	prefix := fmt.Sprintf("mplogin-test:%s:%d:", runID, prefixSeq.Add(1))
	opts.KeyPrefix = prefix
	s, err := redis.Open(t.Context(), u, opts)
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	t.Cleanup(func() {
		_ = s.Close()
		c := rawClient(t, u)
		for _, k := range scanKeys(t, c, prefix) {
			if ttl := c.PTTL(context.Background(), k).Val(); ttl == -1 {
				t.Errorf("key %q has no TTL", k)
			}
		}
		deleteKeys(t, c, prefix)
	})
	return s, prefix
}

// rawClient returns a plain go-redis client on u, closed when t ends.
// A URL with master_name names Sentinels.
func rawClient(t testing.TB, u string) *goredis.Client {
	t.Helper()
	var c *goredis.Client
	if strings.Contains(u, "master_name=") {
		o, err := goredis.ParseFailoverURL(u)
		if err != nil {
			t.Fatalf("ParseFailoverURL: %v", err)
		}
		c = goredis.NewFailoverClient(o)
	} else {
		o, err := goredis.ParseURL(u)
		if err != nil {
			t.Fatalf("ParseURL: %v", err)
		}
		c = goredis.NewClient(o)
	}
	t.Cleanup(func() { _ = c.Close() })
	return c
}

// globEscape escapes the glob metacharacters of SCAN MATCH in s.
func globEscape(s string) string {
	var b strings.Builder
	for _, r := range s {
		if strings.ContainsRune(`*?[]\^-`, r) {
			b.WriteByte('\\')
		}
		b.WriteRune(r)
	}
	return b.String()
}

// scanKeys lists the keys under prefix.
func scanKeys(t testing.TB, c *goredis.Client, prefix string) []string {
	t.Helper()
	var keys []string
	iter := c.Scan(context.Background(), 0, globEscape(prefix)+"*", 1000).Iterator()
	for iter.Next(context.Background()) {
		keys = append(keys, iter.Val())
	}
	if err := iter.Err(); err != nil {
		t.Errorf("SCAN %s*: %v", prefix, err)
	}
	return keys
}

// deleteKeys deletes the keys under prefix.
func deleteKeys(t testing.TB, c *goredis.Client, prefix string) {
	t.Helper()
	keys := scanKeys(t, c, prefix)
	for len(keys) > 0 {
		n := min(len(keys), 500)
		if err := c.Unlink(context.Background(), keys[:n]...).Err(); err != nil {
			t.Errorf("UNLINK: %v", err)
			return
		}
		keys = keys[n:]
	}
}

// TestConformance runs the store suite on store.Split(memory, Redis), with
// reads autopipelined (the default) and not.
func TestConformance(t *testing.T) {
	testURL(t)
	for _, m := range modes {
		t.Run(m.name, func(t *testing.T) {
			storetest.Run(t, func(t *testing.T) store.Store {
				s, _ := openTest(t, m.opts)
				return store.Split(memory.New(), s)
			}, storetest.SplitLogin())
		})
	}
}

func sha(s string) []byte {
	h := sha256.Sum256([]byte(s))
	return h[:]
}

const day = 24 * time.Hour

// session returns a session created at now, refresh token valid for 30
// days, absolute end at 90 days (none when noEnd), with hashes of tokens
// named after id.
func session(id string, now time.Time, noEnd bool) store.Session {
	s := store.Session{
		ID: id, UserID: "u-" + id, App: "main", Family: "wechat", AppID: "wxA",
		OpenID: "o-" + id, UnionID: "un-" + id,
		AccessHash:       sha("mpa_" + id),
		AccessExpiresAt:  now.Add(2 * time.Hour),
		RefreshHash:      sha("mpr_" + id),
		RefreshExpiresAt: now.Add(30 * day),
		CreatedAt:        now,
		ExpiresAt:        now.Add(90 * day),
		LastUsedAt:       now,
	}
	if noEnd {
		s.ExpiresAt = time.Time{}
	}
	return s
}

// wantTTL fails t unless key's TTL is within a second of want.
func wantTTL(t *testing.T, c *goredis.Client, key string, want time.Duration) {
	t.Helper()
	got, err := c.PTTL(t.Context(), key).Result()
	if err != nil {
		t.Fatalf("PTTL %s: %v", key, err)
	}
	if d := got - want; d < -time.Second || d > time.Second {
		t.Errorf("TTL of %s = %v, want %v", key, got, want)
	}
}

// TestTTLs checks the TTL rule on every kind of key: each key lives until
// its thing stops being usable plus the grace, nothing lives forever, and
// a time already past still gets the grace.
func TestTTLs(t *testing.T) {
	clock := testutil.NewClock(time.Now().Truncate(time.Microsecond))
	const grace = 5 * time.Minute
	s, p := openTest(t, redis.Options{Now: clock.Now, ExpiryGrace: grace})
	c := rawClient(t, testURL(t))
	ctx := t.Context()
	t0 := clock.Now()
	hx := hex.EncodeToString

	// A session with an absolute end: its access key until the refresh
	// expiry, its refresh tokens and the hash that lists them until the
	// end.
	ended := session("ended", t0, false)
	if err := s.CreateSession(ctx, ended); err != nil {
		t.Fatal(err)
	}
	wantTTL(t, c, p+"a:"+hx(ended.AccessHash), 30*day+grace)
	wantTTL(t, c, p+"s:ended", 90*day+grace)
	wantTTL(t, c, p+"r:"+hx(ended.RefreshHash), 90*day+grace)
	// The user's index of sessions: as long as the session.
	wantTTL(t, c, p+"u:u-ended", 30*day+grace)
	// A rotation's grace until its end.
	re := store.Rotation{
		OldRefreshHash: ended.RefreshHash, NewAccessHash: sha("mpa_ended2"),
		AccessExpiresAt: t0.Add(2 * time.Hour), NewRefreshHash: sha("mpr_ended2"),
		RefreshExpiresAt: t0.Add(30 * day), Now: t0,
		Successor: []byte("sealed"), SuccessorUntil: t0.Add(30 * time.Second),
	}
	if _, err := s.RotateRefresh(ctx, re); err != nil {
		t.Fatal(err)
	}
	wantTTL(t, c, p+"g:ended", 30*time.Second+grace)

	// A session without an end: refresh tokens for twice the session's TTL.
	open := session("open", t0, true)
	if err := s.CreateSession(ctx, open); err != nil {
		t.Fatal(err)
	}
	wantTTL(t, c, p+"a:"+hx(open.AccessHash), 30*day+grace)
	wantTTL(t, c, p+"s:open", 2*(30*day+grace))
	wantTTL(t, c, p+"r:"+hx(open.RefreshHash), 2*(30*day+grace))

	// A rotation 10 days later moves the session's keys; the spent token
	// stays known as long as its session.
	clock.Set(t0.Add(10 * day))
	r := store.Rotation{
		OldRefreshHash: open.RefreshHash, NewAccessHash: sha("mpa_open2"),
		AccessExpiresAt: t0.Add(10*day + 2*time.Hour), NewRefreshHash: sha("mpr_open2"),
		RefreshExpiresAt: t0.Add(40 * day), Now: t0.Add(10 * day),
	}
	if _, err := s.RotateRefresh(ctx, r); err != nil {
		t.Fatal(err)
	}
	wantTTL(t, c, p+"a:"+hx(r.NewAccessHash), 30*day+grace)
	wantTTL(t, c, p+"u:u-open", 30*day+grace)
	// The replaced access token names the session for a logout, as long.
	wantTTL(t, c, p+"p:"+hx(open.AccessHash), 30*day+grace)
	// (The fake clock moved, Redis's did not: the spent token's TTL is as
	// set at creation, and the new token's ends at the same instant by the
	// store's clock.)
	wantTTL(t, c, p+"r:"+hx(open.RefreshHash), 2*(30*day+grace))
	wantTTL(t, c, p+"r:"+hx(r.NewRefreshHash), 2*(30*day+grace)-10*day)
	wantTTL(t, c, p+"s:open", 2*(30*day+grace)-10*day)
	if n, _ := c.Exists(ctx, p+"a:"+hx(open.AccessHash)).Result(); n != 0 {
		t.Error("the old access key survived the rotation")
	}

	// 40 days later still, a rotation would make the session outlive its
	// refresh tokens: all of them are extended, the spent one too.
	clock.Set(t0.Add(50 * day))
	r2 := store.Rotation{
		OldRefreshHash: r.NewRefreshHash, NewAccessHash: sha("mpa_open3"),
		AccessExpiresAt: t0.Add(50*day + 2*time.Hour), NewRefreshHash: sha("mpr_open3"),
		RefreshExpiresAt: t0.Add(80 * day), Now: t0.Add(39 * day), // before the 40-day expiry
	}
	if _, err := s.RotateRefresh(ctx, r2); err != nil {
		t.Fatal(err)
	}
	for _, h := range [][]byte{open.RefreshHash, r.NewRefreshHash, r2.NewRefreshHash} {
		wantTTL(t, c, p+"r:"+hx(h), 2*(30*day+grace))
	}
	wantTTL(t, c, p+"s:open", 2*(30*day+grace))
	// A replay of the first token is still caught.
	replay := r2
	replay.OldRefreshHash = open.RefreshHash
	replay.NewAccessHash, replay.NewRefreshHash = sha("x1"), sha("x2")
	if _, err := s.RotateRefresh(ctx, replay); !errors.Is(err, store.ErrReused) {
		t.Fatalf("replay of the first token: %v, want ErrReused", err)
	}
	// The replay revoked the session at r2.Now, 11 days before the store's
	// clock: its keys now live for the grace only, its refresh tokens and
	// hash as long as before (for the sweep).
	wantTTL(t, c, p+"a:"+hx(r2.NewAccessHash), grace)
	wantTTL(t, c, p+"p:"+hx(r.NewAccessHash), grace)
	wantTTL(t, c, p+"s:open", 2*(30*day+grace))

	// Revocation shortens the session's keys to RevokedAt + grace.
	clock.Set(t0)
	if err := s.RevokeSession(ctx, "ended", t0.Add(time.Hour)); err != nil {
		t.Fatal(err)
	}
	wantTTL(t, c, p+"a:"+hx(re.NewAccessHash), time.Hour+grace)
	wantTTL(t, c, p+"p:"+hx(ended.AccessHash), time.Hour+grace)
	wantTTL(t, c, p+"g:ended", 30*time.Second+grace)
	wantTTL(t, c, p+"s:ended", 90*day+grace)

	// Codes until ExpiresAt + grace; one already expired for the grace.
	code := store.ExchangedCode{Hash: sha("code:1"), App: "main", Family: "wechat", AppID: "wxA",
		OpenID: "o1", ExpiresAt: t0.Add(5 * time.Minute)}
	if err := s.PutCode(ctx, code); err != nil {
		t.Fatal(err)
	}
	wantTTL(t, c, p+"c:"+hx(code.Hash), 5*time.Minute+grace)
	old := code
	old.Hash, old.ExpiresAt = sha("code:2"), time.Date(2025, 3, 14, 0, 0, 0, 0, time.UTC)
	if err := s.PutCode(ctx, old); err != nil {
		t.Fatal(err)
	}
	wantTTL(t, c, p+"c:"+hx(old.Hash), grace)
	if _, err := s.GetCode(ctx, old.Hash, old.ExpiresAt.Add(-time.Second)); err != nil {
		t.Fatalf("GetCode before its expiry (with a clock past it): %v", err)
	}

	// A session far in the future: TTLs are bounded.
	far := session("far", t0, true)
	far.AccessHash, far.RefreshHash = sha("far-a"), sha("far-r")
	far.RefreshExpiresAt = time.Date(9999, 1, 1, 0, 0, 0, 0, time.UTC)
	if err := s.CreateSession(ctx, far); err != nil {
		t.Fatal(err)
	}
	if got := c.PTTL(ctx, p+"s:far").Val(); got <= 0 || got > 101*365*day {
		t.Errorf("TTL of a session ending in 9999 = %v", got)
	}

	// Every key has a TTL, and every kind of key was written.
	kinds := map[string]bool{}
	for _, k := range scanKeys(t, c, p) {
		ttl, err := c.PTTL(ctx, k).Result()
		if err != nil || ttl <= 0 {
			t.Errorf("PTTL %s = %v, %v; want > 0", k, ttl, err)
		}
		kind, _, _ := strings.Cut(strings.TrimPrefix(k, p), ":")
		kinds[kind] = true
	}
	for _, k := range []string{"s", "a", "r", "p", "g", "c", "dl", "cx", "u"} {
		if !kinds[k] {
			t.Errorf("no %q key written; kinds: %v", k, kinds)
		}
	}
}

// TestDeleteExpired sweeps more than one chunk of dead sessions and codes,
// and index entries whose keys expired on their own: those are dropped,
// with the session hash and refresh tokens left behind, but not counted.
func TestDeleteExpired(t *testing.T) {
	s, p := openTest(t, redis.Options{})
	c := rawClient(t, testURL(t))
	ctx := t.Context()
	now := time.Now()
	const nSessions, nCodes = 1200, 700
	for i := range nSessions {
		sess := session(fmt.Sprint("dead", i), now.Add(-31*day), false) // refresh expired a day ago
		if err := s.CreateSession(ctx, sess); err != nil {
			t.Fatal(err)
		}
	}
	for i := range nCodes {
		if err := s.PutCode(ctx, store.ExchangedCode{Hash: sha(fmt.Sprint("code", i)), App: "main",
			Family: "wechat", AppID: "wxA", OpenID: "o", ExpiresAt: now.Add(-time.Second)}); err != nil {
			t.Fatal(err)
		}
	}
	live := session("live", now, false)
	if err := s.CreateSession(ctx, live); err != nil {
		t.Fatal(err)
	}
	// One more dead session whose access key has already expired (its
	// hash and refresh token live longer).
	gone := session("gone", now.Add(-31*day), false)
	if err := s.CreateSession(ctx, gone); err != nil {
		t.Fatal(err)
	}
	if err := c.Del(ctx, p+"a:"+hex.EncodeToString(gone.AccessHash)).Err(); err != nil {
		t.Fatal(err)
	}

	n, err := s.DeleteExpired(ctx, now)
	if err != nil || n != nSessions+nCodes {
		t.Fatalf("DeleteExpired = %d, %v; want %d", n, err, nSessions+nCodes)
	}
	keys := scanKeys(t, c, p)
	slices.Sort(keys)
	want := []string{
		p + "a:" + hex.EncodeToString(live.AccessHash),
		p + "dl",
		p + "r:" + hex.EncodeToString(live.RefreshHash),
		p + "s:live",
		// The user's index of session IDs: the live session's, and the
		// gone one's, which nothing left names; that one expires on its
		// own (and RevokeUserSessions drops entries whose session is gone).
		p + "u:u-gone",
		p + "u:u-live",
	}
	if !slices.Equal(keys, want) {
		t.Fatalf("keys after the sweep:\n%s\nwant\n%s", strings.Join(keys, "\n"), strings.Join(want, "\n"))
	}
	if n, err := s.DeleteExpired(ctx, now); err != nil || n != 0 {
		t.Fatalf("second DeleteExpired = %d, %v; want 0", n, err)
	}
	if _, err := s.SessionByAccess(ctx, live.AccessHash); err != nil {
		t.Fatalf("live session after the sweep: %v", err)
	}
}

// TestNoSecretsStored checks that Redis holds hashes of the tokens and
// codes, never the tokens or codes themselves, in any usual encoding.
func TestNoSecretsStored(t *testing.T) {
	s, p := openTest(t, redis.Options{})
	c := rawClient(t, testURL(t))
	ctx := t.Context()
	now := time.Now()
	secrets := []string{
		"mpa_" + rand.Text(), "mpr_" + rand.Text(), // first access and refresh token
		"mpa_" + rand.Text(), "mpr_" + rand.Text(), // after a rotation
		"0a1B2c3D4e5F6g7H8i9J0k1L2m3N4o5P", // a login code
	}
	sess := session("s1", now, false)
	sess.AccessHash, sess.RefreshHash = sha(secrets[0]), sha(secrets[1])
	if err := s.CreateSession(ctx, sess); err != nil {
		t.Fatal(err)
	}
	r := store.Rotation{
		OldRefreshHash: sess.RefreshHash, NewAccessHash: sha(secrets[2]),
		AccessExpiresAt: now.Add(time.Hour), NewRefreshHash: sha(secrets[3]),
		RefreshExpiresAt: now.Add(30 * day), Now: now,
	}
	if _, err := s.RotateRefresh(ctx, r); err != nil {
		t.Fatal(err)
	}
	if err := s.PutCode(ctx, store.ExchangedCode{Hash: sha("main\x00" + secrets[4]), App: "main",
		Family: "wechat", AppID: "wxA", OpenID: "o1", ExpiresAt: now.Add(time.Minute)}); err != nil {
		t.Fatal(err)
	}
	if _, err := s.AddDecryptFailure(ctx, "s1"); err != nil {
		t.Fatal(err)
	}

	var dump bytes.Buffer
	for _, k := range scanKeys(t, c, p) {
		dump.WriteString(k + "\n")
		switch typ := c.Type(ctx, k).Val(); typ {
		case "string":
			dump.WriteString(c.Get(ctx, k).Val())
		case "hash":
			for f, v := range c.HGetAll(ctx, k).Val() {
				dump.WriteString(f + "=" + v + "\n")
			}
		case "set":
			dump.WriteString(strings.Join(c.SMembers(ctx, k).Val(), "\n"))
		case "zset":
			dump.WriteString(strings.Join(c.ZRange(ctx, k, 0, -1).Val(), "\n"))
		default:
			t.Errorf("key %s has unexpected type %q", k, typ)
		}
		dump.WriteString("\n")
	}
	lower := strings.ToLower(dump.String())
	for _, sec := range secrets {
		for _, form := range []string{
			sec,
			hex.EncodeToString([]byte(sec)),
			base64.StdEncoding.EncodeToString([]byte(sec)),
			base64.RawURLEncoding.EncodeToString([]byte(sec)),
		} {
			if strings.Contains(dump.String(), form) || strings.Contains(lower, strings.ToLower(form)) {
				t.Errorf("Redis holds a secret (%q) in clear:\n%s", form, dump.String())
			}
		}
	}
	// What it holds instead: the hashes.
	if !strings.Contains(dump.String(), hex.EncodeToString(sha(secrets[2]))) {
		t.Errorf("the access hash is not in Redis:\n%s", dump.String())
	}
}

// TestUnreachable: a Redis that does not answer gives ErrUnavailable,
// promptly, and the password never shows in an error.
func TestUnreachable(t *testing.T) {
	const password = "s3cret-Pa55word"
	start := time.Now()
	_, err := redis.Open(t.Context(), "redis://default:"+password+"@127.0.0.1:1/0",
		redis.Options{DialTimeout: 500 * time.Millisecond})
	if !errors.Is(err, store.ErrUnavailable) {
		t.Fatalf("Open(unreachable) = %v, want ErrUnavailable", err)
	}
	if d := time.Since(start); d > 3*time.Second {
		t.Errorf("Open(unreachable) took %v", d)
	}
	if strings.Contains(err.Error(), password) {
		t.Errorf("error shows the password: %v", err)
	}
	// Through Sentinels that do not answer: the same.
	_, err = redis.Open(t.Context(), "redis://127.0.0.1:1/0?master_name=mymaster&password="+password,
		redis.Options{DialTimeout: 500 * time.Millisecond})
	if !errors.Is(err, store.ErrUnavailable) {
		t.Fatalf("Open(unreachable Sentinel) = %v, want ErrUnavailable", err)
	}
	if strings.Contains(err.Error(), password) {
		t.Errorf("error shows the password: %v", err)
	}

	for _, bad := range []string{
		"redis://default:" + password + "@127.0.0.1:notaport/0",
		"redis://default:" + password + "@127.0.0.1:6379/notadb",
		"redis://default:" + url.PathEscape(password+"/?") + "@127.0.0.1:6379/0?dial_timeout=x",
		"http://default:" + password + "@127.0.0.1:6379/0",
		"redis://default:" + password + "@[::1/0",
		"redis://127.0.0.1:1/0?master_name=m&password=" + password + "&bogus=1",
		"redis://127.0.0.1:1/x?master_name=m&password=" + url.QueryEscape(password+"&"),
	} {
		_, err := redis.Open(t.Context(), bad, redis.Options{})
		if err == nil {
			t.Errorf("Open(%q) succeeded", bad)
			continue
		}
		t.Logf("Open(…) = %v", err)
		if strings.Contains(err.Error(), password) || strings.Contains(err.Error(), "Pa55") {
			t.Errorf("error shows the password: %v", err)
		}
	}
}

// TestReconnect: while Redis is unreachable calls fail with ErrUnavailable;
// when it is back the store works again by itself.
func TestReconnect(t *testing.T) {
	for _, m := range modes {
		t.Run(m.name, func(t *testing.T) { testReconnect(t, m.opts) })
	}
}

func testReconnect(t *testing.T, opts redis.Options) {
	u := testURL(t)
	if strings.Contains(u, "master_name=") {
		t.Skip("the proxy stands for one Redis, not Sentinels")
	}
	pu, err := url.Parse(u)
	if err != nil {
		t.Fatal(err)
	}
	px := testutil.NewProxy(t, pu.Host)
	pu.Host = px.Addr()
	// The keys are cleaned up through the direct URL.
	prefix := fmt.Sprintf("mplogin-test:%s:%d:", runID, prefixSeq.Add(1))
	t.Cleanup(func() { deleteKeys(t, rawClient(t, u), prefix) })
	opts.KeyPrefix = prefix
	// Generous timeouts: while the proxy is down calls fail at once
	// (refused, or the connection closed), so these only absorb a slow
	// machine.
	opts.DialTimeout, opts.ReadTimeout, opts.WriteTimeout = 3*time.Second, 3*time.Second, 3*time.Second
	s, err := redis.Open(t.Context(), pu.String(), opts)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	ctx := t.Context()
	sess := session("s1", time.Now(), false)
	if err := s.CreateSession(ctx, sess); err != nil {
		t.Fatal(err)
	}

	// burst reads the session from 32 goroutines at once, so that the
	// reads go through the autopipeliner too, and returns their errors.
	burst := func() []error {
		errs := make([]error, 32)
		var wg sync.WaitGroup
		for i := range errs {
			wg.Go(func() {
				got, err := s.SessionByAccess(ctx, sess.AccessHash)
				if err == nil && got.ID != "s1" {
					err = fmt.Errorf("session %q", got.ID)
				}
				errs[i] = err
			})
		}
		wg.Wait()
		return errs
	}
	for _, err := range burst() { // connections to break
		if err != nil {
			t.Fatal(err)
		}
	}

	px.Stop()
	start := time.Now()
	for _, call := range []func() error{
		func() error { _, err := s.SessionByAccess(ctx, sess.AccessHash); return err },
		func() error { return s.Ping(ctx) },
		func() error { _, err := s.AddDecryptFailure(ctx, "s1"); return err },
		func() error { return errors.Join(burst()...) },
	} {
		if err := call(); !errors.Is(err, store.ErrUnavailable) {
			t.Errorf("call while Redis is away: %v, want ErrUnavailable", err)
		}
	}
	for _, err := range burst() {
		if !errors.Is(err, store.ErrUnavailable) {
			t.Errorf("concurrent read while Redis is away: %v, want ErrUnavailable", err)
		}
	}
	if d := time.Since(start); d > 10*time.Second {
		t.Errorf("failing calls took %v", d)
	}

	if err := px.Start(); err != nil {
		t.Fatalf("proxy listen: %v", err)
	}
	deadline := time.Now().Add(15 * time.Second)
	for {
		err := errors.Join(burst()...)
		if err == nil {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("no reconnection: %v", err)
		}
		time.Sleep(50 * time.Millisecond)
	}
	if n, err := s.AddDecryptFailure(ctx, "s1"); err != nil || n != 1 {
		t.Fatalf("AddDecryptFailure after reconnecting = %d, %v; want 1 (none counted while away)", n, err)
	}
}

// TestConcurrentReads reads sessions and codes from many goroutines at
// once, so that reads are batched, and checks each caller gets its own.
func TestConcurrentReads(t *testing.T) {
	for _, m := range modes {
		t.Run(m.name, func(t *testing.T) {
			// 64 callers share 20 connections without autopipelining:
			// give a slow (-race, busy) machine time to serve them.
			opts := m.opts
			opts.ReadTimeout, opts.WriteTimeout = 5*time.Second, 5*time.Second
			s, _ := openTest(t, opts)
			ctx := t.Context()
			now := time.Now()
			const n = 100
			for i := range n {
				id := fmt.Sprint("s", i)
				if err := s.CreateSession(ctx, session(id, now, false)); err != nil {
					t.Fatal(err)
				}
				if err := s.PutCode(ctx, store.ExchangedCode{Hash: sha("code:" + id), App: "main",
					Family: "wechat", AppID: "wxA", OpenID: "o-" + id, ExpiresAt: now.Add(time.Hour)}); err != nil {
					t.Fatal(err)
				}
			}
			var wg sync.WaitGroup
			for g := range 64 {
				wg.Go(func() {
					for j := range 50 {
						id := fmt.Sprint("s", (g*7+j)%n)
						sess, err := s.SessionByAccess(ctx, sha("mpa_"+id))
						if err != nil || sess.ID != id {
							t.Errorf("SessionByAccess(%s) = %q, %v", id, sess.ID, err)
							return
						}
						c, err := s.GetCode(ctx, sha("code:"+id), now)
						if err != nil || c.OpenID != "o-"+id {
							t.Errorf("GetCode(%s) = %q, %v", id, c.OpenID, err)
							return
						}
						if _, err := s.SessionByAccess(ctx, sha("unknown"+id)); !errors.Is(err, store.ErrNotFound) {
							t.Errorf("SessionByAccess(unknown) = %v", err)
							return
						}
					}
				})
			}
			wg.Wait()
		})
	}
}

// TestPrefixes: two stores with different prefixes on one Redis do not see
// each other's sessions.
func TestPrefixes(t *testing.T) {
	a, _ := openTest(t, redis.Options{})
	b, _ := openTest(t, redis.Options{})
	sess := session("s1", time.Now(), false)
	if err := a.CreateSession(t.Context(), sess); err != nil {
		t.Fatal(err)
	}
	if _, err := b.SessionByAccess(t.Context(), sess.AccessHash); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("other prefix: %v, want ErrNotFound", err)
	}
	if err := b.CreateSession(t.Context(), sess); err != nil {
		t.Fatalf("same session under another prefix: %v", err)
	}
}

// modes are the two ways the store can send its reads.
var modes = []struct {
	name string
	opts redis.Options
}{
	{"autopipeline", redis.Options{}},
	{"plain", redis.Options{NoAutoPipeline: true}},
}

// BenchmarkSessionByAccess measures the check of an access token, the most
// frequent call (GET /v1/session): one GET, over 10,000 sessions, from
// 1, 8 and 32 callers per GOMAXPROCS (an HTTP server under load has many
// requests in flight), with and without autopipelining.
func BenchmarkSessionByAccess(b *testing.B) {
	for _, m := range modes {
		s, _ := openTest(b, m.opts)
		ctx := b.Context()
		const n = 10_000
		now := time.Now()
		hashes := make([][]byte, n)
		for i := range n {
			sess := session(fmt.Sprint("s", i), now, false)
			hashes[i] = sess.AccessHash
			if err := s.CreateSession(ctx, sess); err != nil {
				b.Fatal(err)
			}
		}
		for _, par := range []int{1, 8, 32} {
			b.Run(fmt.Sprintf("%s/par=%d", m.name, par), func(b *testing.B) {
				var seq atomic.Int64
				b.ReportAllocs()
				b.SetParallelism(par)
				b.ResetTimer()
				b.RunParallel(func(pb *testing.PB) {
					for pb.Next() {
						if _, err := s.SessionByAccess(ctx, hashes[seq.Add(1)%n]); err != nil {
							b.Error(err)
							return
						}
					}
				})
			})
		}
	}
}

// BenchmarkCreateSession measures storing new sessions (the session half
// of a login) from parallel callers.
func BenchmarkCreateSession(b *testing.B) {
	s, _ := openTest(b, redis.Options{})
	ctx := b.Context()
	now := time.Now()
	var seq atomic.Int64
	b.ReportAllocs()
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			if err := s.CreateSession(ctx, session(fmt.Sprint("s", seq.Add(1)), now, false)); err != nil {
				b.Error(err)
				return
			}
		}
	})
}

// oldEncoding re-encodes the value v (fields as <length>:<bytes>) keeping
// only its first n fields, as the previous version wrote it.
func oldEncoding(t *testing.T, v string, n int) string {
	t.Helper()
	var b strings.Builder
	for i := range n {
		l, rest, ok := strings.Cut(v, ":")
		var m int
		if _, err := fmt.Sscan(l, &m); !ok || err != nil || m > len(rest) {
			t.Fatalf("bad encoded value at field %d: %q", i, v)
		}
		fmt.Fprintf(&b, "%d:%s", m, rest[:m])
		v = rest[m:]
	}
	return b.String()
}

// TestUpgrade: sessions and codes as the version before origins, successors
// and repeats wrote them (a session hash without its origin, 16 encoded
// fields under the access key, codes of 6 fields) keep working.
func TestUpgrade(t *testing.T) {
	s, p := openTest(t, redis.Options{})
	c := rawClient(t, testURL(t))
	ctx := t.Context()
	now := time.Now().Truncate(time.Microsecond)
	hx := hex.EncodeToString

	sess := session("s1", now, false)
	legacyWriter{c: c, prefix: p}.create(t, sess)
	ak := p + "a:" + hx(sess.AccessHash)
	if err := c.HDel(ctx, p+"s:s1", "or").Err(); err != nil {
		t.Fatal(err)
	}
	v := c.Get(ctx, ak).Val()
	if err := c.Set(ctx, ak, oldEncoding(t, v, 16), goredis.KeepTTL).Err(); err != nil {
		t.Fatal(err)
	}

	check := func(what string, got store.Session, err error) {
		t.Helper()
		if err != nil || got.ID != "s1" || got.Origin != "" || got.UserID != "u-s1" || len(got.Successor) != 0 {
			t.Fatalf("%s = %+v, %v", what, got, err)
		}
	}
	got, err := s.SessionByAccess(ctx, sess.AccessHash)
	check("SessionByAccess(old value)", got, err)
	if !got.CreatedAt.Equal(sess.CreatedAt) || !bytes.Equal(got.RefreshHash, sess.RefreshHash) {
		t.Fatalf("SessionByAccess(old value) = %+v", got)
	}
	got, err = s.SessionByID(ctx, "s1")
	check("SessionByID(old hash)", got, err)
	got, err = s.SessionForLogout(ctx, sess.AccessHash)
	check("SessionForLogout(old value)", got, err)

	// The origin filter and the cap see it as a session of no origin.
	if n, err := s.RevokeUserSessions(ctx, store.UserRevocation{UserID: "u-s1", Origin: "s0", Now: now}); err != nil || n != 0 {
		t.Fatalf("RevokeUserSessions(another origin) = %d, %v; want 0", n, err)
	}
	if n, err := s.RevokeUserSessions(ctx, store.UserRevocation{UserID: "u-s1", Origin: "s1", Keep: 1, Now: now}); err != nil || n != 0 {
		t.Fatalf("RevokeUserSessions(own origin, keep 1) = %d, %v; want 0", n, err)
	}

	// A rotation rewrites it in the new encoding.
	r := store.Rotation{
		OldRefreshHash: sess.RefreshHash, NewAccessHash: sha("mpa_s1b"),
		AccessExpiresAt: now.Add(time.Hour), NewRefreshHash: sha("mpr_s1b"),
		RefreshExpiresAt: now.Add(30 * day), Now: now,
	}
	got, err = s.RotateRefresh(ctx, r)
	check("RotateRefresh(old session)", got, err)
	got, err = s.SessionByAccess(ctx, r.NewAccessHash)
	check("SessionByAccess(after the rotation)", got, err)
	// The first token, spent by a rotation that stored no successor: reuse.
	r.NewAccessHash, r.NewRefreshHash = sha("x1"), sha("x2")
	got, err = s.RotateRefresh(ctx, r)
	if !errors.Is(err, store.ErrReused) || got.ID != "s1" || !got.RevokedAt.Equal(now) {
		t.Fatalf("replay = %+v, %v; want the revoked session and ErrReused", got, err)
	}

	// A code of 6 fields: no session, window or repeats; no repeat allowed.
	code := store.ExchangedCode{Hash: sha("code:1"), App: "main", Family: "wechat", AppID: "wxA",
		OpenID: "o1", ExpiresAt: now.Add(5 * time.Minute)}
	if err := s.PutCode(ctx, code); err != nil {
		t.Fatal(err)
	}
	ck := p + "c:" + hx(code.Hash)
	if err := c.Set(ctx, ck, oldEncoding(t, c.Get(ctx, ck).Val(), 6), goredis.KeepTTL).Err(); err != nil {
		t.Fatal(err)
	}
	gc, err := s.GetCode(ctx, code.Hash, now)
	if err != nil || gc.OpenID != "o1" || gc.SessionID != "" || !gc.ReplayUntil.IsZero() || gc.Replays != 0 {
		t.Fatalf("GetCode(old value) = %+v, %v", gc, err)
	}
	gc, err = s.ClaimReplay(ctx, code.Hash, now, 3)
	if !errors.Is(err, store.ErrReplayRefused) || gc.OpenID != "o1" || gc.Replays != 0 {
		t.Fatalf("ClaimReplay(old value) = %+v, %v; want the code and ErrReplayRefused", gc, err)
	}
	if got := c.Get(ctx, ck).Val(); got != oldEncoding(t, got, 6) {
		t.Fatalf("a refused claim rewrote the code: %q", got)
	}
}

// TestSuccessorKeptApart: a rotation's successor stays under g:<id>, out
// of the session hash, of the access key's copy and of every read but a
// repeat's answer, and a rotation without one drops it.
func TestSuccessorKeptApart(t *testing.T) {
	s, p := openTest(t, redis.Options{})
	c := rawClient(t, testURL(t))
	ctx := t.Context()
	now := time.Now().Truncate(time.Microsecond)
	sess := session("s1", now, false)
	if err := s.CreateSession(ctx, sess); err != nil {
		t.Fatal(err)
	}
	succ := []byte("sealed successor \x00\xff" + strings.Repeat("x", 130))
	r := store.Rotation{
		OldRefreshHash: sess.RefreshHash, NewAccessHash: sha("mpa_2"),
		AccessExpiresAt: now.Add(time.Hour), NewRefreshHash: sha("mpr_2"),
		RefreshExpiresAt: now.Add(30 * day), Now: now,
		Successor: succ, SuccessorUntil: now.Add(30 * time.Second),
	}
	if got, err := s.RotateRefresh(ctx, r); err != nil || len(got.Successor) != 0 {
		t.Fatalf("RotateRefresh = %+v, %v", got, err)
	}
	if v := c.Get(ctx, p+"a:"+hex.EncodeToString(r.NewAccessHash)).Val(); strings.Contains(v, "sealed") {
		t.Fatalf("the access key holds the successor: %q", v)
	}
	for f, v := range c.HGetAll(ctx, p+"s:s1").Val() {
		if strings.Contains(f+v, "sealed") {
			t.Fatalf("the session hash holds the successor: %q = %q", f, v)
		}
	}
	if got := c.Get(ctx, p+"g:s1").Val(); !strings.HasSuffix(got, string(succ)) ||
		!strings.Contains(got, string(sess.RefreshHash)) {
		t.Fatalf("g:s1 = %q, want the spent hash and the successor", got)
	}
	for _, read := range []func() (store.Session, error){
		func() (store.Session, error) { return s.SessionByID(ctx, "s1") },
		func() (store.Session, error) { return s.SessionByAccess(ctx, r.NewAccessHash) },
		func() (store.Session, error) { return s.SessionForLogout(ctx, sess.AccessHash) },
	} {
		if got, err := read(); err != nil || len(got.Successor) != 0 {
			t.Fatalf("read = %+v, %v; want no successor", got, err)
		}
	}
	repeat := r
	repeat.NewAccessHash, repeat.NewRefreshHash, repeat.Now = sha("x1"), sha("x2"), now.Add(time.Second)
	if got, err := s.RotateRefresh(ctx, repeat); !errors.Is(err, store.ErrRecentlySpent) || !bytes.Equal(got.Successor, succ) {
		t.Fatalf("repeat = %q, %v; want the successor, ErrRecentlySpent", got.Successor, err)
	}

	r2 := store.Rotation{
		OldRefreshHash: r.NewRefreshHash, NewAccessHash: sha("mpa_3"),
		AccessExpiresAt: now.Add(time.Hour), NewRefreshHash: sha("mpr_3"),
		RefreshExpiresAt: now.Add(30 * day), Now: now.Add(2 * time.Second),
	}
	if _, err := s.RotateRefresh(ctx, r2); err != nil {
		t.Fatal(err)
	}
	if c.Exists(ctx, p+"g:s1").Val() != 0 {
		t.Fatal("the successor outlived a rotation without one")
	}
}
