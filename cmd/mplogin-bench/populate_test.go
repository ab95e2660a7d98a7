package main

import (
	"bytes"
	"context"
	"database/sql"
	"errors"
	"fmt"
	"maps"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/mplogin/mplogin/emulator"
	"github.com/mplogin/mplogin/keyring"
	"github.com/mplogin/mplogin/platform"
	"github.com/mplogin/mplogin/server"
	"github.com/mplogin/mplogin/session"
	"github.com/mplogin/mplogin/store"
	"github.com/mplogin/mplogin/store/sqlite"
	"github.com/mplogin/mplogin/token"
)

func TestPopulatedTokens(t *testing.T) {
	base := time.Date(2026, 12, 7, 0, 0, 0, 0, time.UTC)
	p := &populated{Users: 10, Seed: bytes.Repeat([]byte{1}, 32), Base: base}
	q := &populated{Users: 10, Seed: bytes.Repeat([]byte{2}, 32), Base: base}
	seen := map[string]bool{}
	for i := range uint64(5) {
		for _, prefix := range []string{token.Access, token.Refresh} {
			tok := p.token(prefix, i)
			if tok != p.token(prefix, i) {
				t.Fatal("the same user's token differs between calls")
			}
			if tok == q.token(prefix, i) {
				t.Fatal("two seeds give the same token")
			}
			if seen[tok] {
				t.Fatalf("token %d %s repeats", i, prefix)
			}
			seen[tok] = true
			h, ok := token.Parse(tok, prefix)
			if !ok {
				t.Fatalf("%q does not parse as %s", tok, prefix)
			}
			if at, ok := token.Minted(h); !ok || !at.Equal(p.minted(i).Truncate(time.Millisecond)) {
				t.Errorf("token %d minted at %v, want %v", i, at, p.minted(i))
			}
		}
	}
	if _, ok := token.Parse(p.token(token.Access, 0), token.Refresh); ok {
		t.Error("an access token parses as a refresh token")
	}
	if p.id("user", 3) == p.id("session", 3) || len(p.id("user", 3)) != 32 {
		t.Errorf("ids %q, %q", p.id("user", 3), p.id("session", 3))
	}
}

func TestPick(t *testing.T) {
	const users = 1000
	hits := make([]int, users)
	for w := range 64 {
		for n := range uint64(1000) {
			hits[pick(w, n, users)]++
		}
	}
	for i, h := range hits { // 64 expected each
		if h < 20 || h > 130 {
			t.Fatalf("user %d picked %d times of 64,000", i, h)
		}
	}
}

