package session_test

import (
	"bytes"
	"context"
	"fmt"
	"log/slog"
	"testing"
	"time"

	"github.com/mplogin/mplogin/internal/testutil"
	"github.com/mplogin/mplogin/keyring"
	"github.com/mplogin/mplogin/session"
	"github.com/mplogin/mplogin/store"
	"github.com/mplogin/mplogin/store/memory"
)

// fixture is a Service over a memory store, on a clock the test sets, with
// fake platforms for its apps to use, logging JSON at debug level to logs.
type fixture struct {
	svc      *session.Service
	store    *memory.Store
	plat     *fakePlatform // answers any code (shopApps)
	keyPlat  *keyPlatform  // hands out the session key set last
	api      *fakeAPI      // the platform calls beyond login (apiApps)
	clock    *testutil.Clock
	keys     *keyring.Keyring
	logs     *testutil.Buffer
	svcStore store.Store // the store as the service sees it
	opts     fixtureOptions
}

// fixtureOptions are what a fixtureOption changes; newFixture says the
// defaults.
type fixtureOptions struct {
	path   writePath
	policy session.Policy
	apps   func(*fixture) []session.App
	wrap   func(store.Store) store.Store
	jwt    func(*fixture) *session.JWTConfig
}

type fixtureOption func(*fixtureOptions)

// writes has the service write logins through path.
func writes(path writePath) fixtureOption { return func(o *fixtureOptions) { o.path = path } }

// withPolicy gives the service policy p.
func withPolicy(p session.Policy) fixtureOption { return func(o *fixtureOptions) { o.policy = p } }

// withApps gives the service the apps apps makes of the fixture's fakes.
func withApps(apps func(*fixture) []session.App) fixtureOption {
	return func(o *fixtureOptions) { o.apps = apps }
}

// withJWT gives the service the JWT configuration jwt makes of the
// fixture.
func withJWT(jwt func(*fixture) *session.JWTConfig) fixtureOption {
	return func(o *fixtureOptions) { o.jwt = jwt }
}

// wrapStore has wrap stand between the service and the memory store.
func wrapStore(wrap func(store.Store) store.Store) fixtureOption {
	return func(o *fixtureOptions) { o.wrap = wrap }
}

// newFixture builds a fixture: by default one whose service writes a login
// in one transaction (one store, not a split), has session.DefaultPolicy and the
// apps of shopApps, on a clock at 2026-01-02 03:04:05 UTC.
func newFixture(t testing.TB, opts ...fixtureOption) *fixture {
	t.Helper()
	keys, err := keyring.New(nil, bytes.Repeat([]byte{7}, 32))
	if err != nil {
		t.Fatal(err)
	}
	f := &fixture{store: memory.New(), plat: &fakePlatform{}, keyPlat: &keyPlatform{}, api: newFakeAPI(),
		clock: testutil.NewClock(time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)), keys: keys, logs: &testutil.Buffer{},
		opts: fixtureOptions{path: oneStore, policy: session.DefaultPolicy, apps: shopApps}}
	for _, o := range opts {
		o(&f.opts)
	}
	f.svcStore = f.store
	if f.opts.wrap != nil {
		f.svcStore = f.opts.wrap(f.svcStore)
	}
	if f.opts.path == splitStore {
		// One memory store as both halves: what a test reads of f.store
		// is what the service wrote through the split.
		f.svcStore = store.Split(f.svcStore, sessionHalf{f.svcStore, f.store})
	}
	f.svc = f.service(t, f.clock.Now)
	return f
}

// service is another Service like f.svc on the clock now: another
// instance of the service, over the same store.
func (f *fixture) service(t testing.TB, now func() time.Time) *session.Service {
	t.Helper()
	var jwt *session.JWTConfig
	if f.opts.jwt != nil {
		jwt = f.opts.jwt(f)
	}
	svc, err := session.New(session.Config{
		Store: f.svcStore, Keys: f.keys, Policy: f.opts.policy, Now: now, Apps: f.opts.apps(f), JWT: jwt,
		Logger: slog.New(slog.NewJSONHandler(f.logs, &slog.HandlerOptions{Level: slog.LevelDebug})),
	})
	if err != nil {
		t.Fatal(err)
	}
	return svc
}

