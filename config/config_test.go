package config

import (
	"bytes"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"net/netip"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/mplogin/mplogin/platform"
	"github.com/mplogin/mplogin/secret"
)

const (
	key7  = "BwcHBwcHBwcHBwcHBwcHBwcHBwcHBwcHBwcHBwcHBwc=" // 32 bytes of 7
	key9  = "CQkJCQkJCQkJCQkJCQkJCQkJCQkJCQkJCQkJCQkJCQk=" // 32 bytes of 9
	key16 = "AQEBAQEBAQEBAQEBAQEBAQ=="                     // 16 bytes

	// head is a valid configuration without apps; tests append apps.
	head = "store: sqlite:./x.db\nmaster_key: " + key7 + "\napps:\n"

	wechatApp = `  - name: w
    platform: wechat
    appid: wx0123456789abcdef
    secret: wsecret
`
	baiduApp = `  - name: b
    platform: baidu
    app_key: bkey
    app_secret: bsecret
`
)

// env returns a getenv over m.
func env(m map[string]string) func(string) (string, bool) {
	return func(k string) (string, bool) {
		v, ok := m[k]
		return v, ok
	}
}

func noEnv(string) (string, bool) { return "", false }

// mustParse parses src or fails the test.
func mustParse(t *testing.T, src string, getenv func(string) (string, bool)) *Config {
	t.Helper()
	if getenv == nil {
		getenv = noEnv
	}
	c, err := Parse([]byte(src), getenv)
	if err != nil {
		t.Fatalf("Parse: %v\n%s", err, src)
	}
	return c
}

// parseErr parses src, expects an error and checks it is one line of type
// *Error.
func parseErr(t *testing.T, src string, getenv func(string) (string, bool)) string {
	t.Helper()
	if getenv == nil {
		getenv = noEnv
	}
	c, err := Parse([]byte(src), getenv)
	if err == nil {
		t.Fatalf("Parse succeeded, want an error:\n%s\n%v", src, c)
	}
	if c != nil {
		t.Errorf("Parse returned a config with its error")
	}
	var ce *Error
	if !errors.As(err, &ce) {
		t.Errorf("error %q is a %T, not a *Error", err, err)
	}
	if msg := err.Error(); strings.ContainsAny(msg, "\r\n") {
		t.Errorf("error is not one line: %q", msg)
	}
	return err.Error()
}

func TestParseFullExample(t *testing.T) {
	src := `
listen: 0.0.0.0:8080
store: postgres://mplogin@db:5432/mplogin?sslmode=disable
sessions: rediss://cache:6380/1
master_key: ${MPLOGIN_MASTER_KEY}
old_master_keys: ["${OLD_KEY}"] # in flow lists, quote: { and } are YAML there
log:
  level: debug
  format: text
http:
  read_header_timeout: 1s
  read_timeout: 2s
  write_timeout: 30s
  idle_timeout: 4s
  shutdown_timeout: 5s
  trusted_proxies: [10.0.0.0/8, 192.168.1.7, "2001:db8::/32", 10.1.2.3/16]
  max_connections: 500
  max_connections_per_ip: 0
  ipv6_prefix: /64
sessions_policy:
  access_ttl: 1h
  refresh_ttl: 168h
  max_age: 0
  session_key_grace: 1m
  code_replay_window: 0s
  max_sessions_per_identity: 5
  refresh_reuse_grace: 1m
platform_timeout: 3s
clients:
  - id: orders
    secret: ${ORDERS_CLIENT_SECRET}
  - {id: gateway.edge, secret: "0123456789abcdef"}
rate_limits:
  login: {ip: 2.5, ip_burst: 5, app: 0}
  verify: {session: 0.5, ip: 3, ip_burst: 4}
  phone: {app: 50, session_burst: 2}
access_tokens:
  format: opaque
  ttl: 5m
  issuer: https://login.example.com
  audience: [https://api.example.com, orders]
  algorithm: RS256
signing_key_rotation: 48h
apps:
  - name: shop-wechat
    platform: wechat
    appid: wx0123456789abcdef
    secret: ${SHOP_WECHAT_SECRET}
    endpoint: http://127.0.0.1:9300/
    userdata_max_age: 0
    access_tokens: {ttl: 2m, audience: billing}
  - name: shop-wechat-tp
    platform: wechat-component
    appid: wx1123456789abcdef
    component_appid: wx2223456789abcdef
    component_token:
      value: ${COMPONENT_ACCESS_TOKEN}
  - name: shop-baidu
    platform: baidu
    app_key: y2dTfnWfkx2OXttMEMWlGHoB1KzMogm7
    app_secret: ${SHOP_BAIDU_SECRET}
    unionid: true
    expose_unionid: true
  - name: shop-baidu-legacy
    platform: baidu-legacy
    app_key: legacykey
    app_secret: legacysecret
  - name: shop-baidu-tp
    platform: baidu-tp
    app_key: tpkey
    authorizer_token: {url: "https://owner.example/baidu-token?app=1"}
`
	c := mustParse(t, src, env(map[string]string{
		"MPLOGIN_MASTER_KEY":     key7,
		"OLD_KEY":                key9,
		"SHOP_WECHAT_SECRET":     "ws#1: x",
		"COMPONENT_ACCESS_TOKEN": "ctoken",
		"SHOP_BAIDU_SECRET":      "bs",
		"ORDERS_CLIENT_SECRET":   "orders-secret-of-32-characters!!",
	}))
	want := &Config{
		Listen:        "0.0.0.0:8080",
		Store:         "postgres://mplogin@db:5432/mplogin?sslmode=disable",
		Sessions:      "rediss://cache:6380/1",
		MasterKey:     bytes.Repeat([]byte{7}, 32),
		OldMasterKeys: [][]byte{bytes.Repeat([]byte{9}, 32)},
		Log:           Log{Level: slog.LevelDebug, Format: "text"},
		HTTP: HTTP{
			ReadHeaderTimeout: time.Second, ReadTimeout: 2 * time.Second, WriteTimeout: 30 * time.Second,
			IdleTimeout: 4 * time.Second, ShutdownTimeout: 5 * time.Second,
			TrustedProxies: []netip.Prefix{
				netip.MustParsePrefix("10.0.0.0/8"),
				netip.MustParsePrefix("192.168.1.7/32"),
				netip.MustParsePrefix("2001:db8::/32"),
				netip.MustParsePrefix("10.1.0.0/16"),
			},
			MaxConnections: 500, MaxConnectionsPerIP: 0, IPv6Prefix: 64,
		},
		Policy: Policy{AccessTTL: time.Hour, RefreshTTL: 168 * time.Hour, MaxAge: 0, SessionKeyGrace: time.Minute,
			CodeReplayWindow: 0, MaxSessionsPerIdentity: 5, RefreshReuseGrace: time.Minute},
		PlatformTimeout: 3 * time.Second,

		Clients: []Client{{ID: "orders", Secret: secret.New("orders-secret-of-32-characters!!")},
			{ID: "gateway.edge", Secret: secret.New("0123456789abcdef")}},
		Limits: Limits{
			Enabled: true,
			Login:   RouteLimit{IP: Limit{2.5, 5}, App: Limit{0, DefaultLimits.Login.App.Burst}},
			Refresh: DefaultLimits.Refresh,
			Verify: RouteLimit{IP: Limit{3, 4}, Session: Limit{0.5, DefaultLimits.Verify.Session.Burst},
				App: DefaultLimits.Verify.App},
			Decrypt: DefaultLimits.Decrypt,
			Phone: RouteLimit{IP: DefaultLimits.Phone.IP, Session: Limit{DefaultLimits.Phone.Session.Rate, 2},
				App: Limit{50, DefaultLimits.Phone.App.Burst}},
		},
		AccessTokens: AccessTokens{Format: FormatOpaque, TTL: 5 * time.Minute, Issuer: "https://login.example.com",
			Audience: []string{"https://api.example.com", "orders"}, Algorithm: AlgRS256},
		Issuer:             "https://login.example.com",
		SigningKeyRotation: 48 * time.Hour,
		Apps: []App{
			{Name: "shop-wechat", Flavor: platform.FlavorWeChat, AppID: "wx0123456789abcdef", Secret: secret.New("ws#1: x"),
				Endpoint: "http://127.0.0.1:9300", UserdataMaxAge: 0,
				AccessTokens: AppAccessTokens{TTL: 2 * time.Minute, Audience: []string{"billing"}}},
			{Name: "shop-wechat-tp", Flavor: platform.FlavorWeChatComponent, AppID: "wx1123456789abcdef",
				ComponentAppID: "wx2223456789abcdef", ComponentToken: &TokenSource{Value: secret.New("ctoken")},
				UserdataMaxAge: DefaultUserdataMaxAge},
			{Name: "shop-baidu", Flavor: platform.FlavorBaidu, AppKey: "y2dTfnWfkx2OXttMEMWlGHoB1KzMogm7",
				AppSecret: secret.New("bs"), UnionID: true, ExposeUnionID: true},
			{Name: "shop-baidu-legacy", Flavor: platform.FlavorBaiduLegacy, AppKey: "legacykey", AppSecret: secret.New("legacysecret")},
			{Name: "shop-baidu-tp", Flavor: platform.FlavorBaiduTP, AppKey: "tpkey",
				AuthorizerToken: &TokenSource{URL: "https://owner.example/baidu-token?app=1"}},
		},
	}
	if !reflect.DeepEqual(c, want) {
		t.Errorf("Parse:\n got %#v\nwant %#v", *c, *want)
		// Config's own formatting hides most of it; compare the parts.
		for i := range min(len(c.Apps), len(want.Apps)) {
			if !reflect.DeepEqual(c.Apps[i], want.Apps[i]) {
				t.Errorf("apps[%d]:\n got %+v\nwant %+v", i, c.Apps[i], want.Apps[i])
			}
		}
		if !reflect.DeepEqual(c.HTTP, want.HTTP) {
			t.Errorf("http:\n got %+v\nwant %+v", c.HTTP, want.HTTP)
		}
		if !reflect.DeepEqual(c.Policy, want.Policy) || c.PlatformTimeout != want.PlatformTimeout || c.Log != want.Log {
			t.Errorf("policy/log/timeout differ: %+v %v %+v", c.Policy, c.PlatformTimeout, c.Log)
		}
	}
	if a, ok := c.App("shop-baidu"); !ok || a.AppKey != "y2dTfnWfkx2OXttMEMWlGHoB1KzMogm7" {
		t.Errorf("App(shop-baidu) = %+v, %v", a, ok)
	}
	if _, ok := c.App("nope"); ok {
		t.Errorf("App(nope) found")
	}
}

