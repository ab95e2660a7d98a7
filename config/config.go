package config

import (
	"crypto/rsa"
	"crypto/x509"
	"encoding/base64"
	"encoding/pem"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"net/url"
	"strconv"
	"strings"
	"time"
	"unicode"

	"github.com/mplogin/mplogin/internal/redact"
	"github.com/mplogin/mplogin/platform"
	"github.com/mplogin/mplogin/secret"
)

// Defaults of the keys that have one.
const (
	DefaultListen            = "127.0.0.1:8300"
	DefaultLogFormat         = "json"
	DefaultReadHeaderTimeout = 5 * time.Second
	DefaultReadTimeout       = 10 * time.Second
	DefaultWriteTimeout      = 15 * time.Second
	DefaultIdleTimeout       = 30 * time.Second
	DefaultShutdownTimeout   = 10 * time.Second
	DefaultAccessTTL         = 2 * time.Hour
	DefaultRefreshTTL        = 720 * time.Hour
	DefaultMaxAge            = 2160 * time.Hour
	DefaultSessionKeyGrace   = 5 * time.Minute
	DefaultPlatformTimeout   = 5 * time.Second
	// DefaultCodeReplayWindow covers a client that sends its login twice
	// (a retry after a lost answer) and nothing much longer: a code seen
	// in a log afterwards is no login.
	DefaultCodeReplayWindow = 10 * time.Second
	// DefaultMaxSessionsPerIdentity is more devices and reinstalls than one
	// person has, and bounds what a stream of logins can store.
	DefaultMaxSessionsPerIdentity = 20
	// DefaultRefreshReuseGrace covers two requests of one client that
	// refresh at once, and a retry after a lost answer.
	DefaultRefreshReuseGrace = 30 * time.Second
	// MaxRefreshReuseGrace bounds it: the longer the grace, the longer a
	// stolen, just-spent refresh token is worth something.
	MaxRefreshReuseGrace = time.Minute
	// MaxCodeReplayWindow is WeChat's code lifetime, the shortest of the
	// platforms': no repeat can come later.
	MaxCodeReplayWindow = 5 * time.Minute
	// DefaultJWTTTL is the lifetime of a JWT access token: a JWT cannot be
	// revoked at a verifier that checks it alone, so it lives minutes, and
	// the client refreshes it.
	DefaultJWTTTL = 10 * time.Minute
	// DefaultSigningKeyRotation is how long a JWT signing key signs.
	DefaultSigningKeyRotation = 720 * time.Hour
	// MinSigningKeyRotation: a key is published 24 h before it signs.
	MinSigningKeyRotation = 24 * time.Hour
	// DefaultUserdataMaxAge is what Parse gives a WeChat app without a
	// userdata_max_age key. An App built in code gets no default: there,
	// zero means the check is off.
	DefaultUserdataMaxAge = 24 * time.Hour
)

// Defaults of the connection limits.
const (
	// DefaultMaxConnections bounds what idle connections can hold (about
	// 20 KiB of memory and a file descriptor each: some 200 MiB at the cap).
	DefaultMaxConnections = 10_000
	// DefaultMaxConnectionsPerIP is far above what one app, browser or
	// business API opens, and keeps one address to a fortieth of
	// DefaultMaxConnections.
	DefaultMaxConnectionsPerIP = 256
	// DefaultIPv6Prefix groups IPv6 clients by the /56 a subscriber is
	// usually given whole, so that one subscriber is one client.
	DefaultIPv6Prefix = 56
)

// MasterKeySize is the length of a decoded master key (AES-256).
const MasterKeySize = 32

// Config is a validated configuration. Build it with Load or Parse, or start
// from Default and call Validate.
//
// Config formats itself (fmt, slog) as a summary without key material; do not
// print its MasterKey or OldMasterKeys by any other route.
type Config struct {
	Listen   string // host:port of the service
	Store    string // sqlite:PATH, sqlite://PATH, postgres://… or postgresql://…; see StoreKind
	Sessions string // optional redis:// or rediss:// URL

	MasterKey     []byte   // MasterKeySize bytes
	OldMasterKeys [][]byte // still accepted for decryption, MasterKeySize bytes each

	Log    Log
	HTTP   HTTP
	Policy Policy // yaml key sessions_policy

	PlatformTimeout time.Duration // deadline of one platform call, its one retry included

	Limits Limits // yaml key rate_limits

	// AccessTokens is the access token format and the JWT settings (yaml
	// key access_tokens); each app may override some of them.
	AccessTokens AccessTokens
	// Issuer is the service's public base URL, the iss of its JWTs and the
	// issuer of its metadata: access_tokens.issuer, or "http://" + Listen
	// when that is not given.
	Issuer string
	// SigningKeyRotation is how long a JWT signing key signs before the
	// next one does (yaml key signing_key_rotation).
	SigningKeyRotation time.Duration

	// Clients are the business backends and gateways that may introspect
	// and revoke tokens (yaml key clients).
	Clients []Client

	// Admin is the operators' API on a listener of its own (yaml key
	// admin); nil when not configured, and then it is off.
	Admin *Admin

	// LinkByPhone makes one user of the users who prove the same phone
	// number (yaml key link_by_phone; docs/operations.md).
	LinkByPhone bool

	// Metrics moves /metrics to a listener of its own (yaml key metrics);
	// nil serves it on Listen.
	Metrics *Metrics

	Apps []App
}

// Metrics configures where /metrics is served.
type Metrics struct {
	Listen string // host:port of the metrics listener, apart from Listen and Admin.Listen
}

// Admin configures the operators' API.
type Admin struct {
	Listen string // host:port of the admin listener, apart from Listen
	Tokens []AdminToken
}

// AdminToken is one operator's bearer token; Name is what the audit log
// says acted.
type AdminToken struct {
	Name  string
	Token secret.String
}

// MinAdminTokenLen is the shortest admin token accepted: an admin token
// opens every user's account, so it must be out of reach of guessing.
const MinAdminTokenLen = 32

// Client is a business client: a backend or gateway that authenticates
// with an id and a secret to introspect and revoke tokens.
type Client struct {
	ID     string
	Secret secret.String
}

// MinClientSecretLen is the shortest client secret accepted: a secret
// that a caller could guess by trying is no secret.
const MinClientSecretLen = 16

