package accesstoken_test

import (
	"bytes"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/mplogin/mplogin/accesstoken"
	"github.com/mplogin/mplogin/emulator"
	"github.com/mplogin/mplogin/internal/testutil"
	"github.com/mplogin/mplogin/keyring"
	"github.com/mplogin/mplogin/platform"
	"github.com/mplogin/mplogin/platform/baidu"
	"github.com/mplogin/mplogin/platform/wechat"
	"github.com/mplogin/mplogin/secret"
	"github.com/mplogin/mplogin/store"
	"github.com/mplogin/mplogin/store/memory"
)

const (
	wxApp    = "wx0123456789abcdef"
	wxSecret = "wechat-secret-7f3a9c"
	bdApp    = "y2dTfnWfkx2OXttMEMWlGHoB1KzMogm7"
	bdSecret = "baidu-secret-0c41d2"
)

var (
	wxKey = accesstoken.Key("wechat", wxApp)
	bdKey = accesstoken.Key("baidu", bdApp)
)

// recorder stands in front of the emulator: it checks every stable_token
// request for force_refresh, remembers every token handed out (to search
// the logs for them), and can hold stable_token requests at a gate.
type recorder struct {
	next http.Handler

	mu      sync.Mutex
	stable  int      // stable_token requests seen
	forced  []string // bodies that did not say force_refresh=false
	tokens  []string // every access_token answered
	gate    chan struct{}
	arrived chan struct{}
}

func (rc *recorder) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if r.URL.Path == wechat.PathStableToken {
		body, _ := io.ReadAll(r.Body)
		r.Body = io.NopCloser(bytes.NewReader(body))
		var req map[string]any
		_ = json.Unmarshal(body, &req)
		rc.mu.Lock()
		rc.stable++
		if req["force_refresh"] != false {
			rc.forced = append(rc.forced, string(body))
		}
		gate, arrived := rc.gate, rc.arrived
		rc.mu.Unlock()
		if gate != nil {
			arrived <- struct{}{}
			<-gate
		}
	}
	tw := &teeWriter{ResponseWriter: w}
	rc.next.ServeHTTP(tw, r)
	var ans struct {
		AccessToken string `json:"access_token"`
	}
	if json.Unmarshal(tw.buf.Bytes(), &ans) == nil && ans.AccessToken != "" {
		rc.mu.Lock()
		rc.tokens = append(rc.tokens, ans.AccessToken)
		rc.mu.Unlock()
	}
}

// hold makes stable_token requests wait until release; arrived receives
// one value per request that reached the gate.
func (rc *recorder) hold() (arrived <-chan struct{}, release func()) {
	rc.mu.Lock()
	defer rc.mu.Unlock()
	rc.gate, rc.arrived = make(chan struct{}), make(chan struct{}, 1000)
	gate, ch := rc.gate, rc.arrived
	return ch, func() {
		rc.mu.Lock()
		rc.gate = nil
		rc.mu.Unlock()
		close(gate)
	}
}

type teeWriter struct {
	http.ResponseWriter
	buf bytes.Buffer
}

func (t *teeWriter) Write(p []byte) (int, error) {
	t.buf.Write(p)
	return t.ResponseWriter.Write(p)
}

func (t *teeWriter) Unwrap() http.ResponseWriter { return t.ResponseWriter }

// fixture is an emulator behind a recorder, platform clients for one
// WeChat and one Baidu app, a shared store and keyring, and a log.
type fixture struct {
	t     *testing.T
	clock *testutil.Clock // the injected time of the emulator and the managers
	em    *emulator.Emulator
	rec   *recorder
	url   string
	hc    *http.Client
	wx    *wechat.Client
	bd    *baidu.Client
	store store.Store
	keys  *keyring.Keyring
	logs  *testutil.Buffer
}