func TestPopulateSQLite(t *testing.T) {
	ctx := t.Context()
	path := filepath.Join(t.TempDir(), "mplogin.db")
	var log strings.Builder
	logf := func(format string, args ...any) { fmt.Fprintf(&log, format+"\n", args...) }
	const users = 2000
	key := bytes.Repeat([]byte{7}, 32)
	p, err := populateStore(ctx, "sqlite:"+path, "", users, key, logf)
	if err != nil {
		t.Fatal(err)
	}
	if p.Users != users || !p.Sealed {
		t.Fatalf("populated %d users (sealed %v), want %d with sealed tokens", p.Users, p.Sealed, users)
	}

	db, err := sql.Open("sqlite", "file:"+path+"?mode=ro")
	if err != nil {
		t.Fatal(err)
	}
	for _, q := range []string{
		"SELECT count(*) FROM users",
		"SELECT count(*) FROM identities WHERE platform = 'wechat' AND app_id = '" + benchAppID + "'",
		"SELECT count(*) FROM sessions WHERE app = '" + benchApp + "' AND revoked_at IS NULL",
		// Returning users' identities know their unionid, as after a login.
		"SELECT count(*) FROM identities WHERE union_id IS NOT NULL",
	} {
		var n int
		if err := db.QueryRowContext(ctx, q).Scan(&n); err != nil || n != users {
			t.Errorf("%s: %d, %v; want %d", q, n, err, users)
		}
	}
	var union string
	err = db.QueryRowContext(ctx, "SELECT union_id FROM identities WHERE user_id = ?", p.id("user", 1234)).Scan(&union)
	if want := emulator.New(emulator.Config{}).UnionID("wechat", benchAppID, populatedUser(1234)); err != nil || union != want {
		t.Errorf("user 1234's unionid %q, %v; want the emulator's %q", union, err, want)
	}
	db.Close()

	// A second run finds them and writes nothing.
	log.Reset()
	again, err := populateStore(ctx, "sqlite:"+path, "", users, key, logf)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(log.String(), "holds 2000 populated users already") || !bytes.Equal(again.Seed, p.Seed) || !again.Base.Equal(p.Base) {
		t.Fatalf("second run: %+v, log %q", again, log.String())
	}

	// A larger N adds the users it lacks, with the same seed.
	log.Reset()
	const more = users + 500
	grown, err := populateStore(ctx, "sqlite:"+path, "", more, key, logf)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(log.String(), "populating users 2000 to 2499") || grown.Users != more || !bytes.Equal(grown.Seed, p.Seed) {
		t.Fatalf("growing: %+v, log %q", grown, log.String())
	}

	// A regenerated token checks live through the session service, as
	// the harness's service is configured, without a read: the store
	// vouches for the populated tokens.
	st, err := sqlite.Open(ctx, path, sqlite.Options{ChangeWindow: server.ChangeWindow(populatedTTL)})
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	keys, err := keyring.New(nil, key)
	if err != nil {
		t.Fatal(err)
	}
	reads := &readCounter{Store: st}
	policy := session.DefaultPolicy
	policy.AccessTTL = populatedTTL
	svc, err := session.New(session.Config{Store: reads, Changes: st, Keys: keys, Policy: policy,
		Apps: []session.App{{Name: benchApp, Family: "wechat", AppID: benchAppID, Client: noLogins{}, CodeTTL: 5 * time.Minute}}})
	if err != nil {
		t.Fatal(err)
	}
	sl, err := newSealer(key)
	if err != nil {
		t.Fatal(err)
	}
	tok := func(i uint64) string {
		raw, _, err := again.access(sl, i)
		if err != nil {
			t.Fatal(err)
		}
		return raw
	}
	for _, i := range []uint64{0, 1234, users - 1, users, more - 1} {
		info, err := svc.Check(ctx, tok(i))
		if err != nil {
			t.Fatalf("user %d: %v", i, err)
		}
		if info.User.ID != p.id("user", i) || info.App != benchApp {
			t.Errorf("user %d: %+v", i, info)
		}
	}
	// As the load presents them, from any number of workers.
	src, err := populatedTokens(again, more, 0, key)
	if err != nil {
		t.Fatal(err)
	}
	for w := range 300 {
		if _, err := svc.Check(ctx, src(w, uint64(w))); err != nil {
			t.Fatalf("worker %d: %v", w, err)
		}
	}
	if n := reads.n.Load(); n != 0 {
		t.Errorf("the checks of populated tokens read %d sessions, want none", n)
	}
	// The store still knows what ends a populated session.
	if err := st.RevokeSession(ctx, p.id("session", 0), time.Now()); err != nil {
		t.Fatal(err)
	}
	if _, err := svc.Check(ctx, tok(0)); err == nil {
		t.Error("a revoked populated session checks live")
	}
}

// readCounter counts the reads of sessions by access token.
type readCounter struct {
	*sqlite.Store
	n atomic.Int64
}

func (r *readCounter) SessionByAccess(ctx context.Context, h []byte) (store.Session, error) {
	r.n.Add(1)
	return r.Store.SessionByAccess(ctx, h)
}

// noLogins is a WeChat app's client for a service that only checks
// sessions.
type noLogins struct{}

func (noLogins) Flavor() platform.Flavor { return platform.FlavorWeChat }

func (noLogins) Exchange(context.Context, platform.ExchangeRequest) (*platform.Login, error) {
	return nil, errors.New("no logins here")
}

// TestAddExpired: the dead sessions belong to populated users, and the
// janitor's sweep deletes them and only them.
func TestAddExpired(t *testing.T) {
	ctx := t.Context()
	path := filepath.Join(t.TempDir(), "mplogin.db")
	logf := func(string, ...any) {}
	const users, dead = 300, 700
	key := bytes.Repeat([]byte{7}, 32)
	p, err := populateStore(ctx, "sqlite:"+path, "", users, key, logf)
	if err != nil {
		t.Fatal(err)
	}
	if err := addExpired(ctx, "sqlite:"+path, p, dead, logf); err != nil {
		t.Fatal(err)
	}
	db, err := sql.Open("sqlite", "file:"+path+"?mode=ro")
	if err != nil {
		t.Fatal(err)
	}
	var n, owners int
	err = db.QueryRowContext(ctx, `SELECT count(*), count(DISTINCT s.user_id) FROM sessions s
		JOIN identities i ON i.user_id = s.user_id AND i.open_id = s.open_id`).Scan(&n, &owners)
	db.Close()
	if err != nil || n != users+dead || owners != users {
		t.Fatalf("sessions of populated users: %d of %d owners, %v; want %d of %d", n, owners, err, users+dead, users)
	}
	st, err := sqlite.Open(ctx, path, sqlite.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	if swept, err := st.DeleteExpired(ctx, time.Now()); err != nil || swept != dead {
		t.Fatalf("DeleteExpired = %d, %v; want %d", swept, err, dead)
	}
	sl, err := newSealer(key)
	if err != nil {
		t.Fatal(err)
	}
	if err := checkPopulated(ctx, st, p, sl); err != nil {
		t.Fatal(err)
	}
}

// TestSwept reads the janitor's count from the service's metrics.
func TestSwept(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/metrics" {
			http.NotFound(w, r)
			return
		}
		fmt.Fprint(w, "# HELP mplogin_swept_total x\n# TYPE mplogin_swept_total counter\nmplogin_swept_total 1.2345e+06\nmplogin_sweep_duration_seconds_count 3\n")
	}))
	defer srv.Close()
	n, err := (&service{base: srv.URL}).swept(t.Context())
	if err != nil || n != 1234500 {
		t.Fatalf("swept = %d, %v; want 1234500", n, err)
	}
	if _, err := (&service{base: srv.URL + "/nothing"}).swept(t.Context()); err == nil {
		t.Fatal("no metrics: no error")
	}
}