// IssuerURL is Issuer, or DefaultIssuer(Listen) when it is empty.
func (c *Config) IssuerURL() string {
	if c.Issuer == "" {
		return DefaultIssuer(c.Listen)
	}
	return c.Issuer
}

// DefaultIssuer is the issuer of a configuration that names none: the
// service's own address, http://<listen>.
func DefaultIssuer(listen string) string { return "http://" + listen }

// Access token formats.
const (
	FormatOpaque = "opaque" // mpa_…, checked against the store
	FormatJWT    = "jwt"    // RFC 9068 JWT, signed with the service's keys
)

// JWT signing algorithms.
const (
	AlgES256 = "ES256"
	AlgRS256 = "RS256"
)

// AccessTokens is the top-level access_tokens block.
type AccessTokens struct {
	Format string // FormatOpaque (default) or FormatJWT
	// TTL is the lifetime of a JWT access token; 0 = DefaultJWTTTL. An
	// opaque token lives sessions_policy.access_ttl.
	TTL time.Duration
	// Issuer as given; Config.Issuer is the one in effect.
	Issuer    string
	Audience  []string // the aud of JWTs: the APIs they are for
	Algorithm string   // AlgES256 (default) or AlgRS256
}

// AppAccessTokens is an app's access_tokens block: what it sets replaces
// the top-level value for that app.
type AppAccessTokens struct {
	Format   string
	TTL      time.Duration
	Audience []string
}

// TokenFormat returns the access token format of app a.
func (c *Config) TokenFormat(a App) string {
	switch {
	case a.AccessTokens.Format != "":
		return a.AccessTokens.Format
	case c.AccessTokens.Format != "":
		return c.AccessTokens.Format
	}
	return FormatOpaque
}

// JWTTTL returns the lifetime of app a's JWT access tokens.
func (c *Config) JWTTTL(a App) time.Duration {
	switch {
	case a.AccessTokens.TTL > 0:
		return a.AccessTokens.TTL
	case c.AccessTokens.TTL > 0:
		return c.AccessTokens.TTL
	}
	return DefaultJWTTTL
}

// Audience returns the aud of app a's JWT access tokens.
func (c *Config) Audience(a App) []string {
	if len(a.AccessTokens.Audience) > 0 {
		return a.AccessTokens.Audience
	}
	return c.AccessTokens.Audience
}

// UsesJWT reports whether some app issues JWT access tokens: only then are
// signing keys made and rotated.
func (c *Config) UsesJWT() bool {
	for _, a := range c.Apps {
		if c.TokenFormat(a) == FormatJWT {
			return true
		}
	}
	return false
}

// MaxJWTTTL is the longest JWT lifetime of any app (of the top-level
// setting when no app issues JWTs): how long a retired signing key must
// stay published.
func (c *Config) MaxJWTTTL() time.Duration {
	m := c.JWTTTL(App{})
	for _, a := range c.Apps {
		if c.TokenFormat(a) == FormatJWT {
			m = max(m, c.JWTTTL(a))
		}
	}
	return m
}

// SigningAlgorithm returns the algorithm of new signing keys.
func (c *Config) SigningAlgorithm() string {
	if c.AccessTokens.Algorithm == "" {
		return AlgES256
	}
	return c.AccessTokens.Algorithm
}

// Limits are the request rate limits (yaml key rate_limits): token buckets
// per client IP and per app on the routes that cost a platform call, a
// store write or a decryption. With sessions in Redis they are shared by
// every instance.
type Limits struct {
	Enabled bool // default true
	Login   RouteLimit
	Refresh RouteLimit // per IP only: a refresh token names no app before it is spent
	Verify  RouteLimit // GET /v1/session?verify=platform
	Decrypt RouteLimit
	Phone   RouteLimit
}

// RouteLimit is one route's limits.
type RouteLimit struct {
	IP      Limit // per client IP (an IPv6 client by its HTTP.IPv6Prefix)
	Session Limit // per session: verify, decrypt and phone only
	App     Limit // per configured app
}

// Limit is a token bucket: Burst requests at once, refilled at Rate per
// second. Rate 0 means no limit.
type Limit struct {
	Rate  float64
	Burst int
}

// DefaultLimits are generous for real users and stop a flood from one
// address or one session; raise the per-app ones for apps with more
// traffic. Session checks against the platform have no per-address limit:
// business APIs make them for all their users from a few addresses.
var DefaultLimits = Limits{
	Enabled: true,
	Login:   RouteLimit{IP: Limit{10, 30}, App: Limit{2000, 4000}},
	Refresh: RouteLimit{IP: Limit{10, 30}},
	Verify:  RouteLimit{Session: Limit{0.1, 5}, App: Limit{100, 200}},
	Decrypt: RouteLimit{IP: Limit{10, 30}, Session: Limit{1, 10}, App: Limit{1000, 2000}},
	Phone:   RouteLimit{IP: Limit{2, 10}, Session: Limit{0.1, 5}, App: Limit{200, 400}},
}

// Log configures the service's logger.
type Log struct {
	Level  slog.Level
	Format string // "json" or "text"
}

// HTTP configures the service's HTTP server.
type HTTP struct {
	ReadHeaderTimeout time.Duration
	ReadTimeout       time.Duration
	WriteTimeout      time.Duration
	IdleTimeout       time.Duration
	ShutdownTimeout   time.Duration
	// TrustedProxies are the peers whose X-Forwarded-For is honoured. A
	// single address is held as a full-length prefix (/32 or /128).
	TrustedProxies []netip.Prefix
	// MaxConnections caps the connections open at once; 0 = no cap. At
	// the cap a new connection closes the one idle longest to make room
	// (so that a health check gets through a flood of idle connections),
	// and is refused only when none is idle.
	MaxConnections int
	// MaxConnectionsPerIP caps the connections of one client address (the
	// TCP peer, an IPv6 peer by its IPv6Prefix); 0 = no cap. Trusted
	// proxies are exempt: every client behind them shares their address.
	MaxConnectionsPerIP int
	// IPv6Prefix is how many leading bits of an IPv6 address name one
	// client, for the per-address rate limits and connection cap.
	IPv6Prefix int
}

