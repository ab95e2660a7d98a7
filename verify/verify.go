package verify

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// Errors a check returns, to be tested with errors.Is. Their texts, and the
// details wrapped with them, never contain the token.
var (
	// ErrInvalidToken means the token is not one this API accepts:
	// malformed, forged, expired, revoked, for another audience or app, a
	// refresh token. The caller answers 401 and the client refreshes or
	// logs in again.
	ErrInvalidToken = errors.New("verify: invalid token")

	// ErrUnavailable means the token could not be checked now: mplogin's
	// keys or introspection could not be reached, or refused this API's
	// own credentials. The caller answers 503 and the client retries
	// later; logging the user out would punish them for an outage.
	ErrUnavailable = errors.New("verify: cannot check the token now")
)

const (
	// MaxTokenSize caps a token's length: an mplogin token is well under
	// 2 KiB, and nothing longer is parsed or sent anywhere.
	MaxTokenSize = 8 << 10

	defaultLeeway          = 30 * time.Second
	defaultRefreshInterval = 30 * time.Second
	defaultIntrospectTTL   = 10 * time.Second
	defaultCacheSize       = 10_000

	// fetchTimeout bounds one fetch of the metadata and JWKS, and one
	// introspection, whatever the caller's context allows.
	fetchTimeout = 10 * time.Second
)

// Options configure a Verifier. Issuer and Audience are required.
type Options struct {
	// Issuer is mplogin's public base URL, exactly as its metadata's
	// issuer and its tokens' iss say, e.g. "https://login.example.com".
	// The metadata is read from Issuer + "/.well-known/oauth-authorization-server"
	// (or MetadataURL); its issuer must equal this string exactly.
	Issuer string

	// Audience is this API's resource identifier as configured in mplogin:
	// a JWT's aud must contain it. Required, because a verifier that
	// skipped it would accept tokens minted for any other API of the issuer.
	Audience string

	// Apps, when not empty, are the mplogin app names this API serves, and
	// a token of any other app is refused. Opaque tokens carry no audience:
	// for them this is the only check of whom the token was issued for.
	Apps []string

	// ClientID and ClientSecret are this API's credentials for mplogin's
	// introspection endpoint. Without them opaque (mpa_) tokens are
	// refused and RequireLive cannot be used; JWTs still verify.
	ClientID     string
	ClientSecret string

	// HTTPClient makes every call to mplogin. Default: a client with a
	// 10-second timeout.
	HTTPClient *http.Client

	// Now is the clock. Default: time.Now.
	Now func() time.Time

	// Leeway is the clock skew allowed on exp, iat and nbf. Zero means
	// 30 seconds; a negative value means none.
	Leeway time.Duration

	// JWKSRefreshInterval is the least time between two fetches of the
	// JWKS: a token naming an unknown kid triggers a fetch only when the
	// last one started at least this long ago, however many such tokens
	// arrive. The same interval paces retries when the issuer could not
	// be reached. Default: 30 seconds.
	JWKSRefreshInterval time.Duration

	// IntrospectionCacheTTL is how long an introspection answer is reused,
	// active or not (never past the token's exp). Zero means 10 seconds; a
	// negative value turns the cache off, so that every opaque token and
	// every RequireLive check asks mplogin.
	IntrospectionCacheTTL time.Duration

	// CacheSize caps the entries of each of the two caches: verified JWTs
	// (kept until their exp) and introspection answers. Default: 10000.
	CacheSize int

	// Logger receives the verifier's events: keys loaded, fetches and
	// introspection failing. Default: nothing is logged.
	Logger *slog.Logger

	// MetadataURL, when set, is where the metadata is read instead of
	// Issuer + "/.well-known/oauth-authorization-server", for example an
	// address inside the network. Its issuer must still equal Issuer.
	MetadataURL string
}

// Format prints the options with the client secret hidden, whatever the
// verb, so that logging a configuration leaks nothing.
func (o Options) Format(f fmt.State, _ rune) {
	fmt.Fprintf(f, "{Issuer:%s Audience:%s Apps:%v ClientID:%s ClientSecret:%s MetadataURL:%s}",
		o.Issuer, o.Audience, o.Apps, o.ClientID, hidden(o.ClientSecret), o.MetadataURL)
}

// LogValue is the options as slog shows them, with the client secret hidden.
func (o Options) LogValue() slog.Value {
	return slog.GroupValue(
		slog.String("issuer", o.Issuer), slog.String("audience", o.Audience),
		slog.Any("apps", o.Apps), slog.String("client_id", o.ClientID),
		slog.String("client_secret", hidden(o.ClientSecret)), slog.String("metadata_url", o.MetadataURL))
}

func hidden(s string) string {
	if s == "" {
		return ""
	}
	return "[redacted]"
}