// The first annotated example of a configuration, verbatim: files written
// from it must keep parsing.
func TestParseContractExample(t *testing.T) {
	src := `listen: 127.0.0.1:8300
store: sqlite:./mplogin.db            # or postgres://user@host:5432/db
sessions: redis://127.0.0.1:6379/0    # optional: sessions, refresh tokens and code dedupe in
                                      # Redis; without it they live in ` + "`store`" + `
master_key: ${MPLOGIN_MASTER_KEY}     # base64 of 32 bytes; encrypts session keys at rest
apps:
  - name: shop-wechat                 # what clients send as "app"
    platform: wechat                  # wechat | wechat-component | baidu | baidu-legacy | baidu-tp
    appid: wx0123456789abcdef
    secret: ${SHOP_WECHAT_SECRET}
    endpoint: http://127.0.0.1:9300   # optional: base URL of the platform (the emulator);
                                      # for Baidu it stands for both of Baidu's hosts
    userdata_max_age: 24h             # optional: oldest decrypted payload accepted, by its
                                      # watermark timestamp; 0 turns the check off
  - name: shop-baidu
    platform: baidu
    app_key: y2dTfnWfkx2OXttMEMWlGHoB1KzMogm7
    app_secret: ${SHOP_BAIDU_SECRET}
`
	c := mustParse(t, src, env(map[string]string{
		"MPLOGIN_MASTER_KEY": key7, "SHOP_WECHAT_SECRET": "0123456789abcdef0123456789abcdef", "SHOP_BAIDU_SECRET": "bs",
	}))
	w, ok := c.App("shop-wechat")
	if !ok || w.Secret.Reveal() != "0123456789abcdef0123456789abcdef" || w.ID() != "wx0123456789abcdef" || w.Family() != "wechat" {
		t.Errorf("shop-wechat = %+v", w)
	}
	b, ok := c.App("shop-baidu")
	if !ok || b.AppSecret.Reveal() != "bs" || b.ID() != "y2dTfnWfkx2OXttMEMWlGHoB1KzMogm7" || b.Family() != "baidu" {
		t.Errorf("shop-baidu = %+v", b)
	}
	if kind, target, err := StoreKind(c.Store); kind != "sqlite" || target != "./mplogin.db" || err != nil {
		t.Errorf("StoreKind(%q) = %q, %q, %v", c.Store, kind, target, err)
	}
}

func TestDefaultsApplied(t *testing.T) {
	c := mustParse(t, head+wechatApp+baiduApp+`  - name: w2
    platform: wechat
    appid: wx2
    secret: s
    userdata_max_age: 0
  - name: w3
    platform: wechat-component
    appid: wx3
    component_appid: wx4
    component_token: {url: "http://owner/t"}
    userdata_max_age: 1h
`, nil)
	d := Default()
	if c.Listen != "127.0.0.1:8300" || c.Listen != d.Listen {
		t.Errorf("listen = %q", c.Listen)
	}
	if c.Log != (Log{Level: slog.LevelInfo, Format: "json"}) {
		t.Errorf("log = %+v", c.Log)
	}
	wantHTTP := HTTP{ReadHeaderTimeout: 5 * time.Second, ReadTimeout: 10 * time.Second, WriteTimeout: 15 * time.Second,
		IdleTimeout: 30 * time.Second, ShutdownTimeout: 10 * time.Second,
		MaxConnections: 10_000, MaxConnectionsPerIP: 256, IPv6Prefix: 56}
	if !reflect.DeepEqual(c.HTTP, wantHTTP) {
		t.Errorf("http = %+v", c.HTTP)
	}
	wantPolicy := Policy{AccessTTL: 2 * time.Hour, RefreshTTL: 720 * time.Hour, MaxAge: 2160 * time.Hour, SessionKeyGrace: 5 * time.Minute,
		CodeReplayWindow: 10 * time.Second, MaxSessionsPerIdentity: 20, RefreshReuseGrace: 30 * time.Second}
	if c.Policy != wantPolicy {
		t.Errorf("policy = %+v", c.Policy)
	}
	if c.PlatformTimeout != 5*time.Second {
		t.Errorf("platform_timeout = %v", c.PlatformTimeout)
	}
	if c.Sessions != "" || c.OldMasterKeys != nil {
		t.Errorf("sessions = %q, old keys = %v", c.Sessions, c.OldMasterKeys)
	}
	for name, want := range map[string]time.Duration{"w": 24 * time.Hour, "b": 0, "w2": 0, "w3": time.Hour} {
		if a, _ := c.App(name); a.UserdataMaxAge != want {
			t.Errorf("%s: userdata_max_age = %v, want %v", name, a.UserdataMaxAge, want)
		}
	}
	if a, _ := c.App("b"); a.UnionID {
		t.Errorf("b: unionid = true by default")
	}
}

// login_api reaches the App; left out, it is empty, which means spapi.
func TestLoginAPI(t *testing.T) {
	c := mustParse(t, head+"  - {name: b, platform: baidu, app_key: k, app_secret: s, login_api: access_token}\n"+
		"  - {name: b2, platform: baidu, app_key: k2, app_secret: s}\n", nil)
	if a, _ := c.App("b"); a.LoginAPI != LoginAPIAccessToken {
		t.Errorf("b: login_api = %q, want %q", a.LoginAPI, LoginAPIAccessToken)
	}
	if a, _ := c.App("b2"); a.LoginAPI != "" {
		t.Errorf("b2: login_api = %q by default, want empty (spapi)", a.LoginAPI)
	}
	// Built in code, the same rules apply.
	cfg := Default()
	cfg.Store, cfg.MasterKey = "sqlite:./x.db", make([]byte, MasterKeySize)
	cfg.Apps = []App{{Name: "l", Flavor: platform.FlavorBaiduLegacy, AppKey: "k", AppSecret: secret.New("s"), LoginAPI: LoginAPISpapi}}
	if err := cfg.Validate(); err == nil || err.Error() != "config: apps[0] (l): login_api: not used by platform baidu-legacy" {
		t.Errorf("Validate: %v", err)
	}
}

// Empty and null values count as not given.
func TestEmptyValues(t *testing.T) {
	c := mustParse(t, "listen: ${EMPTY}\nsessions: ~\nlog:\nhttp: {}\nold_master_keys:\n"+head+wechatApp, env(map[string]string{"EMPTY": ""}))
	if c.Listen != DefaultListen || c.Sessions != "" || c.Log.Format != "json" || c.HTTP.ReadTimeout != DefaultReadTimeout {
		t.Errorf("got %+v %+v %+v", c.Listen, c.Log, c.HTTP)
	}
}

func TestEnvExpansion(t *testing.T) {
	vars := map[string]string{
		"PLAIN":   "abc",
		"SPECIAL": `a#b: c "d" 'e' {f} [g] & *h ! % @ ` + "`i`" + ` \n ${PLAIN} $$ $PLAIN`,
		"NEWLINE": "line1\nline2",
		"EMPTY":   "",
		"TRUE":    "true",
		"DUR":     "9s",
		"PROXY":   "10.0.0.0/8",
		"A":       "x",
		"B":       "y",
		"APP":     "named",
	}
	tests := []struct {
		name   string
		secret string // the wechat app's secret line value
		want   string
	}{
		{"plain", "${PLAIN}", "abc"},
		{"inside text", "pre-${PLAIN}-post", "pre-abc-post"},
		{"two variables", "${A}${B}", "xy"},
		{"special characters are not YAML", "${SPECIAL}", vars["SPECIAL"]},
		{"special characters quoted", `"${SPECIAL}"`, vars["SPECIAL"]},
		{"single quoted", `'${SPECIAL}'`, vars["SPECIAL"]},
		{"double dollar", "$${PLAIN}", "${PLAIN}"},
		{"double dollar alone", "a$$b", "a$b"},
		{"four dollars", "$$$$", "$$"},
		{"dollar then variable", "$$${PLAIN}", "$abc"},
		{"bare dollar name not expanded", "$PLAIN", "$PLAIN"},
		{"trailing dollar", "abc$", "abc$"},
		{"lone dollar", "a$b", "a$b"},
		{"no recursion", "${SPECIAL}", vars["SPECIAL"]},
		{"folded block scalar", ">-\n      ${PLAIN}\n      $$x", "abc $x"},
		{"number-looking", "0x${A}", "0xx"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			src := head + "  - name: w\n    platform: wechat\n    appid: wx1\n    secret: " + tt.secret + "\n"
			c := mustParse(t, src, env(vars))
			if got := c.Apps[0].Secret.Reveal(); got != tt.want {
				t.Errorf("secret = %q, want %q", got, tt.want)
			}
		})
	}

	t.Run("typed values and lists", func(t *testing.T) {
		c := mustParse(t, head+`  - name: ${APP}
    platform: baidu
    app_key: k
    app_secret: s
    unionid: ${TRUE}
http:
  trusted_proxies: ["${PROXY}", 127.0.0.1]
platform_timeout: ${DUR}
`, env(vars))
		if c.Apps[0].Name != "named" || !c.Apps[0].UnionID || c.PlatformTimeout != 9*time.Second ||
			len(c.HTTP.TrustedProxies) != 2 || c.HTTP.TrustedProxies[0] != netip.MustParsePrefix("10.0.0.0/8") {
			t.Errorf("got %+v, %v, %v", c.Apps[0], c.PlatformTimeout, c.HTTP.TrustedProxies)
		}
	})

	t.Run("newline in a value", func(t *testing.T) {
		// Validate refuses control characters in secrets, so look at
		// the expansion itself.
		if got, err := expand("<${NEWLINE}>", env(vars)); err != nil || got != "<line1\nline2>" {
			t.Errorf("expand = %q, %v", got, err)
		}
	})

	t.Run("keys are not expanded", func(t *testing.T) {
		msg := parseErr(t, head+wechatApp+"${PLAIN}: 1\n", env(vars))
		if want := `config: line 8: unknown key "${PLAIN}"`; msg != want {
			t.Errorf("got  %s\nwant %s", msg, want)
		}
	})

	t.Run("comments after a variable stay comments", func(t *testing.T) {
		c := mustParse(t, head+"  - name: w\n    platform: wechat\n    appid: wx1\n    secret: ${PLAIN} # ${NOT_SET}\n", env(vars))
		if c.Apps[0].Secret.Reveal() != "abc" {
			t.Errorf("secret = %q", c.Apps[0].Secret.Reveal())
		}
	})

	t.Run("nil getenv reads the process environment", func(t *testing.T) {
		t.Setenv("MPLOGIN_CONFIG_TEST_SECRET", "from-os")
		c, err := Parse([]byte(head+"  - name: w\n    platform: wechat\n    appid: wx1\n    secret: ${MPLOGIN_CONFIG_TEST_SECRET}\n"), nil)
		if err != nil || c.Apps[0].Secret.Reveal() != "from-os" {
			t.Fatalf("Parse = %v, %v", c, err)
		}
	})
}