// Policy is the session policy (yaml key sessions_policy).
type Policy struct {
	AccessTTL       time.Duration // lifetime of an access token
	RefreshTTL      time.Duration // idle expiry of a refresh token; slides with each refresh
	MaxAge          time.Duration // absolute session lifetime; 0 = none
	SessionKeyGrace time.Duration // how long the previous session key is still tried; 0 = not at all
	// CodeReplayWindow is how long after its exchange a repeat of a login
	// code gets a session; 0 = never.
	CodeReplayWindow time.Duration
	// MaxSessionsPerIdentity caps the live sessions of one identity; a
	// login past it ends the oldest. 0 = no cap.
	MaxSessionsPerIdentity int
	// RefreshReuseGrace is how long the refresh token a refresh just spent
	// still gets that refresh's tokens instead of revoking the session;
	// 0 = never.
	RefreshReuseGrace time.Duration
}

// App is one mini program.
type App struct {
	Name   string          // what clients send as "app"
	Flavor platform.Flavor // the app's "platform" key

	// AppID is the app's id: yaml appid (wechat, wechat-component,
	// douyin, qq) or app_id (kuaishou, alipay).
	AppID  string
	Secret secret.String // wechat, douyin, qq (required), wechat-component (optional)

	AppKey    string        // baidu, baidu-legacy, baidu-tp
	AppSecret secret.String // baidu, baidu-legacy, kuaishou (required), baidu-tp (optional)

	// PrivateKey is an alipay app's RSA private key (PEM, PKCS#1 or
	// PKCS#8, or the bare base64 Alipay's tools print): it signs the
	// app's requests to Alipay's gateway.
	PrivateKey secret.String
	// AlipayPublicKey is Alipay's public key for the app (PEM, or the bare
	// base64 Alipay's console shows): it verifies every answer.
	AlipayPublicKey string
	// AESKey is an alipay app's content-encryption key (base64 of 16
	// bytes, from Alipay's console): phone numbers come encrypted with it.
	// Optional: without it, phone numbers are unavailable.
	AESKey secret.String

	// RSAPrivateKey is a douyin app's own RSA private key (PEM, PKCS#1 or
	// PKCS#8), whose public key is set in Douyin's console: Douyin encrypts
	// the answers of phone codes with it. Optional: without it, phone codes
	// are unavailable.
	RSAPrivateKey secret.String

	ComponentAppID string       // wechat-component
	ComponentToken *TokenSource // wechat-component

	AuthorizerToken *TokenSource // baidu-tp

	// Endpoint is the platform's base URL (http or https, no query), empty
	// for the real platform. Parse removes a trailing slash.
	Endpoint string

	// UserdataMaxAge is the oldest decrypted payload accepted, judged by
	// its watermark timestamp; 0 turns the check off. WeChat only (Baidu
	// payloads carry no timestamp). Parse defaults it to
	// DefaultUserdataMaxAge; in code, set it yourself.
	UserdataMaxAge time.Duration

	UnionID bool // Baidu only: fetch the unionid at login

	// ExposeUnionID lets introspection answers and the gateway check give
	// the unionid of the app's users to business clients and gateways.
	// Off by default: a unionid links one person across apps.
	ExposeUnionID bool

	// TokenAPI is how a WeChat app with a secret gets its own access
	// token: TokenAPIStable (the default when empty) or TokenAPIClassic.
	TokenAPI string

	// LoginAPI is how a baidu app exchanges login codes: LoginAPISpapi
	// (the default when empty) or LoginAPIAccessToken.
	LoginAPI string

	// AccessTokens overrides the top-level access_tokens for this app.
	AccessTokens AppAccessTokens
}

// Values of an app's token_api.
const (
	// TokenAPIStable is cgi-bin/stable_token in normal mode: every caller
	// gets the same token while it is valid, so instances cannot
	// invalidate each other's.
	TokenAPIStable = "stable"
	// TokenAPIClassic is cgi-bin/token: each fetch retires the previous
	// token 5 minutes later. Only for an app whose every token comes
	// through this one mplogin deployment.
	TokenAPIClassic = "classic"
)

// Values of a baidu app's login_api.
const (
	// LoginAPISpapi is spapi's oauth/jscode2sessionkey, with app_key and
	// app_secret.
	LoginAPISpapi = "spapi"
	// LoginAPIAccessToken is rest/2.0/smartapp/getsessionkey, with the
	// app's own access token (fetched with app_key and app_secret) instead
	// of the secret.
	LoginAPIAccessToken = "access_token"
)

// ID returns the platform's id of the app: AppID for WeChat apps, AppKey for
// Baidu apps.
func (a App) ID() string {
	if a.Family() == platform.FamilyBaidu {
		return a.AppKey
	}
	return a.AppID
}

// Family returns the family of the app's flavor, or "" for an unknown one.
func (a App) Family() platform.Family { return a.Flavor.Family() }

// TokenSource says where a platform access token comes from: exactly one of
// a static Value or the URL of the owner's token service (GET, answering
// {"access_token":"…","expires_in":N}).
type TokenSource struct {
	Value secret.String
	URL   string
}

// Default returns a Config with every default filled in, no store, no master
// key and no apps.
func Default() Config {
	return Config{
		Listen: DefaultListen,
		Log:    Log{Level: slog.LevelInfo, Format: DefaultLogFormat},
		HTTP: HTTP{
			ReadHeaderTimeout:   DefaultReadHeaderTimeout,
			ReadTimeout:         DefaultReadTimeout,
			WriteTimeout:        DefaultWriteTimeout,
			IdleTimeout:         DefaultIdleTimeout,
			ShutdownTimeout:     DefaultShutdownTimeout,
			MaxConnections:      DefaultMaxConnections,
			MaxConnectionsPerIP: DefaultMaxConnectionsPerIP,
			IPv6Prefix:          DefaultIPv6Prefix,
		},
		Policy: Policy{
			AccessTTL:              DefaultAccessTTL,
			RefreshTTL:             DefaultRefreshTTL,
			MaxAge:                 DefaultMaxAge,
			SessionKeyGrace:        DefaultSessionKeyGrace,
			CodeReplayWindow:       DefaultCodeReplayWindow,
			MaxSessionsPerIdentity: DefaultMaxSessionsPerIdentity,
			RefreshReuseGrace:      DefaultRefreshReuseGrace,
		},
		PlatformTimeout:    DefaultPlatformTimeout,
		Limits:             DefaultLimits,
		SigningKeyRotation: DefaultSigningKeyRotation,
	}
}