// TestPopulatedHalves: the checks present the even users' tokens and the
// returning logins log in the odd users, all of them, so that no login
// can push a checked session past the cap.
func TestPopulatedHalves(t *testing.T) {
	p := &populated{Users: 7, Seed: bytes.Repeat([]byte{2}, 32), Base: time.Unix(1_700_000_000, 0).UTC()}
	even := map[string]bool{}
	for i := uint64(0); i < 7; i += 2 {
		even[p.token(token.Access, i)] = false
	}
	tokens, err := populatedTokens(p, 7, 0, bytes.Repeat([]byte{7}, 32))
	if err != nil {
		t.Fatal(err)
	}
	users := populatedUsers(7)
	logins := map[string]bool{}
	for w := range 8 {
		for n := range uint64(200) {
			tok := tokens(w, n)
			if _, ok := even[tok]; !ok {
				t.Fatalf("token %q is not an even user's", tok)
			}
			even[tok] = true
			logins[users(w, n)] = true
		}
	}
	for tok, seen := range even {
		if !seen {
			t.Errorf("token %q never checked", tok)
		}
	}
	if want := map[string]bool{populatedUser(1): true, populatedUser(3): true, populatedUser(5): true}; !maps.Equal(logins, want) {
		t.Errorf("returning logins of %v, want %v", logins, want)
	}
}

// TestPopulatedUsersDraw: two runs (or rounds) of returning logins do not
// log in the same users, request for request, so that no user's sessions
// pile up over many runs.
func TestPopulatedUsersDraw(t *testing.T) {
	first, second := populatedUsers(10_000_000), populatedUsers(10_000_000)
	same := 0
	for w := range 4 {
		for n := range uint64(250) {
			if first(w, n) == second(w, n) {
				same++
			}
		}
	}
	if same > 2 {
		t.Errorf("%d of 1,000 logins picked the same user in both runs", same)
	}
}

// TestSkewedPick: every pick is a user, the same (w, n) gives the same user,
// and the most checked user gets far more than a uniform share while the
// many rarely checked ones get less.
func TestSkewedPick(t *testing.T) {
	const users, draws = 1000, 200_000
	hits := make([]int, users)
	for w := range 8 {
		for n := range uint64(draws / 8) {
			u := skewedPick(w, n, users, 1.2)
			if u >= users {
				t.Fatalf("pick %d of %d users", u, users)
			}
			if again := skewedPick(w, n, users, 1.2); again != u {
				t.Fatalf("(%d, %d) picked %d, then %d", w, n, u, again)
			}
			hits[u]++
		}
	}
	slices.Sort(hits)
	top, median := hits[users-1], hits[users/2]
	if uniform := draws / users; top < 20*uniform || median >= uniform {
		t.Fatalf("most checked user %d times, median %d; a uniform pick gives %d each", top, median, uniform)
	}
}

// TestForEach: every k is called once, and an error is returned and stops
// new calls.
func TestForEach(t *testing.T) {
	var seen [500]atomic.Int32
	if err := forEach(t.Context(), 8, len(seen), func(k int) error { seen[k].Add(1); return nil }); err != nil {
		t.Fatal(err)
	}
	for k := range seen {
		if n := seen[k].Load(); n != 1 {
			t.Fatalf("k = %d called %d times", k, n)
		}
	}
	var calls atomic.Int32
	boom := errors.New("boom")
	err := forEach(t.Context(), 4, 10_000, func(k int) error {
		calls.Add(1)
		if k == 10 {
			return boom
		}
		return nil
	})
	if !errors.Is(err, boom) || calls.Load() > 5_000 {
		t.Fatalf("forEach = %v after %d calls; want boom, soon", err, calls.Load())
	}
}