// shopApps are "shop" and "shop2", WeChat apps whose codes f.plat answers.
func shopApps(f *fixture) []session.App {
	return []session.App{{Name: "shop", Family: "wechat", AppID: "wx1", Client: f.plat, CodeTTL: 5 * time.Minute},
		{Name: "shop2", Family: "wechat", AppID: "wx2", Client: f.plat, CodeTTL: 5 * time.Minute}}
}

// decryptApps are "vector" (the published vector's appid, no age check:
// the vector is from 2016), "wx" (24h age check) and "bd" (Baidu), all
// handing out f.keyPlat's key.
func decryptApps(f *fixture) []session.App {
	return []session.App{
		{Name: "vector", Family: "wechat", AppID: vecAppID, Client: f.keyPlat, CodeTTL: 5 * time.Minute},
		{Name: "wx", Family: "wechat", AppID: wxAppID, Client: f.keyPlat, CodeTTL: 5 * time.Minute, UserdataMaxAge: 24 * time.Hour},
		{Name: "bd", Family: "baidu", AppID: bdAppKey, Client: f.keyPlat, CodeTTL: 10 * time.Minute},
	}
}

// apiApps are "wx" (WeChat with f.api), "bare" (WeChat without one), "bd"
// (Baidu, unionid at login) and "bd2" (another Baidu app of the owner), all
// handing out f.keyPlat's key.
func apiApps(f *fixture) []session.App {
	return []session.App{
		{Name: "wx", Family: "wechat", AppID: wxAppID, Client: f.keyPlat, CodeTTL: 5 * time.Minute, Phones: f.api, SessionKeys: f.api},
		{Name: "bare", Family: "wechat", AppID: "wxbare", Client: f.keyPlat, CodeTTL: 5 * time.Minute},
		{Name: "bd", Family: "baidu", AppID: bdAppKey, Client: f.keyPlat, CodeTTL: 10 * time.Minute, UnionIDs: f.api, FetchUnionID: true},
		{Name: "bd2", Family: "baidu", AppID: "bdkey2", Client: f.keyPlat, CodeTTL: 10 * time.Minute, UnionIDs: f.api, FetchUnionID: true},
	}
}

// sessionHalf is the session store of a split fixture: the store as the
// service sees it (wrapped or not), and the memory store's
// CreateLoginSession, which store.Store lacks.
type sessionHalf struct {
	store.Store
	mem *memory.Store
}

func (h sessionHalf) CreateLoginSession(ctx context.Context, c store.ExchangedCode, sess store.Session) error {
	return h.mem.CreateLoginSession(ctx, c, sess)
}

// writePath is how the store writes a login.
type writePath int

const (
	oneStore   writePath = iota // one backend: WriteLogin in one transaction
	splitStore                  // store.Split: the identity, then the code and session
)

// allWritePaths runs test on a fixture (with opts) of each write path.
func allWritePaths(t *testing.T, test func(*testing.T, *fixture), opts ...fixtureOption) {
	for _, w := range []struct {
		name string
		path writePath
	}{{"one store", oneStore}, {"split store", splitStore}} {
		t.Run(w.name, func(t *testing.T) { test(t, newFixture(t, append(opts[:len(opts):len(opts)], writes(w.path))...)) })
	}
}

// login logs user into app with the platform handing out key; each call
// uses a fresh code.
func (f *fixture) login(t testing.TB, app, user, key string) *session.Tokens {
	t.Helper()
	f.keyPlat.setKey(key)
	tok, err := f.svc.Login(context.Background(), app, fmt.Sprintf("%s.%d", user, f.clock.Now().UnixNano()))
	if err != nil {
		t.Fatal(err)
	}
	f.clock.Advance(time.Millisecond) // the next login gets another code
	return tok
}

// failures is the count of decrypt failures of tok's session.
func (f *fixture) failures(t *testing.T, tok *session.Tokens) int {
	t.Helper()
	info, err := f.svc.Check(context.Background(), tok.AccessToken.Reveal())
	if err != nil {
		t.Fatal(err)
	}
	sess, err := f.store.SessionByID(context.Background(), info.SessionID)
	if err != nil {
		t.Fatal(err)
	}
	return sess.DecryptFailures
}