// App returns the app called name.
func (c *Config) App(name string) (App, bool) {
	for _, a := range c.Apps {
		if a.Name == name {
			return a, true
		}
	}
	return App{}, false
}

// Error is a configuration error. Its text is one line: "config: ", the line
// in the file when the key path alone does not place it, the key path, and
// the problem. It never contains a configured value other than an app name.
type Error struct {
	Line int    // line in the file, 0 if not given
	Path string // e.g. "apps[1] (shop-baidu): app_secret"; "" for the file as a whole
	Msg  string
}

func (e *Error) Error() string {
	var b strings.Builder
	b.WriteString("config: ")
	if e.Line > 0 {
		b.WriteString("line ")
		b.WriteString(strconv.Itoa(e.Line))
		b.WriteString(": ")
	}
	if e.Path != "" {
		b.WriteString(e.Path)
		b.WriteString(": ")
	}
	b.WriteString(e.Msg)
	return strings.NewReplacer("\r", " ", "\n", " ").Replace(b.String())
}

func errorf(path, format string, args ...any) *Error {
	return &Error{Path: path, Msg: fmt.Sprintf(format, args...)}
}

// appPath names app i in error paths: `apps[1] (shop-baidu)`, or `apps[1]`
// when the name is not a valid one (so that nothing else is echoed).
func appPath(i int, name string) string {
	if validName(name) {
		return fmt.Sprintf("apps[%d] (%s)", i, name)
	}
	return fmt.Sprintf("apps[%d]", i)
}

// appKey names a key of an app.
func appKey(ap, key string) string { return ap + ": " + key }

// Validate checks the configuration and returns the first problem found, as
// an *Error.
func (c *Config) Validate() error {
	if err := c.validateTop(); err != nil {
		return err
	}
	if err := c.Limits.validate(); err != nil {
		return err
	}
	if err := c.validateClients(); err != nil {
		return err
	}
	if err := c.validateAdmin(); err != nil {
		return err
	}
	if err := c.validateMetrics(); err != nil {
		return err
	}
	if err := c.validateAccessTokens(); err != nil {
		return err
	}
	if len(c.Apps) == 0 {
		return errorf("apps", "at least one app is required")
	}
	seen := make(map[string]bool, len(c.Apps))
	for i := range c.Apps {
		a := &c.Apps[i]
		if err := validateAppName(fmt.Sprintf("apps[%d]", i), a.Name); err != nil {
			return err
		}
		if seen[a.Name] {
			return errorf(fmt.Sprintf("apps[%d]", i), "name: duplicate %q", a.Name)
		}
		seen[a.Name] = true
		if err := a.validate(appPath(i, a.Name)); err != nil {
			return err
		}
		if err := validateTokenSettings(appKey(appPath(i, a.Name), "access_tokens"), a.AccessTokens.Format,
			a.AccessTokens.TTL, a.AccessTokens.Audience); err != nil {
			return err
		}
	}
	return nil
}

// validateAccessTokens checks access_tokens and signing_key_rotation, and
// sets Issuer.
func (c *Config) validateAccessTokens() error {
	t := c.AccessTokens
	if err := validateTokenSettings("access_tokens", t.Format, t.TTL, t.Audience); err != nil {
		return err
	}
	switch t.Algorithm {
	case "", AlgES256, AlgRS256:
	default:
		return errorf("access_tokens.algorithm", "must be %s or %s", AlgES256, AlgRS256)
	}
	switch {
	case t.Issuer != "":
		if msg := checkIssuer(t.Issuer); msg != "" {
			return errorf("access_tokens.issuer", "%s", msg)
		}
		c.Issuer = t.Issuer
	case c.Issuer == "":
		c.Issuer = DefaultIssuer(c.Listen)
	}
	if c.SigningKeyRotation < MinSigningKeyRotation {
		return errorf("signing_key_rotation", "must be at least %s (a key is published that long before it signs)", MinSigningKeyRotation)
	}
	for i, a := range c.Apps {
		if c.TokenFormat(a) == FormatJWT && len(c.Audience(a)) == 0 {
			// A JWT is for some API (RFC 9068 requires aud): without one,
			// any API of the issuer would accept any other's tokens.
			return errorf(appKey(appPath(i, a.Name), "access_tokens.audience"), "required with format jwt (here or at the top level)")
		}
	}
	return nil
}

// validateTokenSettings checks the keys an app's access_tokens shares with
// the top-level one.
func validateTokenSettings(path, format string, ttl time.Duration, audience []string) error {
	switch format {
	case "", FormatOpaque, FormatJWT:
	default:
		return errorf(path+".format", "must be %s or %s", FormatOpaque, FormatJWT)
	}
	if ttl < 0 {
		return errorf(path+".ttl", "must be more than 0")
	}
	for i, a := range audience {
		if !validID(a) || len(a) > 256 {
			return errorf(fmt.Sprintf("%s.audience[%d]", path, i), "must be 1 to 256 printable characters without spaces")
		}
	}
	return nil
}

// checkIssuer returns what is wrong with u as an issuer, or "": https (http
// only on a loopback host), no query or fragment, no trailing slash, as
// RFC 8414 asks of an issuer identifier. The answer never repeats u.
func checkIssuer(u string) string {
	if msg := checkURL(u, false); msg != "" {
		return msg
	}
	p, _ := url.Parse(u)
	switch host := p.Hostname(); {
	case p.Scheme == "http" && host != "localhost" && host != "127.0.0.1" && host != "::1":
		return "must be https (http only for 127.0.0.1 or localhost)"
	case strings.HasSuffix(u, "/"):
		return "must not end with a slash"
	}
	return ""
}