func TestEnvErrors(t *testing.T) {
	tests := []struct {
		name, src, want string
	}{
		{
			"unset secret",
			head + "  - name: shop-wechat\n    platform: wechat\n    appid: wx1\n    secret: ${SHOP_WECHAT_SECRET}\n",
			"config: apps[0] (shop-wechat): secret: environment variable SHOP_WECHAT_SECRET is not set",
		},
		{
			"unset master key",
			"store: sqlite:x\nmaster_key: ${MPLOGIN_MASTER_KEY}\napps:\n" + wechatApp,
			"config: master_key: environment variable MPLOGIN_MASTER_KEY is not set",
		},
		{
			"unset in a nested key",
			head + "  - name: tp\n    platform: wechat-component\n    appid: a\n    component_appid: c\n    component_token:\n      value: ${TOKEN}\n",
			"config: apps[0] (tp): component_token.value: environment variable TOKEN is not set",
		},
		{
			"unset in a list",
			head + wechatApp + "http:\n  trusted_proxies: [1.2.3.4, '${PROXY}']\n",
			"config: http.trusted_proxies[1]: environment variable PROXY is not set",
		},
		{
			"unset app name",
			head + "  - name: ${NAME}\n    platform: wechat\n",
			"config: apps[0]: name: environment variable NAME is not set",
		},
		{
			"unclosed",
			head + "  - name: w\n    platform: wechat\n    appid: a\n    secret: ${OPEN\n",
			"config: apps[0] (w): secret: a ${ that is not ${NAME}; write $$ for a literal $",
		},
		{
			"shell default syntax",
			head + "  - name: w\n    platform: wechat\n    appid: a\n    secret: ${X:-y}\n",
			"config: apps[0] (w): secret: a ${ that is not ${NAME}; write $$ for a literal $",
		},
		{
			"empty name",
			"listen: ${}\n" + head + wechatApp,
			"config: listen: a ${ that is not ${NAME}; write $$ for a literal $",
		},
		{
			"name starting with a digit",
			"listen: ${1X}\n" + head + wechatApp,
			"config: listen: a ${ that is not ${NAME}; write $$ for a literal $",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := parseErr(t, tt.src, env(map[string]string{"X": "1"})); got != tt.want {
				t.Errorf("got  %s\nwant %s", got, tt.want)
			}
		})
	}
}

func TestPlatformKeys(t *testing.T) {
	tests := []struct {
		name string
		app  string // the app's keys after name
		want string // "" = valid
	}{
		// wechat
		{"wechat ok", "platform: wechat\nappid: a\nsecret: s", ""},
		{"wechat no appid", "platform: wechat\nsecret: s", "config: apps[0] (x): appid: required"},
		{"wechat no secret", "platform: wechat\nappid: a", "config: apps[0] (x): secret: required"},
		{"wechat empty secret", "platform: wechat\nappid: a\nsecret: ''", "config: apps[0] (x): secret: required"},
		{"wechat app_key", "platform: wechat\nappid: a\nsecret: s\napp_key: k", "config: apps[0] (x): app_key: not used by platform wechat"},
		{"wechat app_secret", "platform: wechat\nappid: a\nsecret: s\napp_secret: k", "config: apps[0] (x): app_secret: not used by platform wechat"},
		{"wechat unionid", "platform: wechat\nappid: a\nsecret: s\nunionid: true", "config: apps[0] (x): unionid: not used by platform wechat"},
		{"wechat unionid false", "platform: wechat\nappid: a\nsecret: s\nunionid: false", ""},
		{"wechat component_appid", "platform: wechat\nappid: a\nsecret: s\ncomponent_appid: c", "config: apps[0] (x): component_appid: not used by platform wechat"},
		{"wechat component_token", "platform: wechat\nappid: a\nsecret: s\ncomponent_token: {value: v}", "config: apps[0] (x): component_token: not used by platform wechat"},
		{"wechat authorizer_token", "platform: wechat\nappid: a\nsecret: s\nauthorizer_token: {value: v}", "config: apps[0] (x): authorizer_token: not used by platform wechat"},
		// wechat-component
		{"component ok", "platform: wechat-component\nappid: a\ncomponent_appid: c\ncomponent_token: {value: v}", ""},
		{"component with secret", "platform: wechat-component\nappid: a\nsecret: s\ncomponent_appid: c\ncomponent_token: {url: 'https://o/t'}", ""},
		{"component no appid", "platform: wechat-component\ncomponent_appid: c\ncomponent_token: {value: v}", "config: apps[0] (x): appid: required"},
		{"component no component_appid", "platform: wechat-component\nappid: a\ncomponent_token: {value: v}", "config: apps[0] (x): component_appid: required"},
		{"component no token", "platform: wechat-component\nappid: a\ncomponent_appid: c", "config: apps[0] (x): component_token: required"},
		{"component null token", "platform: wechat-component\nappid: a\ncomponent_appid: c\ncomponent_token:", "config: apps[0] (x): component_token: required"},
		{"component app_key", "platform: wechat-component\nappid: a\napp_key: k\ncomponent_appid: c\ncomponent_token: {value: v}", "config: apps[0] (x): app_key: not used by platform wechat-component"},
		{"component authorizer_token", "platform: wechat-component\nappid: a\ncomponent_appid: c\ncomponent_token: {value: v}\nauthorizer_token: {value: v}", ""},
		{"wechat token_api classic", "platform: wechat\nappid: a\nsecret: s\ntoken_api: classic", ""},
		{"wechat token_api stable", "platform: wechat\nappid: a\nsecret: s\ntoken_api: stable", ""},
		{"wechat token_api bad", "platform: wechat\nappid: a\nsecret: s\ntoken_api: force", "config: apps[0] (x): token_api: must be \"stable\" or \"classic\""},
		{"component token_api without secret", "platform: wechat-component\nappid: a\ncomponent_appid: c\ncomponent_token: {value: v}\ntoken_api: stable", "config: apps[0] (x): token_api: needs the app's secret"},
		{"baidu token_api", "platform: baidu\napp_key: k\napp_secret: s\ntoken_api: stable", "config: apps[0] (x): token_api: not used by platform baidu"},
		// login_api: baidu only
		{"baidu login_api access_token", "platform: baidu\napp_key: k\napp_secret: s\nlogin_api: access_token", ""},
		{"baidu login_api spapi", "platform: baidu\napp_key: k\napp_secret: s\nlogin_api: spapi", ""},
		{"baidu login_api bad", "platform: baidu\napp_key: k\napp_secret: s\nlogin_api: token", "config: apps[0] (x): login_api: must be \"spapi\" or \"access_token\""},
		{"baidu login_api case", "platform: baidu\napp_key: k\napp_secret: s\nlogin_api: Access_Token", "config: apps[0] (x): login_api: must be \"spapi\" or \"access_token\""},
		{"baidu-legacy login_api", "platform: baidu-legacy\napp_key: k\napp_secret: s\nlogin_api: spapi", "config: apps[0] (x): login_api: not used by platform baidu-legacy"},
		{"baidu-tp login_api", "platform: baidu-tp\napp_key: k\nauthorizer_token: {value: v}\nlogin_api: access_token", "config: apps[0] (x): login_api: not used by platform baidu-tp"},
		{"wechat login_api", "platform: wechat\nappid: a\nsecret: s\nlogin_api: spapi", "config: apps[0] (x): login_api: not used by platform wechat"},
		{"component login_api", "platform: wechat-component\nappid: a\ncomponent_appid: c\ncomponent_token: {value: v}\nlogin_api: access_token", "config: apps[0] (x): login_api: not used by platform wechat-component"},
		// baidu, baidu-legacy
		{"baidu ok", "platform: baidu\napp_key: k\napp_secret: s\nunionid: true", ""},
		{"baidu no app_key", "platform: baidu\napp_secret: s", "config: apps[0] (x): app_key: required"},
		{"baidu no app_secret", "platform: baidu\napp_key: k", "config: apps[0] (x): app_secret: required"},
		{"baidu secret", "platform: baidu\napp_key: k\napp_secret: s\nsecret: s", "config: apps[0] (x): secret: not used by platform baidu"},
		{"baidu appid", "platform: baidu\napp_key: k\napp_secret: s\nappid: a", "config: apps[0] (x): appid: not used by platform baidu"},
		{"baidu userdata_max_age", "platform: baidu\napp_key: k\napp_secret: s\nuserdata_max_age: 1h", "config: apps[0] (x): userdata_max_age: not used by platform baidu"},
		{"baidu component_token", "platform: baidu\napp_key: k\napp_secret: s\ncomponent_token: {value: v}", "config: apps[0] (x): component_token: not used by platform baidu"},
		{"baidu authorizer_token", "platform: baidu\napp_key: k\napp_secret: s\nauthorizer_token: {value: v}", "config: apps[0] (x): authorizer_token: not used by platform baidu"},
		{"baidu-legacy ok", "platform: baidu-legacy\napp_key: k\napp_secret: s", ""},
		{"baidu-legacy no app_secret", "platform: baidu-legacy\napp_key: k", "config: apps[0] (x): app_secret: required"},
		{"baidu-legacy secret", "platform: baidu-legacy\napp_key: k\napp_secret: s\nsecret: s", "config: apps[0] (x): secret: not used by platform baidu-legacy"},
		// baidu-tp
		{"baidu-tp ok", "platform: baidu-tp\napp_key: k\nauthorizer_token: {value: v}", ""},
		{"baidu-tp with app_secret and unionid", "platform: baidu-tp\napp_key: k\napp_secret: s\nunionid: true\nauthorizer_token: {url: 'http://o/t'}", ""},
		{"baidu-tp no app_key", "platform: baidu-tp\nauthorizer_token: {value: v}", "config: apps[0] (x): app_key: required"},
		{"baidu-tp no token", "platform: baidu-tp\napp_key: k", "config: apps[0] (x): authorizer_token: required"},
		{"baidu-tp component_token", "platform: baidu-tp\napp_key: k\nauthorizer_token: {value: v}\ncomponent_token: {value: v}", "config: apps[0] (x): component_token: not used by platform baidu-tp"},
		{"baidu-tp secret", "platform: baidu-tp\napp_key: k\nauthorizer_token: {value: v}\nsecret: s", "config: apps[0] (x): secret: not used by platform baidu-tp"},
		// platform and name
		{"no platform", "appid: a\nsecret: s", "config: apps[0] (x): platform: required"},
		{"unknown platform", "platform: feishu\nappid: a\nsecret: s", "config: apps[0] (x): platform: must be one of wechat, wechat-component, baidu, baidu-legacy, baidu-tp, douyin, qq, kuaishou, alipay"},
		{"platform is case sensitive", "platform: WeChat\nappid: a\nsecret: s", "config: apps[0] (x): platform: must be one of wechat, wechat-component, baidu, baidu-legacy, baidu-tp, douyin, qq, kuaishou, alipay"},
		// douyin, qq, kuaishou
		{"douyin ok", "platform: douyin\nappid: tt1\nsecret: s", ""},
		{"douyin no secret", "platform: douyin\nappid: tt1", "config: apps[0] (x): secret: required"},
		{"douyin app_id", "platform: douyin\napp_id: tt1\nsecret: s", "config: apps[0] (x): app_id: not used by platform douyin"},
		{"douyin unionid", "platform: douyin\nappid: tt1\nsecret: s\nunionid: true", "config: apps[0] (x): unionid: not used by platform douyin"},
		{"douyin bad rsa key", "platform: douyin\nappid: tt1\nsecret: s\nrsa_private_key: nope", "config: apps[0] (x): rsa_private_key: not a PKCS#8 or PKCS#1 RSA private key"},
		{"qq ok", "platform: qq\nappid: '1109000000'\nsecret: s", ""},
		{"qq rsa key", "platform: qq\nappid: '1109000000'\nsecret: s\nrsa_private_key: x", "config: apps[0] (x): rsa_private_key: not used by platform qq"},
		{"kuaishou ok", "platform: kuaishou\napp_id: ks1\napp_secret: s", ""},
		{"kuaishou appid", "platform: kuaishou\nappid: ks1\napp_secret: s", "config: apps[0] (x): appid: not used by platform kuaishou: its key is app_id"},
		{"kuaishou no app_id", "platform: kuaishou\napp_secret: s", "config: apps[0] (x): app_id: required"},
		{"kuaishou secret", "platform: kuaishou\napp_id: ks1\napp_secret: s\nsecret: s", "config: apps[0] (x): secret: not used by platform kuaishou"},
		{"kuaishou userdata_max_age", "platform: kuaishou\napp_id: ks1\napp_secret: s\nuserdata_max_age: 1h", "config: apps[0] (x): userdata_max_age: not used by platform kuaishou"},
		{"wechat app_id", "platform: wechat\nappid: a\nsecret: s\napp_id: b", "config: apps[0] (x): app_id: not used by platform wechat"},
		{"wechat rsa key", "platform: wechat\nappid: a\nsecret: s\nrsa_private_key: x", "config: apps[0] (x): rsa_private_key: not used by platform wechat"},
		{"appid with a space", "platform: wechat\nappid: 'a b'\nsecret: s", "config: apps[0] (x): appid: must be 1 to 128 printable characters without spaces"},
		{"secret with trailing space", "platform: wechat\nappid: a\nsecret: 's '", "config: apps[0] (x): secret: has leading or trailing white space"},
		{"secret with a newline", "platform: baidu\napp_key: a\napp_secret: \"s\\ns\"", "config: apps[0] (x): app_secret: contains a control character"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			src := head + "  - name: x\n" + indent(tt.app, "    ")
			if tt.want == "" {
				c := mustParse(t, src, nil)
				if len(c.Apps) != 1 || c.Apps[0].Name != "x" {
					t.Errorf("apps = %+v", c.Apps)
				}
				return
			}
			if got := parseErr(t, src, nil); got != tt.want {
				t.Errorf("got  %s\nwant %s", got, tt.want)
			}
		})
	}
}