// Identity is who a valid token speaks for.
type Identity struct {
	UserID    string // mplogin's id of the user (sub)
	App       string // the mplogin app the token was issued to
	Platform  string // the host family: "wechat" or "baidu"
	OpenID    string // the user's openid in that app
	UnionID   string // the user's unionid, when the platform gave one
	SessionID string // the mplogin session, which a logout ends
	ExpiresAt time.Time
}

type contextKey struct{}

// NewContext returns a copy of ctx carrying id, as the middleware passes it
// to the handler; tests of handlers can use it to fake a login.
func NewContext(ctx context.Context, id Identity) context.Context {
	return context.WithValue(ctx, contextKey{}, id)
}

// IdentityFrom returns the identity the middleware put in ctx, or the zero
// Identity (UserID "") when there is none.
func IdentityFrom(ctx context.Context) Identity {
	id, _ := ctx.Value(contextKey{}).(Identity)
	return id
}

// Verifier checks mplogin access tokens. It is safe for concurrent use;
// make one per process and share it.
type Verifier struct {
	issuer, audience       string
	apps                   map[string]bool
	clientID, clientSecret string
	client                 *http.Client
	now                    func() time.Time
	leeway                 time.Duration
	refreshInterval        time.Duration
	introspectTTL          time.Duration
	log                    *slog.Logger
	metadataURL            string
	httpsOnly              bool

	meta atomic.Pointer[metadata] // nil until first read
	keys atomic.Pointer[keySet]   // nil until first read

	mu      sync.Mutex
	fetch   fetchState
	fetches sync.WaitGroup // fetches running, so tests can wait for one
	// nextFetch is when the next fetch may start (Unix nanoseconds), read
	// without the lock by every check that finds the keys stale.
	nextFetch atomic.Int64

	jwts        *cache[jwtEntry]
	introspects *cache[introspectEntry]
	flight      flight[introspectEntry]

	credentialsLog logLimit // mplogin refusing this API's credentials
	unavailableLog logLimit // the middleware answering 503
}

// New returns a Verifier for the tokens of the mplogin at o.Issuer. It reads
// the issuer's metadata and JWKS, waiting as long as ctx allows. When they
// cannot be read (the issuer is down, or ctx ends first), New still returns
// a Verifier: it answers ErrUnavailable (503 in the middleware) instead of
// ErrInvalidToken, and tries again on a later check, at most once per
// JWKSRefreshInterval, so that a backend starting before mplogin neither
// fails to start nor logs its users out. New fails only on invalid options
// and on metadata that names another issuer.
func New(ctx context.Context, o Options) (*Verifier, error) {
	u, err := url.Parse(o.Issuer)
	switch {
	case o.Issuer == "":
		return nil, errors.New("verify: Options.Issuer is required")
	case err != nil || u.Host == "" || (u.Scheme != "https" && u.Scheme != "http") || u.RawQuery != "" || u.Fragment != "":
		return nil, fmt.Errorf("verify: Options.Issuer %q is not an http(s) URL without query or fragment", o.Issuer)
	case o.Audience == "":
		return nil, errors.New("verify: Options.Audience is required: a JWT's aud must name this API")
	case (o.ClientID == "") != (o.ClientSecret == ""):
		return nil, errors.New("verify: Options.ClientID and ClientSecret go together")
	case o.JWKSRefreshInterval < 0:
		return nil, errors.New("verify: Options.JWKSRefreshInterval must not be negative")
	case o.CacheSize < 0:
		return nil, errors.New("verify: Options.CacheSize must not be negative")
	}
	v := &Verifier{
		issuer:          o.Issuer,
		audience:        o.Audience,
		clientID:        o.ClientID,
		clientSecret:    o.ClientSecret,
		client:          o.HTTPClient,
		now:             o.Now,
		leeway:          o.Leeway,
		refreshInterval: o.JWKSRefreshInterval,
		introspectTTL:   o.IntrospectionCacheTTL,
		log:             o.Logger,
		metadataURL:     o.MetadataURL,
		httpsOnly:       u.Scheme == "https",
	}
	if len(o.Apps) > 0 {
		v.apps = make(map[string]bool, len(o.Apps))
		for _, a := range o.Apps {
			v.apps[a] = true
		}
	}
	if v.client == nil {
		v.client = &http.Client{Timeout: fetchTimeout}
	}
	if v.now == nil {
		v.now = time.Now
	}
	switch {
	case v.leeway == 0:
		v.leeway = defaultLeeway
	case v.leeway < 0:
		v.leeway = 0
	}
	if v.refreshInterval == 0 {
		v.refreshInterval = defaultRefreshInterval
	}
	if v.introspectTTL == 0 {
		v.introspectTTL = defaultIntrospectTTL
	}
	if v.log == nil {
		v.log = slog.New(slog.DiscardHandler)
	}
	if v.metadataURL == "" {
		v.metadataURL = strings.TrimSuffix(o.Issuer, "/") + metadataPath
	}
	size := o.CacheSize
	if size == 0 {
		size = defaultCacheSize
	}
	v.jwts = newCache[jwtEntry](size)
	v.introspects = newCache[introspectEntry](size)

	err = v.startFetch(ctx, "start").wait(ctx)
	switch {
	case errors.Is(err, errIssuerMismatch):
		return nil, fmt.Errorf("verify: %w", err)
	case err != nil:
		v.log.WarnContext(ctx, "verify: starting without the issuer's keys; checks answer ErrUnavailable until they are read",
			"issuer", v.issuer, "retry_every", v.refreshInterval, "err", err)
	}
	return v, nil
}