func (c *Config) validateTop() error {
	if err := validateListen(c.Listen); err != nil {
		return err
	}
	if _, _, err := StoreKind(c.Store); err != nil {
		return err
	}
	if c.Sessions != "" {
		u, err := url.Parse(c.Sessions)
		if err != nil || (u.Scheme != "redis" && u.Scheme != "rediss") || u.Host == "" || u.Opaque != "" {
			return errorf("sessions", "must be a redis:// or rediss:// URL, such as redis://127.0.0.1:6379/0")
		}
	}
	switch {
	case c.MasterKey == nil:
		return errorf("master_key", "required")
	case len(c.MasterKey) != MasterKeySize:
		return errorf("master_key", "must be %d bytes (got %d)", MasterKeySize, len(c.MasterKey))
	}
	for i, k := range c.OldMasterKeys {
		if len(k) != MasterKeySize {
			return errorf(fmt.Sprintf("old_master_keys[%d]", i), "must be %d bytes (got %d)", MasterKeySize, len(k))
		}
	}
	if c.Log.Format != "json" && c.Log.Format != "text" {
		return errorf("log.format", "must be json or text")
	}
	for _, d := range []struct {
		path string
		v    time.Duration
	}{
		{"http.read_header_timeout", c.HTTP.ReadHeaderTimeout},
		{"http.read_timeout", c.HTTP.ReadTimeout},
		{"http.write_timeout", c.HTTP.WriteTimeout},
		{"http.idle_timeout", c.HTTP.IdleTimeout},
		{"http.shutdown_timeout", c.HTTP.ShutdownTimeout},
		{"sessions_policy.access_ttl", c.Policy.AccessTTL},
		{"sessions_policy.refresh_ttl", c.Policy.RefreshTTL},
		{"platform_timeout", c.PlatformTimeout},
	} {
		if d.v <= 0 {
			return errorf(d.path, "must be more than 0")
		}
	}
	if c.Policy.MaxAge < 0 {
		return errorf("sessions_policy.max_age", "must not be negative (0 = no limit)")
	}
	if c.Policy.SessionKeyGrace < 0 {
		return errorf("sessions_policy.session_key_grace", "must not be negative")
	}
	if w := c.Policy.CodeReplayWindow; w < 0 || w > MaxCodeReplayWindow {
		return errorf("sessions_policy.code_replay_window", "must be 0 to %s (0 = a used code is never honoured again)", MaxCodeReplayWindow)
	}
	if c.Policy.MaxSessionsPerIdentity < 0 {
		return errorf("sessions_policy.max_sessions_per_identity", "must not be negative (0 = no cap)")
	}
	if g := c.Policy.RefreshReuseGrace; g < 0 || g > MaxRefreshReuseGrace {
		return errorf("sessions_policy.refresh_reuse_grace", "must be 0 to %s (0 = a spent refresh token always revokes the session)", MaxRefreshReuseGrace)
	}
	// A login waits for the platform; a write timeout shorter than that
	// would cut every slow login off without an answer.
	if c.HTTP.WriteTimeout <= c.PlatformTimeout {
		return errorf("http.write_timeout", "must be longer than platform_timeout (%s <= %s)", c.HTTP.WriteTimeout, c.PlatformTimeout)
	}
	for i, p := range c.HTTP.TrustedProxies {
		if !p.IsValid() {
			return errorf(fmt.Sprintf("http.trusted_proxies[%d]", i), "must be an IP address or a CIDR")
		}
	}
	if c.HTTP.MaxConnections < 0 {
		return errorf("http.max_connections", "must not be negative (0 = no cap)")
	}
	if c.HTTP.MaxConnectionsPerIP < 0 {
		return errorf("http.max_connections_per_ip", "must not be negative (0 = no cap)")
	}
	// Below /32 a "client" would be a whole provider's customers.
	if c.HTTP.IPv6Prefix < 32 || c.HTTP.IPv6Prefix > 128 {
		return errorf("http.ipv6_prefix", "must be from 32 to 128 (the leading bits of an IPv6 address that name one client)")
	}
	return nil
}

// clientPath names client i in error paths, as appPath names apps.
func clientPath(i int, id string) string {
	if validName(id) {
		return fmt.Sprintf("clients[%d] (%s)", i, id)
	}
	return fmt.Sprintf("clients[%d]", i)
}

func (c *Config) validateClients() error {
	seen := make(map[string]bool, len(c.Clients))
	for i, cl := range c.Clients {
		cp := clientPath(i, cl.ID)
		switch {
		case cl.ID == "":
			return errorf(cp, "id: required")
		case !validName(cl.ID):
			return errorf(cp, "id: must be 1 to 64 of a-z, 0-9, '.', '_' and '-'")
		case seen[cl.ID]:
			return errorf(cp, "id: duplicate %q", cl.ID)
		case cl.Secret.IsZero():
			return errorf(cp+": secret", "required")
		}
		seen[cl.ID] = true
		if err := validateSecret(cp+": secret", cl.Secret); err != nil {
			return err
		}
		if n := len(cl.Secret.Reveal()); n < MinClientSecretLen {
			return errorf(cp+": secret", "must be at least %d characters", MinClientSecretLen)
		}
	}
	return nil
}

// adminTokenPath names admin token i in error paths, as appPath names
// apps.
func adminTokenPath(i int, name string) string {
	if validName(name) {
		return fmt.Sprintf("admin.tokens[%d] (%s)", i, name)
	}
	return fmt.Sprintf("admin.tokens[%d]", i)
}

func (c *Config) validateAdmin() error {
	a := c.Admin
	if a == nil {
		return nil
	}
	if err := validateListenAt("admin.listen", a.Listen); err != nil {
		return err
	}
	if a.Listen == c.Listen {
		return errorf("admin.listen", "must differ from listen: the admin API has a listener of its own")
	}
	if len(a.Tokens) == 0 {
		return errorf("admin.tokens", "at least one token is required")
	}
	seen := make(map[string]bool, len(a.Tokens))
	for i, t := range a.Tokens {
		tp := adminTokenPath(i, t.Name)
		switch {
		case t.Name == "":
			return errorf(tp, "name: required")
		case !validName(t.Name):
			return errorf(tp, "name: must be 1 to 64 of a-z, 0-9, '.', '_' and '-'")
		case seen[t.Name]:
			return errorf(tp, "name: duplicate %q", t.Name)
		case t.Token.IsZero():
			return errorf(tp+": token", "required")
		}
		seen[t.Name] = true
		if err := validateSecret(tp+": token", t.Token); err != nil {
			return err
		}
		if n := len(t.Token.Reveal()); n < MinAdminTokenLen {
			return errorf(tp+": token", "must be at least %d characters", MinAdminTokenLen)
		}
	}
	return nil
}

func (c *Config) validateMetrics() error {
	m := c.Metrics
	if m == nil {
		return nil
	}
	if err := validateListenAt("metrics.listen", m.Listen); err != nil {
		return err
	}
	// Port 0 picks a free port each time: two of them never clash.
	if _, port, _ := net.SplitHostPort(m.Listen); port == "0" {
		return nil
	}
	if m.Listen == c.Listen {
		return errorf("metrics.listen", "must differ from listen: /metrics moves to a listener of its own")
	}
	if c.Admin != nil && m.Listen == c.Admin.Listen {
		return errorf("metrics.listen", "must differ from admin.listen")
	}
	return nil
}