func indent(s, prefix string) string {
	lines := strings.Split(s, "\n")
	for i := range lines {
		lines[i] = prefix + lines[i]
	}
	return strings.Join(lines, "\n") + "\n"
}

func TestNames(t *testing.T) {
	tests := []struct{ name, src, want string }{
		{"duplicate", head + wechatApp + baiduApp + "  - name: w\n    platform: baidu\n    app_key: k\n    app_secret: s\n",
			`config: apps[2]: name: duplicate "w"`},
		{"duplicate example", head +
			"  - {name: shop-wechat, platform: wechat, appid: a, secret: s}\n" +
			"  - {name: shop-baidu, platform: baidu, app_key: k, app_secret: s}\n" +
			"  - {name: shop-wechat, platform: wechat, appid: b, secret: t}\n",
			`config: apps[2]: name: duplicate "shop-wechat"`},
		{"missing", head + "  - platform: wechat\n    appid: a\n    secret: s\n", "config: apps[0]: name: required"},
		{"upper case", head + "  - name: Shop\n    platform: wechat\n    appid: a\n    secret: s\n",
			"config: apps[0]: name: must be 1 to 64 of a-z, 0-9, '.', '_' and '-'"},
		{"too long", head + "  - name: " + strings.Repeat("a", 65) + "\n    platform: wechat\n    appid: a\n    secret: s\n",
			"config: apps[0]: name: must be 1 to 64 of a-z, 0-9, '.', '_' and '-'"},
		{"no apps", head, "config: apps: at least one app is required"},
		{"apps not a list", "store: sqlite:x\nmaster_key: " + key7 + "\napps: {name: x}\n", "config: apps: must be a list, not a mapping"},
		{"app not a mapping", head + "  - shop\n", "config: apps[0]: must be a mapping, not a single value"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := parseErr(t, tt.src, nil); got != tt.want {
				t.Errorf("got  %s\nwant %s", got, tt.want)
			}
		})
	}
	t.Run("64 characters", func(t *testing.T) {
		n := strings.Repeat("a", 60) + "._-9"
		c := mustParse(t, head+"  - name: "+n+"\n    platform: wechat\n    appid: a\n    secret: s\n", nil)
		if c.Apps[0].Name != n {
			t.Errorf("name = %q", c.Apps[0].Name)
		}
	})
}

func TestUnknownAndStructure(t *testing.T) {
	tests := []struct{ name, src, want string }{
		{"unknown top-level key", head + wechatApp + "foo: 1\n",
			`config: line 8: unknown key "foo"`},
		{"unknown key in an app", head + "  - name: shop-wechat\n    platform: wechat\n    appid: a\n    foo: bar\n    secret: s\n",
			`config: line 7: apps[0] (shop-wechat): unknown key "foo"`},
		{"unknown key before the name", head + "  - foo: bar\n    name: shop-wechat\n",
			`config: line 4: apps[0] (shop-wechat): unknown key "foo"`},
		{"misspelt key in an app", head + "  - name: w\n    platform: wechat\n    appid: a\n    secert: s\n",
			`config: line 7: apps[0] (w): unknown key "secert" (did you mean "secret"?)`},
		{"key with other case", head + "  - name: w\n    platform: wechat\n    appId: a\n",
			`config: line 6: apps[0] (w): unknown key "appId" (did you mean "appid"?)`},
		{"unknown key in http", head + wechatApp + "http:\n  read_timout: 1s\n",
			`config: line 9: http: unknown key "read_timout" (did you mean "read_timeout"?)`},
		{"unknown key in a token source", head + "  - name: t\n    platform: baidu-tp\n    app_key: k\n    authorizer_token:\n      token: x\n",
			`config: line 8: apps[0] (t): authorizer_token: unknown key "token"`},
		{"contract-only key name is known, misplaced one is not", head + wechatApp + "sessions_policy:\n  access_ttl: 1h\n  ttl: 1h\n",
			`config: line 10: sessions_policy: unknown key "ttl"`},
		{"key given twice", head + "  - name: w\n    platform: wechat\n    appid: a\n    secret: s\n    secret: t\n",
			"config: line 8: apps[0] (w): secret: given twice (first at line 7)"},
		{"top key given twice", "store: sqlite:x\n" + head + wechatApp,
			"config: line 2: store: given twice (first at line 1)"},
		{"empty file", "", "config: the file is empty"},
		{"comments only", "# nothing\n\n", "config: the file is empty"},
		{"two documents", head + wechatApp + "---\nlisten: x\n", "config: line 8: a second YAML document; the configuration must be one document"},
		{"top level a list", "- a\n", "config: line 1: the top level must be a mapping of keys such as listen, store and apps"},
		{"top level null", "---\n", "config: the file is empty"},
		{"top level null with comments", "# config\n~\n", "config: the file is empty"},
		{"top level scalar", "hello\n", "config: line 1: the top level must be a mapping of keys such as listen, store and apps"},
		{"unquoted reference in a flow list", head + wechatApp + "old_master_keys: [${K}]\n", "config: line 8: invalid YAML: did not find expected ',' or ']'"},
		{"syntax error", "store: [\n", "config: line 2: invalid YAML: did not find expected node content"},
		{"unclosed flow list", "a: 1\nb: [x\nc: 2\n", "config: line 2: invalid YAML: did not find expected ',' or ']'"},
		{"bad indentation in a list", "apps:\n  - name: x\n   platform: y\n", "config: line 2: invalid YAML: did not find expected '-' indicator"},
		{"bad indentation in a mapping", "a: 1\nb:\n  - x\n y: 2\n", "config: line 4: invalid YAML: did not find expected key"},
		{"undefined tag handle", "a: 1\nb: !x!y 1\n", "config: line 2: invalid YAML: found undefined tag handle"},
		{"scanner error", "a: 1\nb: @x\n", "config: line 2: invalid YAML: found character that cannot start any token"},
		{"tab indentation", "store: x\n\tlisten: y\n", "config: line 2: invalid YAML: found a tab character that violates indentation"},
		{"log is a scalar", head + wechatApp + "log: debug\n", "config: log: must be a mapping, not a single value"},
		{"listen is a list", "listen: [a]\n" + head + wechatApp, "config: listen: must be a single value, not a list"},
		{"secret is a mapping", head + "  - name: w\n    platform: wechat\n    appid: a\n    secret: {v: 1}\n",
			"config: apps[0] (w): secret: must be a single value, not a mapping"},
		{"bool", head + "  - name: b\n    platform: baidu\n    app_key: k\n    app_secret: s\n    unionid: yes\n",
			"config: apps[0] (b): unionid: must be true or false"},
		{"log level", head + wechatApp + "log: {level: verbose}\n", "config: log.level: must be debug, info, warn or error"},
		{"log format", head + wechatApp + "log: {format: xml}\n", "config: log.format: must be json or text"},
		{"binary tag", "listen: !!binary aGVsbG8=\n" + head + wechatApp, "config: listen: has an unsupported YAML tag"},
		{"merge key", head + wechatApp + "<<: {listen: x}\n", "config: line 8: merge keys (<<) are not supported"},
		{"mapping as a key", head + wechatApp + "? {a: b}\n: c\n", "config: line 8: a key must be a plain name, not a mapping"},
		{"trusted proxy", head + wechatApp + "http: {trusted_proxies: [10.0.0.0/8, 10.0.0.300]}\n",
			"config: http.trusted_proxies[1]: must be an IP address or a CIDR such as 10.0.0.0/8"},
		{"trusted proxy with a zone", head + wechatApp + "http: {trusted_proxies: ['fe80::1%eth0']}\n",
			"config: http.trusted_proxies[0]: must be an IP address or a CIDR such as 10.0.0.0/8"},
		{"trusted proxies not a list", head + wechatApp + "http: {trusted_proxies: 10.0.0.0/8}\n",
			"config: http.trusted_proxies: must be a list, not a single value"},
		{"listen without port", "listen: localhost\n" + head + wechatApp, "config: listen: must be host:port, such as 127.0.0.1:8300"},
		{"listen bad port", "listen: ':http'\n" + head + wechatApp, "config: listen: port must be a number from 0 to 65535"},
		{"listen port too big", "listen: ':65536'\n" + head + wechatApp, "config: listen: port must be a number from 0 to 65535"},
		{"sessions scheme", "sessions: memcache://x:1\n" + head + wechatApp, "config: sessions: must be a redis:// or rediss:// URL, such as redis://127.0.0.1:6379/0"},
		{"sessions without host", "sessions: 'redis:x'\n" + head + wechatApp, "config: sessions: must be a redis:// or rediss:// URL, such as redis://127.0.0.1:6379/0"},
		{"no store", "master_key: " + key7 + "\napps:\n" + wechatApp, "config: store: required"},
		{"store scheme", "store: mysql://x\nmaster_key: " + key7 + "\napps:\n" + wechatApp,
			"config: store: unknown kind: use sqlite:PATH or postgres://user@host:5432/db"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := parseErr(t, tt.src, nil); got != tt.want {
				t.Errorf("got  %s\nwant %s", got, tt.want)
			}
		})
	}
	t.Run("aliases", func(t *testing.T) {
		c := mustParse(t, head+"  - &w {name: w, platform: wechat, appid: a, secret: &s s3}\n  - {name: w2, platform: wechat, appid: b, secret: *s}\n", nil)
		if c.Apps[1].Secret.Reveal() != "s3" {
			t.Errorf("alias secret = %q", c.Apps[1].Secret.Reveal())
		}
	})
}

