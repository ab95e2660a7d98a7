package server_test

import (
	"bytes"
	"context"
	"crypto/rsa"
	"crypto/sha256"
	"database/sql"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	_ "modernc.org/sqlite"

	"github.com/mplogin/mplogin/config"
	"github.com/mplogin/mplogin/emulator"
	"github.com/mplogin/mplogin/internal/testutil"
	"github.com/mplogin/mplogin/platform"
	"github.com/mplogin/mplogin/secret"
	"github.com/mplogin/mplogin/server"
	"github.com/mplogin/mplogin/session"
	"github.com/mplogin/mplogin/userdata"
)

const (
	wxAppID  = "wx0123456789abcdef"
	wxSecret = "wechat-secret-at-rest-test"
	bdAppKey = "y2dTfnWfkx2OXttMEMWlGHoB1KzMogm7"
	bdSecret = "baidu-secret-at-rest-test"
)

type rig struct {
	em    *emulator.Emulator
	emURL string
	api   *httptest.Server
	admin *httptest.Server // the admin API, with withAdmin
	srv   *server.Server
	dir   string
	logs  *testutil.Buffer
}

// rigOptions are what a rigOption changes; newRig says the defaults.
type rigOptions struct {
	change func(*config.Config)
	more   []config.App
	em     *rig
	now    func() time.Time
	// ownIssuer makes the service's issuer its own address, as
	// verifiers that read its metadata need.
	ownIssuer bool
	// admin configures the admin API with the token adminToken, named
	// "ops".
	admin bool
	// alipayGateway is the emulator's Alipay signing key, alipayModes
	// its apps' identity modes by app id (withAlipay).
	alipayGateway *rsa.PrivateKey
	alipayModes   map[string]string
	// emApps are apps the emulator knows and the service does not (or
	// knows at another endpoint).
	emApps []emulator.App
}

// withEmulatorApps adds apps to the emulator only.
func withEmulatorApps(apps ...emulator.App) rigOption {
	return func(o *rigOptions) { o.emApps = append(o.emApps, apps...) }
}

// withAlipay gives the emulator the Alipay gateway key gateway, and its
// Alipay apps the identity modes of modes (by app id; default open_id).
func withAlipay(gateway *rsa.PrivateKey, modes map[string]string) rigOption {
	return func(o *rigOptions) { o.alipayGateway, o.alipayModes = gateway, modes }
}

type rigOption func(*rigOptions)

// withConfig has change change the configuration before the service
// starts.
func withConfig(change func(*config.Config)) rigOption {
	return func(o *rigOptions) { o.change = change }
}

// withApps adds apps, each also known to the emulator with the same
// credentials.
func withApps(apps ...config.App) rigOption {
	return func(o *rigOptions) { o.more = append(o.more, apps...) }
}

// withEmulatorOf has the service use other's emulator instead of one of
// its own: two instances of the service, one platform.
func withEmulatorOf(other *rig) rigOption { return func(o *rigOptions) { o.em = other } }

// withOwnIssuer makes access_tokens.issuer the rig's own URL.
func withOwnIssuer() rigOption { return func(o *rigOptions) { o.ownIssuer = true } }

// withNow gives the service the clock now.
func withNow(now func() time.Time) rigOption { return func(o *rigOptions) { o.now = now } }