func validateListen(s string) error { return validateListenAt("listen", s) }

// validateListenAt checks the host:port s of the key path.
func validateListenAt(path, s string) error {
	if s == "" {
		return errorf(path, "required")
	}
	_, port, err := net.SplitHostPort(s)
	if err != nil {
		return errorf(path, "must be host:port, such as 127.0.0.1:8300")
	}
	if _, err := strconv.ParseUint(port, 10, 16); err != nil {
		return errorf(path, "port must be a number from 0 to 65535")
	}
	return nil
}

// StoreKind splits a store DSN: "sqlite:PATH" and "sqlite://PATH" give
// ("sqlite", PATH); "postgres://…" and "postgresql://…" give ("postgres",
// dsn). The error is an *Error for the key store and never repeats the DSN,
// which may hold a password.
func StoreKind(dsn string) (kind, target string, err error) {
	if dsn == "" {
		return "", "", errorf("store", "required")
	}
	scheme, rest, _ := strings.Cut(dsn, ":")
	switch strings.ToLower(scheme) {
	case "sqlite":
		path := strings.TrimPrefix(rest, "//")
		if path == "" {
			return "", "", errorf("store", "sqlite needs a file path, such as sqlite:./mplogin.db")
		}
		return "sqlite", path, nil
	case "postgres", "postgresql":
		u, err := url.Parse(dsn)
		if err != nil || !strings.HasPrefix(rest, "//") || u.Opaque != "" {
			return "", "", errorf("store", "must be a PostgreSQL URL, such as postgres://user@host:5432/db")
		}
		return "postgres", dsn, nil
	}
	return "", "", errorf("store", "unknown kind: use sqlite:PATH or postgres://user@host:5432/db")
}

// platformKeys returns the app keys that flavor f requires and those that do
// not belong to it; keys in neither list are optional. ok is false for an
// unknown flavor.
func platformKeys(f platform.Flavor) (required, forbidden []string, ok bool) {
	// Keys of the newer hosts, which the older flavors do not take.
	newer := []string{"rsa_private_key", "app_id", "private_key", "alipay_public_key", "aes_key"}
	required, forbidden, ok = olderPlatformKeys(f)
	if ok {
		return required, append(forbidden, newer...), true
	}
	alipay := []string{"private_key", "alipay_public_key", "aes_key"}
	switch f {
	case platform.FlavorDouyin:
		return []string{"appid", "secret"}, append([]string{"app_key", "app_secret", "component_appid", "component_token",
			"authorizer_token", "unionid", "token_api", "login_api", "app_id"}, alipay...), true
	case platform.FlavorQQ:
		return []string{"appid", "secret"}, append([]string{"app_key", "app_secret", "component_appid", "component_token",
			"authorizer_token", "unionid", "token_api", "login_api", "rsa_private_key", "app_id"}, alipay...), true
	case platform.FlavorKuaishou:
		return []string{"app_id", "app_secret"}, append([]string{"appid", "secret", "app_key", "component_appid", "component_token",
			"authorizer_token", "unionid", "token_api", "login_api", "rsa_private_key", "userdata_max_age"}, alipay...), true
	case platform.FlavorAlipay:
		return []string{"app_id", "private_key", "alipay_public_key"}, []string{"appid", "secret", "app_key", "app_secret",
			"component_appid", "component_token", "authorizer_token", "unionid", "token_api", "login_api", "rsa_private_key",
			"userdata_max_age"}, true
	}
	return nil, nil, false
}

// olderPlatformKeys is platformKeys for WeChat's and Baidu's flavors.
func olderPlatformKeys(f platform.Flavor) (required, forbidden []string, ok bool) {
	switch f {
	case platform.FlavorWeChat:
		return []string{"appid", "secret"},
			[]string{"app_key", "app_secret", "component_appid", "component_token", "authorizer_token", "unionid", "login_api"}, true
	case platform.FlavorWeChatComponent:
		return []string{"appid", "component_appid", "component_token"},
			[]string{"app_key", "app_secret", "unionid", "login_api"}, true
	case platform.FlavorBaidu:
		return []string{"app_key", "app_secret"},
			[]string{"appid", "secret", "component_appid", "component_token", "authorizer_token", "userdata_max_age", "token_api"}, true
	case platform.FlavorBaiduLegacy:
		// The legacy endpoint is itself a login API: login_api has no say.
		return []string{"app_key", "app_secret"},
			[]string{"appid", "secret", "component_appid", "component_token", "authorizer_token", "userdata_max_age", "token_api",
				"login_api"}, true
	case platform.FlavorBaiduTP:
		return []string{"app_key", "authorizer_token"},
			[]string{"appid", "secret", "component_appid", "component_token", "userdata_max_age", "token_api", "login_api"}, true
	}
	return nil, nil, false
}

// set reports whether the app gives key a value.
func (a *App) set(key string) bool {
	switch key {
	case "appid":
		return a.AppID != "" && !usesAppIDKey(a.Flavor)
	case "app_id":
		return a.AppID != "" && usesAppIDKey(a.Flavor)
	case "private_key":
		return !a.PrivateKey.IsZero()
	case "alipay_public_key":
		return a.AlipayPublicKey != ""
	case "aes_key":
		return !a.AESKey.IsZero()
	case "rsa_private_key":
		return !a.RSAPrivateKey.IsZero()
	case "secret":
		return !a.Secret.IsZero()
	case "app_key":
		return a.AppKey != ""
	case "app_secret":
		return !a.AppSecret.IsZero()
	case "component_appid":
		return a.ComponentAppID != ""
	case "component_token":
		return a.ComponentToken != nil
	case "authorizer_token":
		return a.AuthorizerToken != nil
	case "userdata_max_age":
		return a.UserdataMaxAge != 0
	case "unionid":
		return a.UnionID
	case "token_api":
		return a.TokenAPI != ""
	case "login_api":
		return a.LoginAPI != ""
	}
	panic("config: unknown app key " + key)
}