// Verify checks an access token and returns whom it speaks for. A JWT is
// verified locally with the issuer's published keys, and the verdict is
// cached until the token's exp: after a logout it stays valid until then
// (use VerifyLive where that matters). An opaque mpa_ token is checked by
// introspection, whose answer is cached for IntrospectionCacheTTL.
//
// The error is ErrInvalidToken or ErrUnavailable, wrapped with a detail.
func (v *Verifier) Verify(ctx context.Context, raw string) (Identity, error) {
	return v.verify(ctx, raw, false)
}

// VerifyLive is Verify that also asks mplogin whether a JWT's session is
// still live, so that a logout or a revocation takes effect at once, up to
// IntrospectionCacheTTL. It needs Options.ClientID and ClientSecret;
// without them it answers ErrUnavailable for JWTs, failing closed.
func (v *Verifier) VerifyLive(ctx context.Context, raw string) (Identity, error) {
	return v.verify(ctx, raw, true)
}

func (v *Verifier) verify(ctx context.Context, raw string, live bool) (Identity, error) {
	kind, err := classify(raw)
	if err != nil {
		return Identity{}, err
	}
	if kind == opaqueToken {
		if v.clientID == "" {
			return Identity{}, invalid("an opaque access token, and this verifier has no introspection credentials (Options.ClientID, ClientSecret) to check it")
		}
		return v.introspect(ctx, raw)
	}
	id, err := v.verifyJWT(ctx, raw)
	if err != nil || !live {
		return id, err
	}
	if v.clientID == "" {
		return Identity{}, unavailable("a live check needs introspection credentials (Options.ClientID, ClientSecret)", nil)
	}
	lid, err := v.introspect(ctx, raw)
	if err != nil {
		return Identity{}, err
	}
	if lid.UserID != id.UserID {
		return Identity{}, unavailable("introspection names another user than the token", nil)
	}
	return id, nil
}

type tokenKind int

const (
	jwtToken tokenKind = iota
	opaqueToken
)

// classify tells a JWT from an opaque token by its shape, and refuses
// anything else before any parsing or network call.
func classify(raw string) (tokenKind, error) {
	switch {
	case raw == "":
		return 0, invalid("empty")
	case len(raw) > MaxTokenSize:
		return 0, invalid("longer than %d bytes", MaxTokenSize)
	}
	switch strings.Count(raw, ".") {
	case 2:
		return jwtToken, nil
	case 4:
		return 0, invalid("an encrypted token (JWE), which this verifier does not accept")
	case 0:
	default:
		return 0, invalid("not a JWT: %d dots", strings.Count(raw, "."))
	}
	switch {
	case strings.HasPrefix(raw, "mpa_") && len(raw) > len("mpa_") && isBase64URL(raw[len("mpa_"):]):
		return opaqueToken, nil
	case strings.HasPrefix(raw, "mpr_"):
		return 0, invalid("a refresh token, not an access token")
	}
	return 0, invalid("neither a JWT nor an mpa_ token")
}

func isBase64URL(s string) bool {
	for i := range len(s) {
		c := s[i]
		if !('A' <= c && c <= 'Z' || 'a' <= c && c <= 'z' || '0' <= c && c <= '9' || c == '-' || c == '_') {
			return false
		}
	}
	return true
}

// invalid is an ErrInvalidToken with a detail. Callers never pass the token.
func invalid(format string, args ...any) error {
	return fmt.Errorf("%w: "+format, append([]any{ErrInvalidToken}, args...)...)
}

// unavailableError is an ErrUnavailable with a detail, the cause and, when
// known, when to try again.
type unavailableError struct {
	msg        string
	err        error
	retryAfter time.Duration
}

func unavailable(msg string, err error) *unavailableError {
	return &unavailableError{msg: msg, err: err}
}

func (e *unavailableError) Error() string {
	if e.err == nil {
		return ErrUnavailable.Error() + ": " + e.msg
	}
	return ErrUnavailable.Error() + ": " + e.msg + ": " + e.err.Error()
}

func (e *unavailableError) Unwrap() []error {
	if e.err == nil {
		return []error{ErrUnavailable}
	}
	return []error{ErrUnavailable, e.err}
}

// retryAfter is when an ErrUnavailable says to try again, zero when it
// does not say.
func retryAfter(err error) time.Duration {
	var u *unavailableError
	if errors.As(err, &u) {
		return u.retryAfter
	}
	return 0
}