// newRig starts an emulator and the service, on SQLite in a directory of
// its own, with apps "w" (WeChat) and "b" (Baidu, unionid at login), logging
// JSON at debug level to logs.
func newRig(t *testing.T, opts ...rigOption) *rig {
	t.Helper()
	var o rigOptions
	for _, opt := range opts {
		opt(&o)
	}
	r := &rig{dir: t.TempDir(), logs: &testutil.Buffer{}}
	if o.em != nil {
		r.em, r.emURL = o.em.em, o.em.emURL
	} else {
		emApps := []emulator.App{
			{Family: "wechat", AppID: wxAppID, Secret: wxSecret},
			{Family: "baidu", AppID: bdAppKey, Secret: bdSecret},
		}
		for _, a := range o.more {
			sec := a.Secret
			if f := a.Family(); f == platform.FamilyBaidu || f == platform.FamilyKuaishou {
				sec = a.AppSecret
			}
			e := emulator.App{Family: a.Family(), AppID: a.ID(), Secret: sec.Reveal()}
			if !a.RSAPrivateKey.IsZero() {
				k, err := config.ParseRSAPrivateKey(a.RSAPrivateKey)
				if err != nil {
					t.Fatal(err)
				}
				e.RSAPublicKey = &k.PublicKey
			}
			if a.Family() == platform.FamilyAlipay {
				k, err := config.ParseRSAPrivateKey(a.PrivateKey)
				if err != nil {
					t.Fatal(err)
				}
				e.AlipayPublicKey = &k.PublicKey
				e.AESKey, _ = base64.StdEncoding.DecodeString(a.AESKey.Reveal())
				e.AlipayMode = o.alipayModes[a.AppID]
			}
			emApps = append(emApps, e)
		}
		r.em = emulator.New(emulator.Config{Apps: append(emApps, o.emApps...), AlipayKey: o.alipayGateway})
		emSrv := httptest.NewServer(r.em)
		t.Cleanup(emSrv.Close)
		r.emURL = emSrv.URL
	}
	cfg := config.Default()
	cfg.Store = "sqlite:" + filepath.Join(r.dir, "mplogin.db")
	cfg.MasterKey = bytes.Repeat([]byte{42}, 32)
	cfg.Apps = []config.App{
		{Name: "w", Flavor: platform.FlavorWeChat, AppID: wxAppID, Secret: secret.New(wxSecret), Endpoint: r.emURL},
		{Name: "b", Flavor: platform.FlavorBaidu, AppKey: bdAppKey, AppSecret: secret.New(bdSecret), Endpoint: r.emURL, UnionID: true},
	}
	for _, a := range o.more {
		a.Endpoint = r.emURL
		cfg.Apps = append(cfg.Apps, a)
	}
	api := httptest.NewUnstartedServer(nil)
	if o.ownIssuer {
		cfg.AccessTokens.Issuer = "http://" + api.Listener.Addr().String()
	}
	if o.admin {
		cfg.Admin = &config.Admin{Listen: "127.0.0.1:0", Tokens: []config.AdminToken{{Name: "ops", Token: secret.New(adminToken)}}}
	}
	if o.change != nil {
		o.change(&cfg)
	}
	if err := cfg.Validate(); err != nil {
		t.Fatal(err)
	}
	log := slog.New(slog.NewJSONHandler(r.logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	var err error
	r.srv, err = server.New(context.Background(), &cfg, server.Options{Logger: log, Now: o.now})
	if err != nil {
		t.Fatal(err)
	}
	api.Config.Handler = r.srv.Handler()
	api.Start()
	r.api = api
	t.Cleanup(func() { r.api.Close(); r.srv.Close() })
	if ah := r.srv.AdminHandler(); ah != nil {
		r.admin = httptest.NewServer(ah) // closed before the store
		t.Cleanup(r.admin.Close)
	}
	return r
}

// served is the rig's service run by Serve on real listeners.
type served struct {
	public string            // base URL of the public listener
	own    map[string]string // base URLs of the listeners of its own, by name (admin, metrics)
	stop   func() error      // ends Serve and returns what it returned
}

// serve runs r.srv.Serve on a listener of 127.0.0.1:0 and returns once the
// listeners of its own named by own are bound.
func (r *rig) serve(t *testing.T, own ...string) served {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	bound := make(chan [2]string, len(own))
	server.SetOnListen(r.srv, func(name string, addr net.Addr) { bound <- [2]string{name, addr.String()} })
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- r.srv.Serve(ctx, ln) }()
	stopped := false
	stop := func() error {
		t.Helper()
		cancel()
		if stopped {
			return nil
		}
		stopped = true
		select {
		case err := <-done:
			return err
		case <-time.After(15 * time.Second):
			t.Fatal("Serve did not return")
			return nil
		}
	}
	t.Cleanup(func() { _ = stop() })
	s := served{public: "http://" + ln.Addr().String(), own: map[string]string{}, stop: stop}
	for range own {
		select {
		case b := <-bound:
			s.own[b[0]] = "http://" + b[1]
		case err := <-done:
			stopped = true
			t.Fatalf("Serve returned before its listeners were bound: %v", err)
		}
	}
	for _, name := range own {
		if s.own[name] == "" {
			t.Fatalf("no %s listener: %v", name, s.own)
		}
	}
	return s
}

func mustListen(t *testing.T) net.Listener {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	return ln
}

func mustPrefix(t *testing.T, s string) netip.Prefix {
	t.Helper()
	p, err := netip.ParsePrefix(s)
	if err != nil {
		t.Fatal(err)
	}
	return p
}

func (r *rig) call(t *testing.T, method, path, auth, body string) (int, map[string]any) {
	t.Helper()
	return callBase(t, r.api.URL, method, path, auth, body)
}

// callBase sends a request to the service at base and returns the status
// and the JSON body of its answer.
func callBase(t *testing.T, base, method, path, auth, body string) (int, map[string]any) {
	t.Helper()
	return callWith(t, base, method, path, auth, body, nil)
}

// callWith is callBase with the headers h added to the request.
func callWith(t *testing.T, base, method, path, auth, body string, h http.Header) (int, map[string]any) {
	t.Helper()
	status, _, v := send(t, base, method, path, auth, body, h)
	return status, v
}

// send is callWith that also returns the answer's headers.
func send(t *testing.T, base, method, path, auth, body string, h http.Header) (int, http.Header, map[string]any) {
	t.Helper()
	req, _ := http.NewRequest(method, base+path, strings.NewReader(body))
	for k, vs := range h {
		req.Header[k] = vs
	}
	if body != "" {
		req.Header.Set("Content-Type", "application/json")
	}
	if auth != "" {
		req.Header.Set("Authorization", "Bearer "+auth)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	raw, _ := io.ReadAll(resp.Body)
	var v map[string]any
	_ = json.Unmarshal(raw, &v)
	return resp.StatusCode, resp.Header, v
}

// No session key, app secret, login code or token is kept in clear in the
// database files or written to the log; only their hashes and sealed forms.
func TestNothingSecretAtRest(t *testing.T) {
	r := newRig(t)
	var tokens, codes, keys, phones []string
	for _, u := range []string{"alice", "bob", "carol"} {
		for _, p := range []struct{ plat, appid, app string }{{"wechat", wxAppID, "w"}, {"baidu", bdAppKey, "b"}} {
			code, err := r.em.Login(p.plat, p.appid, u, "")
			if err != nil {
				t.Fatal(err)
			}
			codes = append(codes, code)
			status, v := r.call(t, "POST", "/v1/login", "", `{"app":"`+p.app+`","code":"`+code+`"}`)
			if status != 200 {
				t.Fatalf("login %d %v", status, v)
			}
			key, _ := r.em.SessionKey(p.plat, p.appid, u)
			keys = append(keys, key)
			login := tokensOf(t, v)
			access, refresh := login.AccessToken, login.RefreshToken
			tokens = append(tokens, access, refresh)
			if status, _ := r.call(t, "GET", "/v1/session", access, ""); status != 200 {
				t.Fatal(status)
			}
			if p.plat == "wechat" {
				// Both use the app's platform access token; the phone is kept.
				if status, v := r.call(t, "GET", "/v1/session?verify=platform", access, ""); status != 200 || v["session_key_valid"] != true {
					t.Fatal(status, v)
				}
				pc, err := r.em.PhoneCode(wxAppID, u)
				if err != nil {
					t.Fatal(err)
				}
				if status, v := r.call(t, "POST", "/v1/phone", access, `{"code":"`+pc+`"}`); status != 200 || v["phone_number"] != r.em.PhoneNumber(u) {
					t.Fatal(status, v)
				}
				phones = append(phones, r.em.PhoneNumber(u))
			}
			status, v = r.call(t, "POST", "/v1/token", "", `{"grant_type":"refresh_token","refresh_token":"`+refresh+`"}`)
			if status != 200 {
				t.Fatal(status, v)
			}
			refreshed := tokensOf(t, v)
			tokens = append(tokens, refreshed.AccessToken, refreshed.RefreshToken)
		}
	}
	// The platform access tokens the service fetched (the Baidu one for
	// the unionid at login).
	var platformTokens []string
	for _, key := range []string{"wechat:" + wxAppID, "baidu:" + bdAppKey} {
		tok, err := r.srv.Tokens().Token(t.Context(), key)
		if err != nil {
			t.Fatal(err)
		}
		platformTokens = append(platformTokens, tok.Reveal())
	}
	r.api.Close()
	if err := r.srv.Close(); err != nil {
		t.Fatal(err)
	}
	var files []byte
	entries, _ := os.ReadDir(r.dir)
	for _, e := range entries {
		b, err := os.ReadFile(filepath.Join(r.dir, e.Name()))
		if err != nil {
			t.Fatal(err)
		}
		files = append(files, b...)
	}
	// The scan reads what the store wrote: every token's hash is there.
	for _, tok := range tokens[len(tokens)-2:] {
		sum := sha256.Sum256([]byte(tok))
		if !bytes.Contains(files, sum[:]) {
			t.Fatalf("the hash of a token is not in the database files: the scan reads the wrong thing")
		}
	}
	needles := map[string][]byte{"app secret": []byte(wxSecret), "baidu secret": []byte(bdSecret)}
	for i, tok := range tokens {
		needles["token "+string(rune('a'+i))] = []byte(tok)
	}
	for i, c := range codes {
		needles["code "+string(rune('a'+i))] = []byte(c)
	}
	for i, p := range phones {
		needles["phone number "+string(rune('a'+i))] = []byte(p)
	}
	for i, tok := range platformTokens {
		needles["platform access token "+string(rune('a'+i))] = []byte(tok)
	}
	for i, k := range keys {
		raw, err := base64.StdEncoding.DecodeString(k)
		if err != nil {
			t.Fatal(err)
		}
		needles["session key "+string(rune('a'+i))] = []byte(k)
		needles["raw session key "+string(rune('a'+i))] = raw
	}
	logs := r.logs.String()
	for name, n := range needles {
		if bytes.Contains(files, n) {
			t.Errorf("%s is in the database files in clear", name)
		}
		if strings.Contains(logs, string(n)) {
			t.Errorf("%s is in the log", name)
		}
	}
}

// A store that stops answering (another process holds the write lock)
// gives 503 store_unavailable and a failing /readyz; once the lock is gone
// the service works again without a restart.
func TestStoreOutageAndRecovery(t *testing.T) {
	r := newRig(t)
	code, _ := r.em.Login("wechat", wxAppID, "dora", "")
	if status, v := r.call(t, "POST", "/v1/login", "", `{"app":"w","code":"`+code+`"}`); status != 200 {
		t.Fatal(status, v)
	}
	db, err := sql.Open("sqlite", "file:"+filepath.Join(r.dir, "mplogin.db")+"?_pragma=busy_timeout(100)")
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	conn, err := db.Conn(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if _, err := conn.ExecContext(context.Background(), "BEGIN IMMEDIATE"); err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	code, _ = r.em.Login("wechat", wxAppID, "erik", "")
	status, v := r.call(t, "POST", "/v1/login", "", `{"app":"w","code":"`+code+`"}`)
	if status != 503 || v["error"] != "store_unavailable" {
		t.Fatalf("login under a held lock: %d %v", status, v)
	}
	t.Logf("store_unavailable after %v", time.Since(start))
	if status, _ := r.call(t, "GET", "/readyz", "", ""); status != 503 {
		t.Fatalf("readyz under a held lock: %d", status)
	}
	if _, err := conn.ExecContext(context.Background(), "ROLLBACK"); err != nil {
		t.Fatal(err)
	}
	conn.Close()
	if status, _ := r.call(t, "GET", "/readyz", "", ""); status != 200 {
		t.Fatalf("readyz after release: %d", status)
	}
	code, _ = r.em.Login("wechat", wxAppID, "erik", "")
	if status, v := r.call(t, "POST", "/v1/login", "", `{"app":"w","code":"`+code+`"}`); status != 200 {
		t.Fatalf("login after release: %d %v", status, v)
	}
}

// Apps carries each app's userdata_max_age into the session service.
func TestAppsCarryUserdataMaxAge(t *testing.T) {
	cfg := config.Default()
	cfg.MasterKey = bytes.Repeat([]byte{42}, 32)
	cfg.Apps = []config.App{
		{Name: "w", Flavor: platform.FlavorWeChat, AppID: wxAppID, Secret: secret.New(wxSecret), UserdataMaxAge: time.Hour},
		{Name: "w0", Flavor: platform.FlavorWeChat, AppID: "wx1111111111111111", Secret: secret.New(wxSecret)},
		{Name: "b", Flavor: platform.FlavorBaidu, AppKey: bdAppKey, AppSecret: secret.New(bdSecret)},
	}
	apps, err := server.Apps(&cfg, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]time.Duration{"w": time.Hour, "w0": 0, "b": 0}
	for _, a := range apps {
		if a.UserdataMaxAge != want[a.Name] {
			t.Errorf("%s: UserdataMaxAge %v, want %v", a.Name, a.UserdataMaxAge, want[a.Name])
		}
	}
	if len(apps) != len(want) {
		t.Fatalf("%d apps, want %d", len(apps), len(want))
	}
}

// A Baidu app that logs in with its access token cannot do without the
// manager that keeps that token.
func TestAppsAccessTokenLoginNeedsManager(t *testing.T) {
	cfg := config.Default()
	cfg.Apps = []config.App{{Name: "bt", Flavor: platform.FlavorBaidu, AppKey: bdAppKey, AppSecret: secret.New(bdSecret),
		LoginAPI: config.LoginAPIAccessToken}}
	_, err := server.Apps(&cfg, nil, nil)
	if err == nil || !strings.Contains(err.Error(), "apps bt: login_api access_token") || strings.Contains(err.Error(), bdSecret) {
		t.Fatalf("got %v", err)
	}
}

// Decryption through the whole service and SQLite: the failure count is
// kept in the database, and five failures lock the session.
func TestDecryptThroughTheStore(t *testing.T) {
	r := newRig(t)
	const key, wrongKey = "AAECAwQFBgcICQoLDA0ODw==", "EBESExQVFhcYGRobHB0eHw=="
	code, err := r.em.Login("wechat", wxAppID, "fay", key)
	if err != nil {
		t.Fatal(err)
	}
	status, v := r.call(t, "POST", "/v1/login", "", `{"app":"w","code":"`+code+`"}`)
	if status != 200 {
		t.Fatal(status, v)
	}
	access := tokensOf(t, v).AccessToken
	payload := func(key string) string {
		plain := `{"openId":"o","watermark":{"timestamp":` + fmt.Sprint(time.Now().Unix()) + `,"appid":"` + wxAppID + `"}}`
		data, iv, err := userdata.EncryptWeChat(secret.New(key), []byte(plain), nil)
		if err != nil {
			t.Fatal(err)
		}
		return `{"encrypted_data":"` + data + `","iv":"` + iv + `"}`
	}
	if status, v := r.call(t, "POST", "/v1/userdata/decrypt", access, payload(key)); status != 200 || v["data"] == nil {
		t.Fatalf("decrypt: %d %v", status, v)
	}
	for range session.MaxDecryptFailures {
		if status, v := r.call(t, "POST", "/v1/userdata/decrypt", access, payload(wrongKey)); status != 422 {
			t.Fatalf("wrong key: %d %v", status, v)
		}
	}
	if status, v := r.call(t, "POST", "/v1/userdata/decrypt", access, payload(key)); status != 422 || v["error"] != "decrypt_failed" {
		t.Fatalf("locked session: %d %v", status, v)
	}
	db, err := sql.Open("sqlite", filepath.Join(r.dir, "mplogin.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	var n int
	if err := db.QueryRow(`SELECT max(decrypt_failures) FROM sessions`).Scan(&n); err != nil || n != session.MaxDecryptFailures {
		t.Fatalf("decrypt_failures in the database: %d, %v", n, err)
	}
}