func validateAppName(ap, name string) error {
	if name == "" {
		return errorf(ap, "name: required")
	}
	if !validName(name) {
		return errorf(ap, "name: must be 1 to 64 of a-z, 0-9, '.', '_' and '-'")
	}
	return nil
}

// validate checks everything but the name.
func (a *App) validate(ap string) error {
	if a.Flavor == "" {
		return errorf(appKey(ap, "platform"), "required")
	}
	required, forbidden, ok := platformKeys(a.Flavor)
	if !ok {
		return errorf(appKey(ap, "platform"), "must be one of wechat, wechat-component, baidu, baidu-legacy, baidu-tp, douyin, qq, kuaishou, alipay")
	}
	for _, k := range forbidden {
		if a.set(k) {
			return errorf(appKey(ap, k), "not used by platform %s", a.Flavor)
		}
	}
	for _, k := range required {
		if !a.set(k) {
			return errorf(appKey(ap, k), "required")
		}
	}
	idKey := "appid"
	if usesAppIDKey(a.Flavor) {
		idKey = "app_id"
	}
	for _, id := range []struct{ key, v string }{
		{idKey, a.AppID}, {"app_key", a.AppKey}, {"component_appid", a.ComponentAppID},
	} {
		if id.v != "" && !validID(id.v) {
			return errorf(appKey(ap, id.key), "must be 1 to 128 printable characters without spaces")
		}
	}
	for _, s := range []struct {
		key string
		v   secret.String
	}{{"secret", a.Secret}, {"app_secret", a.AppSecret}} {
		if err := validateSecret(appKey(ap, s.key), s.v); err != nil {
			return err
		}
	}
	if !a.RSAPrivateKey.IsZero() {
		if _, err := ParseRSAPrivateKey(a.RSAPrivateKey); err != nil {
			return errorf(appKey(ap, "rsa_private_key"), "%v", err)
		}
	}
	if !a.PrivateKey.IsZero() {
		if _, err := ParseRSAPrivateKey(a.PrivateKey); err != nil {
			return errorf(appKey(ap, "private_key"), "%v", err)
		}
	}
	if a.AlipayPublicKey != "" {
		if _, err := ParseRSAPublicKey(a.AlipayPublicKey); err != nil {
			return errorf(appKey(ap, "alipay_public_key"), "%v", err)
		}
	}
	if !a.AESKey.IsZero() {
		if b, err := base64.StdEncoding.DecodeString(a.AESKey.Reveal()); err != nil || len(b) != 16 {
			return errorf(appKey(ap, "aes_key"), "must be base64 of 16 bytes (the AES key of Alipay's console)")
		}
	}
	if err := a.ComponentToken.validate(appKey(ap, "component_token")); err != nil {
		return err
	}
	if err := a.AuthorizerToken.validate(appKey(ap, "authorizer_token")); err != nil {
		return err
	}
	if a.Endpoint != "" {
		if msg := checkURL(a.Endpoint, false); msg != "" {
			return errorf(appKey(ap, "endpoint"), "%s", msg)
		}
	}
	if a.UserdataMaxAge < 0 {
		return errorf(appKey(ap, "userdata_max_age"), "must not be negative (0 = off)")
	}
	switch a.TokenAPI {
	case "", TokenAPIStable, TokenAPIClassic:
	default:
		return errorf(appKey(ap, "token_api"), "must be %q or %q", TokenAPIStable, TokenAPIClassic)
	}
	if a.TokenAPI != "" && a.Secret.IsZero() {
		return errorf(appKey(ap, "token_api"), "needs the app's secret")
	}
	switch a.LoginAPI {
	case "", LoginAPISpapi, LoginAPIAccessToken:
	default:
		return errorf(appKey(ap, "login_api"), "must be %q or %q", LoginAPISpapi, LoginAPIAccessToken)
	}
	return nil
}

func (t *TokenSource) validate(path string) error {
	if t == nil {
		return nil
	}
	switch {
	case t.Value.IsZero() && t.URL == "":
		return errorf(path, "needs one of value or url")
	case !t.Value.IsZero() && t.URL != "":
		return errorf(path, "give value or url, not both")
	case t.URL != "":
		if msg := checkURL(t.URL, true); msg != "" {
			return errorf(path+".url", "%s", msg)
		}
		return nil
	}
	return validateSecret(path+".value", t.Value)
}

// validateSecret catches the usual copy-and-paste damage without saying
// anything about the value.
func validateSecret(path string, s secret.String) error {
	v := s.Reveal()
	if v != strings.TrimSpace(v) {
		return errorf(path, "has leading or trailing white space")
	}
	for _, r := range v {
		if unicode.IsControl(r) {
			return errorf(path, "contains a control character")
		}
	}
	return nil
}

// checkURL returns what is wrong with u as an absolute http(s) URL, or "".
// The answer never repeats u.
func checkURL(u string, allowQuery bool) string {
	p, err := url.Parse(u)
	switch {
	case err != nil, p.Scheme != "http" && p.Scheme != "https", p.Host == "", p.Opaque != "":
		return "must be an absolute http or https URL"
	case p.User != nil:
		return "must not contain credentials"
	case p.Fragment != "" || strings.Contains(u, "#"):
		return "must not have a fragment"
	case !allowQuery && (p.RawQuery != "" || p.ForceQuery):
		return "must not have a query"
	}
	return ""
}

func validName(s string) bool {
	if len(s) == 0 || len(s) > 64 {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !('a' <= c && c <= 'z' || '0' <= c && c <= '9' || c == '.' || c == '_' || c == '-') {
			return false
		}
	}
	return true
}

func validID(s string) bool {
	if len(s) == 0 || len(s) > 128 {
		return false
	}
	for i := 0; i < len(s); i++ {
		if s[i] <= ' ' || s[i] >= 0x7f {
			return false
		}
	}
	return true
}

// decodeKey decodes a base64 master key.
func decodeKey(path, s string) ([]byte, error) {
	b, err := base64.StdEncoding.DecodeString(s)
	if err != nil {
		return nil, errorf(path, "must be base64 of %d bytes (not valid base64)", MasterKeySize)
	}
	if len(b) != MasterKeySize {
		return nil, errorf(path, "must be base64 of %d bytes (got %d)", MasterKeySize, len(b))
	}
	return b, nil
}