func TestMasterKeys(t *testing.T) {
	tests := []struct{ name, keys, want string }{
		{"ok", "master_key: " + key7 + "\nold_master_keys: [" + key9 + ", " + key7 + "]", ""},
		{"missing", "", "config: master_key: required"},
		{"empty", "master_key: ''", "config: master_key: required"},
		{"16 bytes", "master_key: " + key16, "config: master_key: must be base64 of 32 bytes (got 16)"},
		{"not base64", "master_key: not-base64!", "config: master_key: must be base64 of 32 bytes (not valid base64)"},
		{"unpadded", "master_key: " + strings.TrimSuffix(key7, "="), "config: master_key: must be base64 of 32 bytes (not valid base64)"},
		{"url alphabet", "master_key: " + strings.NewReplacer("+", "-", "/", "_").Replace("+/+/"+key7[4:]), "config: master_key: must be base64 of 32 bytes (not valid base64)"},
		{"33 bytes", "master_key: " + "BwcHBwcHBwcHBwcHBwcHBwcHBwcHBwcHBwcHBwcHBwcH", "config: master_key: must be base64 of 32 bytes (got 33)"},
		{"old key short", "master_key: " + key7 + "\nold_master_keys:\n  - " + key9 + "\n  - " + key16, "config: old_master_keys[1]: must be base64 of 32 bytes (got 16)"},
		{"old keys not a list", "master_key: " + key7 + "\nold_master_keys: " + key9, "config: old_master_keys: must be a list, not a single value"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			src := "store: sqlite:x\n" + tt.keys + "\napps:\n" + wechatApp
			if tt.want == "" {
				c := mustParse(t, src, nil)
				if !bytes.Equal(c.MasterKey, bytes.Repeat([]byte{7}, 32)) || len(c.OldMasterKeys) != 2 ||
					!bytes.Equal(c.OldMasterKeys[0], bytes.Repeat([]byte{9}, 32)) {
					t.Errorf("keys = %x, %x", c.MasterKey, c.OldMasterKeys)
				}
				return
			}
			if got := parseErr(t, src, nil); got != tt.want {
				t.Errorf("got  %s\nwant %s", got, tt.want)
			}
		})
	}
}

func TestDurations(t *testing.T) {
	tests := []struct{ name, yaml, want string }{
		{"ok", "platform_timeout: 1500ms\nhttp: {write_timeout: 1m30s}", ""},
		{"no unit", "platform_timeout: 5", "config: platform_timeout: must be a duration such as 5s, 10m or 24h"},
		{"days", "sessions_policy: {refresh_ttl: 30d}", "config: sessions_policy.refresh_ttl: must be a duration such as 5s, 10m or 24h"},
		{"word", "http: {idle_timeout: forever}", "config: http.idle_timeout: must be a duration such as 5s, 10m or 24h"},
		{"zero access ttl", "sessions_policy: {access_ttl: 0s}", "config: sessions_policy.access_ttl: must be more than 0"},
		{"zero refresh ttl", "sessions_policy: {refresh_ttl: 0}", "config: sessions_policy.refresh_ttl: must be more than 0"},
		{"negative access ttl", "sessions_policy: {access_ttl: -1h}", "config: sessions_policy.access_ttl: must be more than 0"},
		{"zero platform timeout", "platform_timeout: 0s", "config: platform_timeout: must be more than 0"},
		{"rate limits off", "rate_limits: {enabled: false}", ""},
		{"rate limit negative", "rate_limits: {login: {ip: -1}}", "config: rate_limits.login.ip: must be a number, 0 or more"},
		{"rate limit huge", "rate_limits: {decrypt: {app: 2e6}}", "config: rate_limits.decrypt.app: must be from 0 (no limit) to 1000000 per second"},
		{"rate limit no burst", "rate_limits: {phone: {ip: 1, ip_burst: 0}}", "config: rate_limits.phone.ip_burst: must be at least 1 when ip is set"},
		{"rate limit unknown route", "rate_limits: {logout: {ip: 1}}", "config: line 3: rate_limits: unknown key \"logout\""},
		{"verify limits", "rate_limits: {verify: {session: 1, session_burst: 2, app: 3, app_burst: 4, ip: 5, ip_burst: 6}}", ""},
		{"session limit no burst", "rate_limits: {verify: {session: 1, session_burst: 0}}",
			"config: rate_limits.verify.session_burst: must be at least 1 when session is set"},
		{"session limit on login", "rate_limits: {login: {session: 1}}", "config: line 3: rate_limits.login: unknown key \"session\""},
		{"connection caps off", "http: {max_connections: 0, max_connections_per_ip: 0}", ""},
		{"connection cap negative", "http: {max_connections: -1}", "config: http.max_connections: must be a whole number from 0 to 1000000"},
		{"ipv6 prefix", "http: {ipv6_prefix: 48}", ""},
		{"ipv6 prefix too short", "http: {ipv6_prefix: 8}",
			"config: http.ipv6_prefix: must be from 32 to 128 (the leading bits of an IPv6 address that name one client)"},
		{"ipv6 prefix not a number", "http: {ipv6_prefix: 2001:db8::/56}", "config: http.ipv6_prefix: must be a prefix length such as 56 or /56"},
		{"zero read header timeout", "http: {read_header_timeout: 0s}", "config: http.read_header_timeout: must be more than 0"},
		{"zero read timeout", "http: {read_timeout: 0s}", "config: http.read_timeout: must be more than 0"},
		{"zero write timeout", "http: {write_timeout: 0s}", "config: http.write_timeout: must be more than 0"},
		{"zero idle timeout", "http: {idle_timeout: 0s}", "config: http.idle_timeout: must be more than 0"},
		{"zero shutdown timeout", "http: {shutdown_timeout: 0s}", "config: http.shutdown_timeout: must be more than 0"},
		{"zero max age", "sessions_policy: {max_age: 0}", ""},
		{"zero grace", "sessions_policy: {session_key_grace: 0s}", ""},
		{"negative max age", "sessions_policy: {max_age: -1s}", "config: sessions_policy.max_age: must not be negative (0 = no limit)"},
		{"negative grace", "sessions_policy: {session_key_grace: -1s}", "config: sessions_policy.session_key_grace: must not be negative"},
		{"replay window too long", "sessions_policy: {code_replay_window: 6m}",
			"config: sessions_policy.code_replay_window: must be 0 to 5m0s (0 = a used code is never honoured again)"},
		{"negative replay window", "sessions_policy: {code_replay_window: -1s}",
			"config: sessions_policy.code_replay_window: must be 0 to 5m0s (0 = a used code is never honoured again)"},
		{"no session cap", "sessions_policy: {max_sessions_per_identity: 0}", ""},
		{"negative session cap", "sessions_policy: {max_sessions_per_identity: -1}",
			"config: sessions_policy.max_sessions_per_identity: must be a whole number from 0 to 1000000"},
		{"refresh grace too long", "sessions_policy: {refresh_reuse_grace: 61s}",
			"config: sessions_policy.refresh_reuse_grace: must be 0 to 1m0s (0 = a spent refresh token always revokes the session)"},
		{"no refresh grace", "sessions_policy: {refresh_reuse_grace: 0s}", ""},
		{"write timeout not above platform timeout", "platform_timeout: 15s", "config: http.write_timeout: must be longer than platform_timeout (15s <= 15s)"},
		{"negative userdata_max_age", "apps:\n  - {name: u, platform: wechat, appid: a, secret: s, userdata_max_age: -1m}", "config: apps[0] (u): userdata_max_age: must not be negative (0 = off)"},
		{"bad userdata_max_age", "apps:\n  - {name: u, platform: wechat, appid: a, secret: s, userdata_max_age: 1 day}", "config: apps[0] (u): userdata_max_age: must be a duration such as 5s, 10m or 24h"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			src := "store: sqlite:x\nmaster_key: " + key7 + "\n" + tt.yaml + "\n"
			if !strings.Contains(tt.yaml, "apps:") {
				src += "apps:\n" + wechatApp
			}
			if tt.want == "" {
				mustParse(t, src, nil)
				return
			}
			if got := parseErr(t, src, nil); got != tt.want {
				t.Errorf("got  %s\nwant %s", got, tt.want)
			}
		})
	}
	t.Run("values", func(t *testing.T) {
		c := mustParse(t, head+wechatApp+"platform_timeout: 1500ms\nsessions_policy: {max_age: 0, session_key_grace: 0s}\n", nil)
		if c.PlatformTimeout != 1500*time.Millisecond || c.Policy.MaxAge != 0 || c.Policy.SessionKeyGrace != 0 {
			t.Errorf("got %v %+v", c.PlatformTimeout, c.Policy)
		}
	})
}