func newFixture(t *testing.T) *fixture {
	t.Helper()
	f := &fixture{t: t, clock: testutil.NewClock(time.Date(2025, 3, 1, 12, 0, 0, 0, time.UTC)), store: memory.New(), logs: &testutil.Buffer{}}
	f.em = emulator.New(emulator.Config{Now: f.clock.Now, Apps: []emulator.App{
		{Family: "wechat", AppID: wxApp, Secret: wxSecret},
		{Family: "baidu", AppID: bdApp, Secret: bdSecret},
	}})
	f.rec = &recorder{next: f.em}
	srv := httptest.NewServer(f.rec)
	f.url = srv.URL
	f.hc = platform.NewHTTPClient(platform.HTTPConfig{})
	t.Cleanup(func() { f.hc.CloseIdleConnections(); srv.Close() })
	var err error
	if f.wx, err = wechat.New(wechat.Config{AppID: wxApp, Secret: secret.New(wxSecret), Endpoint: f.url, HTTP: f.hc}); err != nil {
		t.Fatal(err)
	}
	if f.bd, err = baidu.New(baidu.Config{AppKey: bdApp, AppSecret: secret.New(bdSecret), Endpoint: f.url, HTTP: f.hc}); err != nil {
		t.Fatal(err)
	}
	if f.keys, err = keyring.New(nil, bytes.Repeat([]byte{7}, keyring.KeySize)); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(f.checkAfter)
	return f
}

// checkAfter holds for every test: no force_refresh was ever sent,
// and no token handed out appears in the logs.
func (f *fixture) checkAfter() {
	f.rec.mu.Lock()
	defer f.rec.mu.Unlock()
	if len(f.rec.forced) > 0 {
		f.t.Errorf("stable_token requests without force_refresh=false: %q", f.rec.forced)
	}
	logs := f.logs.String()
	for _, tok := range f.rec.tokens {
		if strings.Contains(logs, tok) {
			f.t.Errorf("a token is in the logs:\n%s", logs)
		}
	}
	for _, s := range []string{wxSecret, bdSecret} {
		if strings.Contains(logs, s) {
			f.t.Errorf("a secret is in the logs:\n%s", logs)
		}
	}
}

// manager returns a Manager on the fixture's clock, log and keyring, with
// both apps registered, sharing st (nil: no store).
func (f *fixture) manager(st store.AccessTokens, cfg ...func(*accesstoken.Config)) *accesstoken.Manager {
	f.t.Helper()
	c := accesstoken.Config{Store: st, Keys: f.keys, Now: f.clock.Now,
		Logger: slog.New(slog.NewJSONHandler(f.logs, &slog.HandlerOptions{Level: slog.LevelDebug}))}
	for _, fn := range cfg {
		fn(&c)
	}
	m, err := accesstoken.New(c)
	if err != nil {
		f.t.Fatal(err)
	}
	if err := m.Register(wxKey, f.wx); err != nil {
		f.t.Fatal(err)
	}
	if err := m.Register(bdKey, f.bd); err != nil {
		f.t.Fatal(err)
	}
	return m
}

// fetches is how often the emulator was asked for a stable token.
func (f *fixture) fetches() int64 { return f.em.Stats()[wechat.PathStableToken] }

func (f *fixture) wantFetches(want int64) {
	f.t.Helper()
	if got := f.fetches(); got != want {
		f.t.Fatalf("%d stable_token fetches, want %d", got, want)
	}
}

// stored opens what the store holds for key.
func (f *fixture) stored(key string) (string, store.AccessToken, error) {
	st, err := f.store.GetAccessToken(f.t.Context(), key)
	if err != nil {
		return "", st, err
	}
	plain, err := f.keys.Open(st.Sealed, []byte("access_token\x00"+key))
	return string(plain), st, err
}

func keyringOf(t *testing.T, b byte) (*keyring.Keyring, error) {
	t.Helper()
	k, err := keyring.New(nil, bytes.Repeat([]byte{b}, keyring.KeySize))
	if err != nil {
		t.Fatal(err)
	}
	return k, nil
}