// summary renders c without key material or store credentials.
func (c Config) summary() string {
	key := "none"
	if c.MasterKey != nil {
		key = secret.Redacted
	}
	return fmt.Sprintf("config.Config{listen=%s store=%s sessions=%s master_key=%s old_master_keys=%d apps=[%s]}",
		c.Listen, redactURL(c.Store), redactURL(c.Sessions), key, len(c.OldMasterKeys), strings.Join(c.appNames(), " "))
}

// Format implements fmt.Formatter: every verb prints a summary without the
// master keys or the passwords of the store and sessions URLs.
func (c Config) Format(f fmt.State, _ rune) { _, _ = f.Write([]byte(c.summary())) }

// LogValue implements slog.LogValuer with the same summary as Format.
func (c Config) LogValue() slog.Value {
	return slog.GroupValue(
		slog.String("listen", c.Listen),
		slog.String("store", redactURL(c.Store)),
		slog.String("sessions", redactURL(c.Sessions)),
		slog.Int("old_master_keys", len(c.OldMasterKeys)),
		slog.Any("apps", c.appNames()),
	)
}

func (c Config) appNames() []string {
	names := make([]string, len(c.Apps))
	for i, a := range c.Apps {
		names[i] = a.Name
	}
	return names
}

// redactURL hides the password and the query values of a URL (a Sentinel
// URL carries Redis's password as one), and everything when it does not
// parse (it could be anything).
func redactURL(s string) string {
	if s == "" {
		return ""
	}
	if kind, target, err := StoreKind(s); err == nil && kind == "sqlite" {
		return "sqlite:" + target
	}
	u, err := url.Parse(s)
	if err != nil || u.Scheme == "" || u.Opaque != "" {
		return secret.Redacted
	}
	return redact.URL(s)
}

func (l Limits) validate() error {
	for _, r := range []struct {
		name string
		r    RouteLimit
	}{{"login", l.Login}, {"refresh", l.Refresh}, {"verify", l.Verify}, {"decrypt", l.Decrypt}, {"phone", l.Phone}} {
		for _, x := range []struct {
			key string
			l   Limit
		}{{"ip", r.r.IP}, {"session", r.r.Session}, {"app", r.r.App}} {
			path := "rate_limits." + r.name + "." + x.key
			switch {
			case x.l.Rate < 0 || x.l.Rate > 1e6:
				return errorf(path, "must be from 0 (no limit) to 1000000 per second")
			case x.l.Rate > 0 && x.l.Burst < 1:
				return errorf(path+"_burst", "must be at least 1 when %s is set", x.key)
			}
		}
	}
	return nil
}

// usesAppIDKey tells the flavors whose app id is the yaml key app_id.
func usesAppIDKey(f platform.Flavor) bool {
	return f == platform.FlavorKuaishou || f == platform.FlavorAlipay
}

// pemOrBase64 is the DER of a key given as a PEM block of one of types, or
// as the bare base64 of its DER (as Alipay's tools print keys).
func pemOrBase64(s string, types ...string) (der []byte, typ string, err error) {
	s = strings.TrimSpace(s)
	if strings.HasPrefix(s, "-----BEGIN") {
		block, _ := pem.Decode([]byte(s))
		if block == nil {
			return nil, "", errors.New("not a well-formed PEM block")
		}
		for _, t := range types {
			if block.Type == t {
				return block.Bytes, t, nil
			}
		}
		return nil, "", fmt.Errorf("a PEM block of type %q; want %s", block.Type, strings.Join(types, " or "))
	}
	der, err = base64.StdEncoding.DecodeString(strings.Join(strings.Fields(s), ""))
	if err != nil || len(der) == 0 {
		return nil, "", fmt.Errorf("must be a PEM block (-----BEGIN %s-----) or the bare base64 of the key", types[0])
	}
	return der, "", nil
}

// ParseRSAPrivateKey reads an RSA private key of at least 2048 bits: a PEM
// block, PKCS#1 ("RSA PRIVATE KEY") or PKCS#8 ("PRIVATE KEY"), or the bare
// base64 of either. Its errors name the problem, never the key.
func ParseRSAPrivateKey(key secret.String) (*rsa.PrivateKey, error) {
	der, typ, err := pemOrBase64(key.Reveal(), "PRIVATE KEY", "RSA PRIVATE KEY")
	if err != nil {
		return nil, err
	}
	defer clear(der)
	var k *rsa.PrivateKey
	switch typ {
	case "RSA PRIVATE KEY":
		if k, err = x509.ParsePKCS1PrivateKey(der); err != nil {
			return nil, errors.New("not a PKCS#1 RSA private key")
		}
	default:
		p8, err8 := x509.ParsePKCS8PrivateKey(der)
		switch {
		case err8 == nil:
			var ok bool
			if k, ok = p8.(*rsa.PrivateKey); !ok {
				return nil, errors.New("not an RSA key")
			}
		case typ == "":
			if k, err = x509.ParsePKCS1PrivateKey(der); err != nil {
				return nil, errors.New("not a PKCS#8 or PKCS#1 RSA private key")
			}
		default:
			return nil, errors.New("not a PKCS#8 private key")
		}
	}
	if k.N.BitLen() < 2048 {
		return nil, fmt.Errorf("an RSA key of %d bits; want at least 2048", k.N.BitLen())
	}
	return k, nil
}

// ParseRSAPublicKey reads an RSA public key: a PEM block ("PUBLIC KEY",
// PKIX; or "RSA PUBLIC KEY", PKCS#1), or the bare base64 of a PKIX key.
func ParseRSAPublicKey(key string) (*rsa.PublicKey, error) {
	der, typ, err := pemOrBase64(key, "PUBLIC KEY", "RSA PUBLIC KEY")
	if err != nil {
		return nil, err
	}
	if typ == "RSA PUBLIC KEY" {
		k, err := x509.ParsePKCS1PublicKey(der)
		if err != nil {
			return nil, errors.New("not a PKCS#1 RSA public key")
		}
		return k, nil
	}
	pub, err := x509.ParsePKIXPublicKey(der)
	if err != nil {
		return nil, errors.New("not a PKIX public key")
	}
	k, ok := pub.(*rsa.PublicKey)
	if !ok {
		return nil, errors.New("not an RSA key")
	}
	if k.N.BitLen() < 2048 {
		return nil, fmt.Errorf("an RSA key of %d bits; want at least 2048", k.N.BitLen())
	}
	return k, nil
}