func TestEndpoints(t *testing.T) {
	tests := []struct{ name, endpoint, want string }{
		{"http", "http://127.0.0.1:9300", "http://127.0.0.1:9300"},
		{"https with path", "https://api.example.com/wx/", "https://api.example.com/wx"},
		{"trailing slash", "http://h:1/", "http://h:1"},
		{"no scheme", "127.0.0.1:9300", "must be an absolute http or https URL"},
		{"relative", "/sns", "must be an absolute http or https URL"},
		{"ftp", "ftp://h", "must be an absolute http or https URL"},
		{"no host", "http:///x", "must be an absolute http or https URL"},
		{"query", "http://h/?a=1", "must not have a query"},
		{"empty query", "http://h/?", "must not have a query"},
		{"fragment", "'http://h/#x'", "must not have a fragment"},
		{"credentials", "http://u:p@h/", "must not contain credentials"},
		{"spaces", "'http://h h/'", "must be an absolute http or https URL"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			src := head + "  - name: w\n    platform: wechat\n    appid: a\n    secret: s\n    endpoint: " + tt.endpoint + "\n"
			if strings.HasPrefix(tt.want, "http") {
				if got := mustParse(t, src, nil).Apps[0].Endpoint; got != tt.want {
					t.Errorf("endpoint = %q, want %q", got, tt.want)
				}
				return
			}
			if got, want := parseErr(t, src, nil), "config: apps[0] (w): endpoint: "+tt.want; got != want {
				t.Errorf("got  %s\nwant %s", got, want)
			}
		})
	}
}

func TestTokenSources(t *testing.T) {
	tests := []struct{ name, token, want string }{
		{"value", "{value: v}", ""},
		{"url", "{url: 'https://owner.example/token?app=a'}", ""},
		{"both", "{value: v, url: 'https://owner.example/token'}", "config: apps[0] (tp): component_token: give value or url, not both"},
		{"neither", "{}", "config: apps[0] (tp): component_token: needs one of value or url"},
		{"empty value", "{value: ''}", "config: apps[0] (tp): component_token: needs one of value or url"},
		{"relative url", "{url: /token}", "config: apps[0] (tp): component_token.url: must be an absolute http or https URL"},
		{"url with credentials", "{url: 'https://u:p@owner/token'}", "config: apps[0] (tp): component_token.url: must not contain credentials"},
		{"scalar", "tok", "config: apps[0] (tp): component_token: must be a mapping, not a single value"},
		{"value with space", "{value: ' v'}", "config: apps[0] (tp): component_token.value: has leading or trailing white space"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			src := head + "  - name: tp\n    platform: wechat-component\n    appid: a\n    component_appid: c\n    component_token: " + tt.token + "\n"
			if tt.want == "" {
				c := mustParse(t, src, nil)
				if ts := c.Apps[0].ComponentToken; ts == nil || ts.Value.IsZero() == (ts.URL == "") {
					t.Errorf("token source = %+v", ts)
				}
				return
			}
			if got := parseErr(t, src, nil); got != tt.want {
				t.Errorf("got  %s\nwant %s", got, tt.want)
			}
		})
	}
	t.Run("authorizer_token", func(t *testing.T) {
		got := parseErr(t, head+"  - name: btp\n    platform: baidu-tp\n    app_key: k\n    authorizer_token: {value: v, url: 'http://o/t'}\n", nil)
		if want := "config: apps[0] (btp): authorizer_token: give value or url, not both"; got != want {
			t.Errorf("got  %s\nwant %s", got, want)
		}
	})
}

func TestStoreKind(t *testing.T) {
	tests := []struct {
		name, dsn, kind, target string
		wantErr                 bool
	}{
		{"sqlite relative", "sqlite:./mplogin.db", "sqlite", "./mplogin.db", false},
		{"sqlite bare", "sqlite:mplogin.db", "sqlite", "mplogin.db", false},
		{"sqlite slashes", "sqlite://./data/mplogin.db", "sqlite", "./data/mplogin.db", false},
		{"sqlite absolute", "sqlite:///var/lib/mplogin.db", "sqlite", "/var/lib/mplogin.db", false},
		{"sqlite absolute short", "sqlite:/var/lib/mplogin.db", "sqlite", "/var/lib/mplogin.db", false},
		{"sqlite upper case", "SQLite:x.db", "sqlite", "x.db", false},
		{"sqlite no path", "sqlite:", "", "", true},
		{"sqlite slashes no path", "sqlite://", "", "", true},
		{"postgres", "postgres://user@host:5432/db", "postgres", "postgres://user@host:5432/db", false},
		{"postgresql", "postgresql://u:p@h/db?sslmode=require", "postgres", "postgresql://u:p@h/db?sslmode=require", false},
		{"postgres unix socket", "postgres:///db?host=/run/postgresql", "postgres", "postgres:///db?host=/run/postgresql", false},
		{"postgres opaque", "postgres:db", "", "", true},
		{"postgres bad url", "postgres://u:p@h:x/db", "", "", true},
		{"empty", "", "", "", true},
		{"no scheme", "./mplogin.db", "", "", true},
		{"mysql", "mysql://h/db", "", "", true},
		{"redis", "redis://h:6379", "", "", true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			kind, target, err := StoreKind(tt.dsn)
			if (err != nil) != tt.wantErr || kind != tt.kind || target != tt.target {
				t.Fatalf("StoreKind(%q) = %q, %q, %v", tt.dsn, kind, target, err)
			}
			if err != nil {
				if !strings.HasPrefix(err.Error(), "config: store: ") {
					t.Errorf("error %q does not name the key", err)
				}
				if len(tt.dsn) > 8 && strings.Contains(err.Error(), tt.dsn) {
					t.Errorf("error %q repeats the DSN", err)
				}
			}
		})
	}
}

// A secret put anywhere, right or wrong, never shows in an error.
func TestSecretsNeverInErrors(t *testing.T) {
	const s = "S3cr3tV4lue-do-not-print-9f8e7d" // length and charset of a plausible secret
	lower := strings.ToLower(s)
	short := "s3cr3t" // shorter than yaml's own 10-character quoting
	getenv := env(map[string]string{"S": s, "SHORT": short, "KEY16": key16})
	tests := []struct{ name, src string }{
		{"secret as unionid", head + "  - name: b\n    platform: baidu\n    app_key: k\n    app_secret: x\n    unionid: ${S}\n"},
		{"short secret as unionid", head + "  - name: b\n    platform: baidu\n    app_key: k\n    app_secret: x\n    unionid: ${SHORT}\n"},
		{"literal secret as unionid", head + "  - name: b\n    platform: baidu\n    app_key: k\n    app_secret: x\n    unionid: " + s + "\n"},
		{"secret as duration", head + wechatApp + "platform_timeout: ${S}\n"},
		{"literal secret as duration", head + wechatApp + "platform_timeout: " + short + "\n"},
		{"secret as master key", "store: sqlite:x\nmaster_key: " + s + "\napps:\n" + wechatApp},
		{"env secret as master key", "store: sqlite:x\nmaster_key: ${S}\napps:\n" + wechatApp},
		{"short master key", "store: sqlite:x\nmaster_key: ${KEY16}\napps:\n" + wechatApp},
		{"secret as old master key", head + wechatApp + "old_master_keys: [" + s + "]\n"},
		{"secret as store", "store: ${S}\nmaster_key: " + key7 + "\napps:\n" + wechatApp},
		{"secret in store scheme", "store: '" + s + ":x'\nmaster_key: " + key7 + "\napps:\n" + wechatApp},
		{"password in bad postgres url", "store: 'postgres://u:" + s + "@h:port/db'\nmaster_key: " + key7 + "\napps:\n" + wechatApp},
		{"secret as sessions", "sessions: ${S}\n" + head + wechatApp},
		{"password in bad sessions url", "sessions: 'memcache://u:" + s + "@h'\n" + head + wechatApp},
		{"secret as listen", "listen: ${S}\n" + head + wechatApp},
		{"secret as platform", head + "  - name: w\n    platform: " + s + "\n    appid: a\n    secret: s\n"},
		{"secret as lower-case platform", head + "  - name: w\n    platform: " + lower + "\n    appid: a\n    secret: s\n"},
		{"secret as name", head + "  - name: " + s + "\n    platform: wechat\n    appid: a\n    secret: s\n"},
		{"secret as appid", head + "  - name: w\n    platform: wechat\n    appid: ' " + s + "'\n    secret: s\n"},
		{"secret as endpoint", head + "  - name: w\n    platform: wechat\n    appid: a\n    secret: s\n    endpoint: ${S}\n"},
		{"secret in endpoint credentials", head + "  - name: w\n    platform: wechat\n    appid: a\n    secret: s\n    endpoint: 'https://u:" + s + "@h/'\n"},
		{"secret in endpoint query", head + "  - name: w\n    platform: wechat\n    appid: a\n    secret: s\n    endpoint: 'https://h/?k=" + s + "'\n"},
		{"secret on the wrong platform", head + "  - name: b\n    platform: baidu\n    app_key: k\n    app_secret: x\n    secret: " + s + "\n"},
		{"secret with white space", head + "  - name: w\n    platform: wechat\n    appid: a\n    secret: '" + s + " '\n"},
		{"secret as log level", head + wechatApp + "log: {level: " + s + "}\n"},
		{"secret as trusted proxy", head + wechatApp + "http: {trusted_proxies: [" + s + "]}\n"},
		{"secret as token url", head + "  - name: tp\n    platform: baidu-tp\n    app_key: k\n    authorizer_token: {url: " + s + "}\n"},
		{"secret in a malformed reference", head + "  - name: w\n    platform: wechat\n    appid: a\n    secret: ${" + s + "\n"},
		{"secret with a tag", "listen: !!binary " + s + "\n" + head + wechatApp},
		{"secret as a list", head + "  - name: w\n    platform: wechat\n    appid: a\n    secret: [" + s + "]\n"},
		{"secret as client id", head + wechatApp + "clients:\n  - id: ${S}\n    secret: x\n"},
		{"short client secret", head + wechatApp + "clients:\n  - id: a\n    secret: ${SHORT}\n"},
		{"client secret with white space", head + wechatApp + "clients:\n  - id: a\n    secret: '" + s + " '\n"},
		{"client secret under a wrong key", head + wechatApp + "clients:\n  - id: a\n    secrets: " + s + "\n"},
		{"secret as issuer", "access_tokens: {issuer: ${S}}\n" + head + wechatApp},
		{"secret in issuer credentials", "access_tokens: {issuer: 'https://u:" + s + "@h'}\n" + head + wechatApp},
		{"secret after a syntax error", head + "  - name: w\n    secret: \"" + s + "\n"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			msg := parseErr(t, tt.src, getenv)
			for _, v := range []string{s, s[:7], lower[:7], short, key16[:7]} {
				if strings.Contains(msg, v) {
					t.Errorf("error %q contains %q", msg, v)
				}
			}
		})
	}
}

const demoSecret = "demo-app-secret-0123456789"

// testConfig builds a valid configuration in code, as the demo does.
func testConfig() Config {
	c := Default()
	c.Store = "sqlite:./demo.db"
	c.MasterKey = bytes.Repeat([]byte{1}, MasterKeySize)
	c.Apps = []App{
		{Name: "demo-wechat", Flavor: platform.FlavorWeChat, AppID: "wxdemo0000000001", Secret: secret.New(demoSecret),
			Endpoint: "http://127.0.0.1:9300", UserdataMaxAge: DefaultUserdataMaxAge},
		{Name: "demo-baidu", Flavor: platform.FlavorBaidu, AppKey: "demobaiduappkey00000000000000001",
			AppSecret: secret.New(demoSecret), Endpoint: "http://127.0.0.1:9300"},
	}
	return c
}

func TestDefaultAndValidate(t *testing.T) {
	d := Default()
	if d.Listen != DefaultListen || d.Log.Format != "json" || d.Log.Level != slog.LevelInfo ||
		d.PlatformTimeout != DefaultPlatformTimeout || d.Policy.AccessTTL != DefaultAccessTTL ||
		d.HTTP.WriteTimeout != DefaultWriteTimeout || d.Apps != nil || d.MasterKey != nil || d.Store != "" {
		t.Errorf("Default() = %+v", d)
	}
	if err := d.Validate(); err == nil || err.Error() != "config: store: required" {
		t.Errorf("Default().Validate() = %v", err)
	}

	tests := []struct {
		name   string
		change func(*Config)
		want   string
	}{
		{"valid", func(*Config) {}, ""},
		{"no master key", func(c *Config) { c.MasterKey = nil }, "config: master_key: required"},
		{"short master key", func(c *Config) { c.MasterKey = make([]byte, 16) }, "config: master_key: must be 32 bytes (got 16)"},
		{"short old key", func(c *Config) { c.OldMasterKeys = [][]byte{make([]byte, 32), make([]byte, 31)} }, "config: old_master_keys[1]: must be 32 bytes (got 31)"},
		{"no apps", func(c *Config) { c.Apps = nil }, "config: apps: at least one app is required"},
		{"duplicate", func(c *Config) { c.Apps[1].Name = "demo-wechat" }, `config: apps[1]: name: duplicate "demo-wechat"`},
		{"wechat without secret", func(c *Config) { c.Apps[0].Secret = secret.String{} }, "config: apps[0] (demo-wechat): secret: required"},
		{"wechat with app key", func(c *Config) { c.Apps[0].AppKey = "k" }, "config: apps[0] (demo-wechat): app_key: not used by platform wechat"},
		{"baidu with userdata age", func(c *Config) { c.Apps[1].UserdataMaxAge = time.Hour }, "config: apps[1] (demo-baidu): userdata_max_age: not used by platform baidu"},
		{"bad endpoint", func(c *Config) { c.Apps[1].Endpoint = "localhost:9300" }, "config: apps[1] (demo-baidu): endpoint: must be an absolute http or https URL"},
		{"unset platform", func(c *Config) { c.Apps[1].Flavor = "" }, "config: apps[1] (demo-baidu): platform: required"},
		{"no log format", func(c *Config) { c.Log.Format = "" }, "config: log.format: must be json or text"},
		{"zero policy", func(c *Config) { c.Policy = Policy{} }, "config: sessions_policy.access_ttl: must be more than 0"},
		{"zero platform timeout", func(c *Config) { c.PlatformTimeout = 0 }, "config: platform_timeout: must be more than 0"},
		{"invalid proxy", func(c *Config) { c.HTTP.TrustedProxies = []netip.Prefix{{}} }, "config: http.trusted_proxies[0]: must be an IP address or a CIDR"},
		{"empty listen", func(c *Config) { c.Listen = "" }, "config: listen: required"},
		{"random port", func(c *Config) { c.Listen = "127.0.0.1:0" }, ""},
		{"empty token source", func(c *Config) {
			c.Apps = append(c.Apps, App{Name: "tp", Flavor: platform.FlavorBaiduTP, AppKey: "k", AuthorizerToken: &TokenSource{}})
		}, "config: apps[2] (tp): authorizer_token: needs one of value or url"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := testConfig()
			tt.change(&c)
			err := c.Validate()
			if tt.want == "" {
				if err != nil {
					t.Fatalf("Validate() = %v", err)
				}
				return
			}
			if err == nil || err.Error() != tt.want {
				t.Errorf("Validate() = %v\nwant %s", err, tt.want)
			}
		})
	}
}

func TestAppMethods(t *testing.T) {
	tests := []struct {
		app          App
		id           string
		family       platform.Family
		wantFoundKey bool
	}{
		{App{Flavor: platform.FlavorWeChat, AppID: "wx1", AppKey: "k"}, "wx1", "wechat", true},
		{App{Flavor: platform.FlavorWeChatComponent, AppID: "wx2"}, "wx2", "wechat", true},
		{App{Flavor: platform.FlavorBaidu, AppID: "a", AppKey: "bk"}, "bk", "baidu", true},
		{App{Flavor: platform.FlavorBaiduLegacy, AppKey: "bl"}, "bl", "baidu", true},
		{App{Flavor: platform.FlavorBaiduTP, AppKey: "bt"}, "bt", "baidu", true},
		{App{Flavor: platform.FlavorDouyin, AppID: "d"}, "d", "douyin", true},
		{App{Flavor: platform.FlavorQQ, AppID: "1109"}, "1109", "qq", true},
		{App{Flavor: platform.FlavorKuaishou, AppID: "ks"}, "ks", "kuaishou", true},
		{App{Flavor: "feishu", AppID: "d"}, "d", "", false},
	}
	for _, tt := range tests {
		t.Run(string(tt.app.Flavor), func(t *testing.T) {
			if got := tt.app.ID(); got != tt.id {
				t.Errorf("ID() = %q, want %q", got, tt.id)
			}
			if got := tt.app.Family(); got != tt.family {
				t.Errorf("Family() = %q, want %q", got, tt.family)
			}
		})
	}
}

func TestLoad(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "mplogin.yaml")
	if err := os.WriteFile(path, []byte(head+"  - name: w\n    platform: wechat\n    appid: a\n    secret: ${W}\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	c, err := Load(path, env(map[string]string{"W": "ws"}))
	if err != nil || c.Apps[0].Secret.Reveal() != "ws" {
		t.Fatalf("Load = %v, %v", c, err)
	}
	_, err = Load(filepath.Join(dir, "missing.yaml"), nil)
	if !errors.Is(err, fs.ErrNotExist) || !strings.HasPrefix(err.Error(), "config: ") {
		t.Errorf("Load(missing) = %v", err)
	}
	big := filepath.Join(dir, "big.yaml")
	if err := os.WriteFile(big, bytes.Repeat([]byte("# \n"), maxFileSize/3+1), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := Load(big, nil); err == nil || !strings.Contains(err.Error(), "larger than 1 MiB") {
		t.Errorf("Load(big) = %v", err)
	}
}

// Printing or logging a Config shows no key material and no passwords.
func TestConfigRendering(t *testing.T) {
	c := testConfig()
	c.MasterKey = bytes.Repeat([]byte{0xAB}, 32)
	c.OldMasterKeys = [][]byte{bytes.Repeat([]byte{0xCD}, 32)}
	c.Store = "postgres://mplogin:pgpassw0rd@db/mplogin"
	c.Sessions = "redis://:redispassw0rd@cache:6379/0"
	var logs bytes.Buffer
	slog.New(slog.NewJSONHandler(&logs, nil)).Info("config", "config", c, "ptr", &c)
	outputs := map[string]string{
		"%v":   fmt.Sprintf("%v", c),
		"%+v":  fmt.Sprintf("%+v", c),
		"%#v":  fmt.Sprintf("%#v", c),
		"%s":   fmt.Sprintf("%s", c),
		"%x":   fmt.Sprintf("%x", c),
		"ptr":  fmt.Sprintf("%v", &c),
		"slog": logs.String(),
	}
	for verb, out := range outputs {
		for _, leak := range []string{"pgpassw0rd", "redispassw0rd", "abab", "ABAB", "cdcd", "171, 171", "q6ur", "zc3N"} {
			if strings.Contains(out, leak) {
				t.Errorf("%s output contains %q: %s", verb, leak, out)
			}
		}
		if !strings.Contains(out, "demo-wechat") {
			t.Errorf("%s output lacks the app names: %s", verb, out)
		}
	}
	// The apps' secrets stay redacted when apps are printed or encoded.
	b, err := json.Marshal(c.Apps)
	if err != nil {
		t.Fatal(err)
	}
	outputs["json apps"] = string(b)
	outputs["apps %+v"] = fmt.Sprintf("%+v", c.Apps)
	outputs["apps %#v"] = fmt.Sprintf("%#v", c.Apps)
	for name, out := range outputs {
		if strings.Contains(out, demoSecret) {
			t.Errorf("%s output contains the app secret: %s", name, out)
		}
	}
}

// FuzzParse: no input panics, and every error is one line that does not
// contain the secret the environment hands out.
func FuzzParse(f *testing.F) {
	f.Add([]byte(head + wechatApp + baiduApp))
	f.Add([]byte("master_key: ${S}\nstore: ${S}\napps:\n  - {name: a, platform: baidu, app_key: ${S}, unionid: ${S}}\n"))
	f.Add([]byte("a: &x [*x]\n"))
	f.Add([]byte("apps: [{name: x, component_token: {url: '$${S}'}}]\n"))
	f.Add([]byte("access_tokens: {issuer: ${S}}\nclients: [{id: ${S}, secret: ${S}}]\n" + head + wechatApp))
	const s = "fuzzSecretVALUE"
	getenv := env(map[string]string{"S": s})
	f.Fuzz(func(t *testing.T, data []byte) {
		c, err := Parse(data, getenv)
		if err == nil {
			if c == nil {
				t.Fatal("nil config without an error")
			}
			if err := c.Validate(); err != nil {
				t.Fatalf("parsed config does not validate: %v", err)
			}
			return
		}
		msg := err.Error()
		if strings.ContainsAny(msg, "\r\n") {
			t.Errorf("error is not one line: %q", msg)
		}
		if !bytes.Contains(data, []byte(s)) && strings.Contains(msg, s) {
			t.Errorf("error contains the expanded secret: %q", msg)
		}
	})
}

// docEnv is the environment the documented examples are parsed with.
func docEnv(t *testing.T) func(string) (string, bool) {
	t.Helper()
	k, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	pub, err := x509.MarshalPKIXPublicKey(&k.PublicKey)
	if err != nil {
		t.Fatal(err)
	}
	return env(map[string]string{
		"MPLOGIN_MASTER_KEY": key7, "SHOP_WECHAT_SECRET": "ws", "SHOP_BAIDU_SECRET": "bs",
		"COMPONENT_ACCESS_TOKEN": "ct", "OLD_KEY": key9, "PG_PASSWORD": "pw",
		"ORDERS_CLIENT_SECRET": "orders-client-secret-0123", "GATEWAY_CLIENT_SECRET": "gateway-client-secret-0123",
		"MPLOGIN_ADMIN_TOKEN": "admin-token-0123456789-0123456789-0123",
		"SHOP_DOUYIN_SECRET":  "ds", "SHOP_QQ_SECRET": "qs", "SHOP_KUAISHOU_SECRET": "ks",
		"SHOP_DOUYIN_RSA_KEY":     string(pem.EncodeToMemory(&pem.Block{Type: "RSA PRIVATE KEY", Bytes: x509.MarshalPKCS1PrivateKey(k)})),
		"SHOP_ALIPAY_PRIVATE_KEY": string(pem.EncodeToMemory(&pem.Block{Type: "RSA PRIVATE KEY", Bytes: x509.MarshalPKCS1PrivateKey(k)})),
		"SHOP_ALIPAY_PUBLIC_KEY":  base64.StdEncoding.EncodeToString(pub),
		"SHOP_ALIPAY_AES_KEY":     base64.StdEncoding.EncodeToString(bytes.Repeat([]byte{3}, 16)),
	})
}

// The file format in the package documentation parses.
func TestPackageDocExample(t *testing.T) {
	src, err := os.ReadFile("doc.go")
	if err != nil {
		t.Fatal(err)
	}
	_, after, ok := strings.Cut(string(src), "// # File format\n//\n")
	if !ok {
		t.Fatal("no File format section in doc.go")
	}
	var yml strings.Builder
	for _, line := range strings.Split(after, "\n") {
		code, ok := strings.CutPrefix(line, "//\t")
		if !ok {
			break
		}
		yml.WriteString(code + "\n")
	}
	c := mustParse(t, yml.String(), docEnv(t))
	if len(c.Apps) != 4 || c.Apps[3].AuthorizerToken == nil || c.Apps[3].AuthorizerToken.URL != "https://owner.example/baidu-token" {
		t.Errorf("apps = %+v", c.Apps)
	}
	if c.Store != "sqlite:./mplogin.db" || c.Policy != Default().Policy || !reflect.DeepEqual(c.HTTP, Default().HTTP) {
		t.Errorf("the documented values are not the defaults: %+v %+v", c.Policy, c.HTTP)
	}
}

// Every YAML example in docs/config.md parses; the ones that show only apps
// get a store and a master key, the ones that show only clients an app too.
func TestUserDocExamples(t *testing.T) {
	src, err := os.ReadFile(filepath.Join("..", "docs", "config.md"))
	if err != nil {
		t.Fatal(err)
	}
	blocks := strings.Split(string(src), "```yaml\n")[1:]
	if len(blocks) < 8 {
		t.Fatalf("found %d YAML examples in docs/config.md", len(blocks))
	}
	denv := docEnv(t)
	for i, b := range blocks {
		b, _, _ = strings.Cut(b, "```")
		t.Run(fmt.Sprint(i), func(t *testing.T) {
			if strings.HasPrefix(b, "apps:") {
				b = "store: sqlite:x\nmaster_key: ${MPLOGIN_MASTER_KEY}\n" + b
			}
			if strings.HasPrefix(b, "clients:") || strings.HasPrefix(b, "admin:") || strings.HasPrefix(b, "metrics:") {
				b = head + wechatApp + b
			}
			mustParse(t, b, denv)
		})
	}
}

// TestRSAPrivateKey: a douyin app's key in PKCS#1 or PKCS#8 PEM is taken;
// a short key, another kind of key or a broken block is refused, and no
// error repeats the key.
func TestRSAPrivateKey(t *testing.T) {
	rk, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	pkcs8, _ := x509.MarshalPKCS8PrivateKey(rk)
	short, err := rsa.GenerateKey(rand.Reader, 1024)
	if err != nil {
		t.Fatal(err)
	}
	ek, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	ec8, _ := x509.MarshalPKCS8PrivateKey(ek)
	for _, tt := range []struct {
		name, pem, want string
	}{
		{"pkcs1", string(pem.EncodeToMemory(&pem.Block{Type: "RSA PRIVATE KEY", Bytes: x509.MarshalPKCS1PrivateKey(rk)})), ""},
		{"pkcs8", string(pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: pkcs8})), ""},
		{"short", string(pem.EncodeToMemory(&pem.Block{Type: "RSA PRIVATE KEY", Bytes: x509.MarshalPKCS1PrivateKey(short)})), "an RSA key of 1024 bits; want at least 2048"},
		{"ecdsa", string(pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: ec8})), "not an RSA key"},
		{"public", string(pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: []byte{1}})), `a PEM block of type "PUBLIC KEY"; want PRIVATE KEY or RSA PRIVATE KEY`},
		{"broken", "-----BEGIN RSA PRIVATE KEY-----\nAAAA\n-----END RSA PRIVATE KEY-----\n", "not a PKCS#1 RSA private key"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			src := head + "  - name: x\n    platform: douyin\n    appid: tt1\n    secret: s\n    rsa_private_key: |\n" + indent(strings.TrimRight(tt.pem, "\n"), "      ")
			if tt.want == "" {
				c := mustParse(t, src, nil)
				k, err := ParseRSAPrivateKey(c.Apps[0].RSAPrivateKey)
				if err != nil || !k.Equal(rk) {
					t.Fatalf("ParseRSAPrivateKey = %v; want the key", err)
				}
				if s := fmt.Sprint(c); strings.Contains(s, "PRIVATE KEY") {
					t.Errorf("the config prints the key: %s", s)
				}
				return
			}
			got := parseErr(t, src, nil)
			if want := "config: apps[0] (x): rsa_private_key: " + tt.want; got != want {
				t.Errorf("got  %s\nwant %s", got, want)
			}
			if strings.Contains(got, "BEGIN") || strings.Contains(got, "AAAA") {
				t.Errorf("the error repeats the key: %s", got)
			}
		})
	}
}

// TestAlipayApp: an alipay app takes app_id, its private key and Alipay's
// public key as PEM or as the bare base64 Alipay's tools print, and an
// optional AES key; certificate mode is refused with a reason; no error
// repeats a key.
func TestAlipayApp(t *testing.T) {
	rk, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	p8, _ := x509.MarshalPKCS8PrivateKey(rk)
	pub, _ := x509.MarshalPKIXPublicKey(&rk.PublicKey)
	privPEM := strings.TrimSpace(string(pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: p8})))
	pubPEM := strings.TrimSpace(string(pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: pub})))
	privB64, pubB64 := base64.StdEncoding.EncodeToString(p8), base64.StdEncoding.EncodeToString(pub)
	aes := base64.StdEncoding.EncodeToString(bytes.Repeat([]byte{5}, 16))
	app := func(priv, pubKey, extra string) string {
		return head + "  - name: x\n    platform: alipay\n    app_id: '2021000000000001'\n" +
			"    private_key: |\n" + indent(priv, "      ") + "    alipay_public_key: |\n" + indent(pubKey, "      ") + extra
	}
	for _, tt := range []struct {
		name, src, want string
	}{
		{"pem", app(privPEM, pubPEM, "    aes_key: "+aes+"\n"), ""},
		{"bare base64", app(privB64, pubB64, ""), ""},
		{"no private key", head + "  - name: x\n    platform: alipay\n    app_id: a\n    alipay_public_key: " + pubB64 + "\n", "config: apps[0] (x): private_key: required"},
		{"no public key", head + "  - name: x\n    platform: alipay\n    app_id: a\n    private_key: " + privB64 + "\n", "config: apps[0] (x): alipay_public_key: required"},
		{"appid", app(privPEM, pubPEM, "    appid: b\n"), "config: apps[0] (x): appid: not used by platform alipay: its key is app_id"},
		{"bad aes key", app(privPEM, pubPEM, "    aes_key: c2hvcnQ=\n"), "config: apps[0] (x): aes_key: must be base64 of 16 bytes (the AES key of Alipay's console)"},
		{"private key as public", app(privPEM, privPEM, ""), `config: apps[0] (x): alipay_public_key: a PEM block of type "PRIVATE KEY"; want PUBLIC KEY or RSA PUBLIC KEY`},
		{"cert mode", app(privPEM, pubPEM, "    alipay_cert: x\n"), "config: apps[0] (x): alipay_cert: Alipay's certificate mode is not supported yet: use public-key mode (private_key and alipay_public_key)"},
		{"wechat private_key", head + "  - name: x\n    platform: wechat\n    appid: a\n    secret: s\n    private_key: " + privB64 + "\n", "config: apps[0] (x): private_key: not used by platform wechat"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			if tt.want == "" {
				c := mustParse(t, tt.src, nil)
				a := c.Apps[0]
				k, err := ParseRSAPrivateKey(a.PrivateKey)
				if err != nil || !k.Equal(rk) || a.AppID != "2021000000000001" || a.ID() != a.AppID || a.Family() != platform.FamilyAlipay {
					t.Fatalf("app %s: key %v, id %q", a.Name, err, a.AppID)
				}
				pk, err := ParseRSAPublicKey(a.AlipayPublicKey)
				if err != nil || !pk.Equal(&rk.PublicKey) {
					t.Fatalf("alipay_public_key: %v", err)
				}
				if s := fmt.Sprint(c); strings.Contains(s, privB64[:40]) || strings.Contains(s, aes) {
					t.Errorf("the config prints a key: %s", s)
				}
				return
			}
			got := parseErr(t, tt.src, nil)
			if got != tt.want {
				t.Errorf("got  %s\nwant %s", got, tt.want)
			}
			if strings.Contains(got, privB64[:40]) || strings.Contains(got, "MII") {
				t.Errorf("the error repeats a key: %s", got)
			}
		})
	}
}
