// Package httpapi serves mplogin's HTTP API (docs/api.md):
// strict JSON in, one error shape out, a body limit on every route, a
// request id and one structured log line per request that never carries a
// token, a code, a key or user data.
package httpapi

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/netip"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	"github.com/mplogin/mplogin"
	"github.com/mplogin/mplogin/metrics"
	"github.com/mplogin/mplogin/session"
)

// Body limits per route.
const (
	LoginBodyLimit = 8 << 10
	TokenBodyLimit = 4 << 10
	// FormBodyLimit fits a token, a hint and client credentials, form
	// encoded, with room to spare.
	FormBodyLimit  = 4 << 10
	EmptyBodyLimit = 1 << 10
	// DecryptBodyLimit fits the decryptors' ciphertext cap
	// (userdata.MaxCiphertext, 16 KiB) in base64, a rawData and the JSON
	// around them.
	DecryptBodyLimit = 64 << 10
)

// Routes are the API's routes as metrics label them.
var Routes = []string{
	"POST /v1/login", "GET /v1/session", "POST /v1/token", "POST /v1/logout",
	"POST /v1/userdata/decrypt", "POST /v1/phone", "GET /healthz", "GET /readyz",
	"POST /v1/introspect", "POST /v1/revoke", AuthzRoute, "GET /v1/me", "DELETE /v1/me",
	"GET " + JWKSPath, "GET " + OAuthMetadataPath, "GET " + OIDCMetadataPath,
}

// Config assembles a Handler.
type Config struct {
	Sessions *session.Service
	Logger   *slog.Logger // nil = discard
	// HandlerTimeout bounds the work of one request; 0 = 15 s.
	HandlerTimeout time.Duration
	Now            func() time.Time // nil = time.Now
	// Limits rate-limit the costly routes; the zero value limits nothing.
	Limits Limits
	// TrustedProxies are the peers whose X-Forwarded-For names the client.
	TrustedProxies []netip.Prefix
	// IPv6Prefix is how many leading bits of an IPv6 client address name
	// one client for the per-IP limits; 0 = DefaultIPv6Prefix.
	IPv6Prefix int
	// Metrics records every request; nil records nothing. When set, GET
	// /metrics serves it, unless MetricsElsewhere.
	Metrics *metrics.Metrics
	// MetricsElsewhere says /metrics is served on a listener of its own:
	// here it is 404 not_found, as /admin/ is.
	MetricsElsewhere bool
	// Clients are the business clients that may introspect and revoke
	// tokens; none, and introspection answers every caller 401.
	Clients []Client
	// Keys publishes the JWT signing keys at /.well-known/jwks.json; nil
	// publishes an empty set (no app issues JWTs).
	Keys KeySet
	// Issuer is the issuer of the metadata documents and the "iss" of
	// introspection answers: the service's public base URL, without a
	// trailing slash.
	Issuer string
	// Algorithm is the signing algorithm the metadata names when Keys is
	// nil; "" = ES256.
	Algorithm string
}

// Handler is the API's http.Handler.
type Handler struct {
	sessions  *session.Service
	log       *slog.Logger
	timeout   time.Duration
	now       func() time.Time
	mux       *http.ServeMux
	limits    Limits
	proxies   []netip.Prefix
	v6bits    int
	metrics   *metrics.Metrics
	keys      KeySet
	issuer    string
	algorithm string
	// allow is each known path's methods, for the Allow header of a 405.
	allow map[string]string
	// xffWarned is set once the untrusted X-Forwarded-For warning is out.
	xffWarned atomic.Bool
	clients   clientSet
}

// New returns the API handler.
func New(cfg Config) *Handler {
	h := &Handler{sessions: cfg.Sessions, log: cfg.Logger, timeout: cfg.HandlerTimeout, now: cfg.Now, mux: http.NewServeMux(),
		limits: cfg.Limits, proxies: cfg.TrustedProxies, v6bits: cfg.IPv6Prefix, metrics: cfg.Metrics, allow: make(map[string]string),
		clients: newClientSet(cfg.Clients), keys: cfg.Keys, issuer: cfg.Issuer, algorithm: cfg.Algorithm}
	if h.algorithm == "" {
		h.algorithm = "ES256"
	}
	if h.log == nil {
		h.log = slog.New(slog.DiscardHandler)
	}
	h.log = slog.New(LogHandler(h.log.Handler()))
	if h.v6bits <= 0 || h.v6bits > 128 {
		h.v6bits = DefaultIPv6Prefix
	}
	if h.timeout <= 0 {
		h.timeout = 15 * time.Second
	}
	if h.now == nil {
		h.now = time.Now
	}
	h.route("POST /v1/login", LoginBodyLimit, h.login)
	h.route("GET /v1/session", EmptyBodyLimit, h.session)
	h.route("POST /v1/token", TokenBodyLimit, h.token)
	h.route("POST /v1/logout", EmptyBodyLimit, h.logout)
	h.route("GET /v1/me", EmptyBodyLimit, h.me)
	h.route("DELETE /v1/me", EmptyBodyLimit, h.deleteMe)
	h.route("POST /v1/userdata/decrypt", DecryptBodyLimit, h.decrypt)
	h.route("POST /v1/phone", DecryptBodyLimit, h.phone)
	h.route("GET /healthz", EmptyBodyLimit, h.healthz)
	h.route("GET /readyz", EmptyBodyLimit, h.readyz)
	h.route("POST /v1/introspect", FormBodyLimit, h.introspect)
	h.route("POST /v1/revoke", FormBodyLimit, h.revoke)
	// Every method, and every path below: a gateway may forward the
	// original method, and Envoy appends the original path.
	for _, p := range []string{"/v1/authz", "/v1/authz/{path...}"} {
		h.mux.HandleFunc(p, func(w http.ResponseWriter, r *http.Request) { h.serve(w, r, AuthzRoute, EmptyBodyLimit, h.authz) })
	}
	// Verifiers fetch these from a few addresses on behalf of every user,
	// so they have no per-address rate limit; they cost no store access.
	h.route("GET "+JWKSPath, EmptyBodyLimit, h.jwks)
	h.route("GET "+OAuthMetadataPath, EmptyBodyLimit, h.metadata)
	h.route("GET "+OIDCMetadataPath, EmptyBodyLimit, h.metadata)
	// The admin API, and /metrics when moved, are served on listeners of
	// their own: here their paths are plainly not found, whatever the
	// method or token.
	notFound := func(w http.ResponseWriter, r *http.Request) {
		h.serve(w, r, "unknown", EmptyBodyLimit, func(*request) error {
			return mplogin.Errorf(mplogin.CodeNotFound, "no such route: see the API reference")
		})
	}
	switch {
	case cfg.MetricsElsewhere:
		h.mux.HandleFunc("/metrics", notFound)
	case h.metrics != nil:
		h.mux.Handle("GET /metrics", h.metrics.Handler())
		h.allowMethod("GET /metrics")
	}
	h.mux.HandleFunc("/admin/", notFound)
	h.mux.HandleFunc("/", h.fallback(mplogin.CodeInvalidRequest))
	return h
}

// fallback answers what no route matched: a known path asked with another
// method (a pattern with a method does not match other methods) is 405
// with its methods in Allow, any other path is code.
func (h *Handler) fallback(code mplogin.Code) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		if allow, ok := h.allow[r.URL.Path]; ok {
			h.serve(w, r, r.URL.Path, EmptyBodyLimit, func(req *request) error {
				req.w.Header().Set("Allow", allow)
				return mplogin.Errorf(mplogin.CodeMethodNotAllowed, "this route takes %s", allow)
			})
			return
		}
		h.serve(w, r, "unknown", EmptyBodyLimit, func(*request) error {
			return mplogin.Errorf(code, "no such route: see the API reference")
		})
	}
}

// allowMethod adds pattern's method to its path's Allow value. A GET
// pattern answers HEAD too, as the mux serves it.
func (h *Handler) allowMethod(pattern string) {
	method, path, _ := strings.Cut(pattern, " ")
	if method == http.MethodGet {
		method = "GET, HEAD"
	}
	if prev := h.allow[path]; prev != "" {
		method = prev + ", " + method
	}
	h.allow[path] = method
}

func (h *Handler) ServeHTTP(w http.ResponseWriter, r *http.Request) { h.mux.ServeHTTP(w, r) }

// request is one call in flight, with what its log line needs.
type request struct {
	w      http.ResponseWriter
	r      *http.Request
	id     string
	route  string     // the route's pattern, as metrics label it
	client netip.Addr // through the trusted proxies; invalid when unknown
	app    string
	status int
	// clientID is the business client the request authenticated as.
	clientID string
}

type handlerFunc func(*request) error

func (h *Handler) route(pattern string, limit int64, fn handlerFunc) {
	h.mux.HandleFunc(pattern, func(w http.ResponseWriter, r *http.Request) { h.serve(w, r, pattern, limit, fn) })
	h.allowMethod(pattern)
}

func (h *Handler) serve(w http.ResponseWriter, r *http.Request, route string, limit int64, fn handlerFunc) {
	start := h.now()
	req := &request{w: w, r: r, id: requestID(r), route: route, client: h.clientAddr(r)}
	client := "unknown"
	if req.client.IsValid() {
		client = req.client.String()
	}
	w.Header().Set("X-Request-Id", req.id)
	w.Header().Set("Cache-Control", "no-store")
	r.Body = http.MaxBytesReader(w, r.Body, limit)
	ctx, cancel := context.WithTimeout(r.Context(), h.timeout)
	defer cancel()
	// What is logged under ctx carries the request's id and client (see
	// LogHandler); the request line below is logged under r's own context
	// and names them itself.
	req.r = r.WithContext(withReqLog(ctx, req.id, client))

	err := func() (err error) {
		defer func() {
			if p := recover(); p != nil {
				if p == http.ErrAbortHandler {
					panic(p)
				}
				err = mplogin.Wrap(mplogin.CodeInternal, "internal error", fmt.Errorf("panic: %v", p))
			}
		}()
		return fn(req)
	}()
	if err != nil {
		h.writeError(req, err)
	}
	attrs := []slog.Attr{
		slog.String("request_id", req.id), slog.String("method", r.Method), slog.String("route", route),
		slog.Int("status", req.status), slog.Duration("latency", h.now().Sub(start)), slog.String("client", client),
	}
	if req.app != "" {
		attrs = append(attrs, slog.String("app", req.app))
	}
	if req.clientID != "" {
		attrs = append(attrs, slog.String("client_id", req.clientID))
	}
	level := slog.LevelInfo
	if err != nil {
		attrs = append(attrs, slog.String("error", string(mplogin.ErrorCode(err))))
		if cause := errors.Unwrap(err); cause != nil {
			attrs = append(attrs, slog.String("cause", cause.Error()))
		}
		if req.status >= 500 {
			level = slog.LevelWarn
		}
	}
	h.log.LogAttrs(r.Context(), level, "request", attrs...)
	if h.metrics != nil {
		h.metrics.Request(route, req.status, h.now().Sub(start))
		switch mplogin.ErrorCode(err) {
		case mplogin.CodeDecryptFailed:
			h.metrics.DecryptFailure(req.app)
		case mplogin.CodeStoreUnavailable:
			h.metrics.StoreError(route)
		case mplogin.CodeInternal:
			var se *session.StoreError
			if errors.As(err, &se) {
				h.metrics.StoreInternalError(se.Op)
			}
		}
	}
}

// requestID keeps a caller's id when it is short and plain, else makes one.
func requestID(r *http.Request) string {
	if id := r.Header.Get("X-Request-Id"); id != "" && len(id) <= 64 && plain(id) {
		return id
	}
	var b [8]byte
	_, _ = rand.Read(b[:])
	return hex.EncodeToString(b[:])
}

func plain(s string) bool {
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '-' || c == '_' || c == '.') {
			return false
		}
	}
	return true
}

// statusOf is the one mapping from error codes to HTTP statuses.
func statusOf(code mplogin.Code) int {
	switch code {
	case mplogin.CodeInvalidRequest, mplogin.CodeUnknownApp, mplogin.CodeInvalidGrant:
		return http.StatusBadRequest
	case mplogin.CodeRequestTooLarge:
		return http.StatusRequestEntityTooLarge
	case mplogin.CodeMethodNotAllowed:
		return http.StatusMethodNotAllowed
	case mplogin.CodeUnsupportedMediaType:
		return http.StatusUnsupportedMediaType
	case mplogin.CodeInvalidCode, mplogin.CodeInvalidToken, mplogin.CodeInvalidClient:
		return http.StatusUnauthorized
	case mplogin.CodeUserBlocked:
		return http.StatusForbidden
	case mplogin.CodeNotFound:
		return http.StatusNotFound
	case mplogin.CodePhoneConflict:
		return http.StatusConflict
	case mplogin.CodeDecryptFailed:
		return http.StatusUnprocessableEntity
	case mplogin.CodeRateLimited:
		return http.StatusTooManyRequests
	case mplogin.CodePlatformError:
		return http.StatusBadGateway
	case mplogin.CodePlatformUnavailable, mplogin.CodeStoreUnavailable:
		return http.StatusServiceUnavailable
	}
	return http.StatusInternalServerError
}

func (h *Handler) writeError(req *request, err error) {
	var e *mplogin.Error
	if !errors.As(err, &e) {
		e = mplogin.Wrap(mplogin.CodeInternal, "internal error", err)
	}
	status := statusOf(e.Code)
	msg := e.Message
	if status == http.StatusInternalServerError {
		msg = "internal error" // no details leave the server
	}
	if e.RetryAfter > 0 {
		req.w.Header().Set("Retry-After", strconv.Itoa(int((e.RetryAfter+time.Second-1)/time.Second)))
	} else if status == http.StatusServiceUnavailable {
		req.w.Header().Set("Retry-After", "1")
	}
	// A route may have set a more precise challenge (a missing token).
	if req.w.Header().Get("WWW-Authenticate") == "" {
		switch e.Code {
		case mplogin.CodeInvalidToken:
			req.w.Header().Set("WWW-Authenticate", `Bearer error="invalid_token"`)
		case mplogin.CodeInvalidClient:
			req.w.Header().Set("WWW-Authenticate", `Basic realm="mplogin"`)
		}
	}
	writeJSON(req, status, struct {
		Error   mplogin.Code `json:"error"`
		Message string       `json:"message"`
	}{e.Code, msg})
}

func writeJSON(req *request, status int, v any) {
	b, err := json.Marshal(v)
	if err != nil {
		status, b = http.StatusInternalServerError, []byte(`{"error":"internal_error","message":"internal error"}`)
	}
	req.w.Header().Set("Content-Type", "application/json")
	req.w.Header().Set("Content-Length", strconv.Itoa(len(b)+1))
	req.w.WriteHeader(status)
	req.status = status
	_, _ = req.w.Write(append(b, '\n'))
}

func bodyError(err error) error {
	var mbe *http.MaxBytesError
	var syn *json.SyntaxError
	switch {
	case errors.As(err, &mbe):
		return mplogin.Errorf(mplogin.CodeRequestTooLarge, "the body is over this route's limit of %d bytes", mbe.Limit)
	case errors.Is(err, io.EOF):
		return mplogin.Errorf(mplogin.CodeInvalidRequest, "the body is empty; send a JSON object")
	case errors.As(err, &syn), errors.Is(err, io.ErrUnexpectedEOF):
		return mplogin.Errorf(mplogin.CodeInvalidRequest, "the body is not valid JSON")
	}
	return mplogin.Errorf(mplogin.CodeInvalidRequest, "the body is not a valid JSON object")
}

// noBody refuses a body on routes that take none.
func noBody(req *request) error {
	var b [1]byte
	// Only whether a byte came matters: an empty body ends in EOF.
	n, _ := io.ReadFull(req.r.Body, b[:])
	if n > 0 {
		var rest bytes.Buffer
		if _, err := rest.ReadFrom(req.r.Body); err != nil {
			return bodyError(err)
		}
		if len(bytes.TrimSpace(append(b[:n], rest.Bytes()...))) > 0 {
			return mplogin.Errorf(mplogin.CodeInvalidRequest, "this route takes no body")
		}
	}
	return nil
}

// bearer is the request's access token, "" when it has none. Two
// Authorization headers are refused: servers and proxies differ on which
// one counts.
func bearer(r *http.Request) (string, error) {
	vs := r.Header.Values("Authorization")
	if len(vs) > 1 {
		return "", mplogin.Errorf(mplogin.CodeInvalidRequest, "send one Authorization header")
	}
	if len(vs) == 1 && len(vs[0]) > 7 && strings.EqualFold(vs[0][:7], "bearer ") {
		return strings.TrimSpace(vs[0][7:]), nil
	}
	return "", nil
}

type loginRequest struct {
	App           *string `json:"app"`
	Code          *string `json:"code"`
	AnonymousCode *string `json:"anonymous_code"`
}

func (*loginRequest) known(key []byte) bool {
	switch string(key) {
	case "app", "code", "anonymous_code":
		return true
	}
	return false
}

type tokenResponse struct {
	AccessToken      string       `json:"access_token"`
	TokenType        string       `json:"token_type"`
	ExpiresIn        int64        `json:"expires_in"`
	RefreshToken     string       `json:"refresh_token"`
	RefreshExpiresIn int64        `json:"refresh_expires_in"`
	User             session.User `json:"user"`
}

func tokens(t *session.Tokens) tokenResponse {
	return tokenResponse{
		AccessToken: t.AccessToken.Reveal(), TokenType: "Bearer", ExpiresIn: int64(t.ExpiresIn / time.Second),
		RefreshToken: t.RefreshToken.Reveal(), RefreshExpiresIn: int64(t.RefreshExpiresIn / time.Second), User: t.User,
	}
}

func (h *Handler) login(req *request) error {
	if err := h.limitIP(req, h.limits.Login.IP, "login"); err != nil {
		return err
	}
	var in loginRequest
	if err := decode(req, &in); err != nil {
		return err
	}
	if in.App == nil || *in.App == "" {
		return mplogin.Errorf(mplogin.CodeInvalidRequest, `field "app" is required`)
	}
	var lr session.LoginRequest
	if in.Code != nil {
		lr.Code = *in.Code
	}
	if in.AnonymousCode != nil {
		if *in.AnonymousCode == "" {
			return mplogin.Errorf(mplogin.CodeInvalidRequest, `field "anonymous_code" must not be empty`)
		}
		lr.AnonymousCode = *in.AnonymousCode
	}
	if lr.Code == "" && (in.AnonymousCode == nil || in.Code != nil) {
		return mplogin.Errorf(mplogin.CodeInvalidRequest, `field "code" is required`)
	}
	if len(*in.App) <= 64 && plain(*in.App) {
		req.app = *in.App
	}
	if h.sessions.HasApp(*in.App) {
		if err := h.limitApp(req, h.limits.Login.App, "login", *in.App); err != nil {
			return err
		}
	}
	t, err := h.sessions.LoginWith(req.r.Context(), *in.App, lr)
	if err != nil {
		return err
	}
	writeJSON(req, http.StatusOK, tokens(t))
	return nil
}

type tokenRequest struct {
	GrantType    *string `json:"grant_type"`
	RefreshToken *string `json:"refresh_token"`
}

func (*tokenRequest) known(key []byte) bool {
	switch string(key) {
	case "grant_type", "refresh_token":
		return true
	}
	return false
}

func (h *Handler) token(req *request) error {
	if err := h.limitIP(req, h.limits.Refresh.IP, "refresh"); err != nil {
		return err
	}
	var in tokenRequest
	if err := decode(req, &in); err != nil {
		return err
	}
	if in.GrantType == nil || *in.GrantType != "refresh_token" {
		return mplogin.Errorf(mplogin.CodeInvalidRequest, `field "grant_type" must be "refresh_token"`)
	}
	if in.RefreshToken == nil || *in.RefreshToken == "" {
		return mplogin.Errorf(mplogin.CodeInvalidRequest, `field "refresh_token" is required`)
	}
	t, err := h.sessions.Refresh(req.r.Context(), *in.RefreshToken)
	if err != nil {
		return err
	}
	req.app = t.App
	writeJSON(req, http.StatusOK, tokens(t))
	return nil
}

func (h *Handler) session(req *request) error {
	if err := noBody(req); err != nil {
		return err
	}
	check := h.sessions.Check
	switch v := req.r.URL.Query()["verify"]; {
	case len(v) == 0:
	case len(v) == 1 && v[0] == "platform":
		check = h.verify(req)
	default:
		return mplogin.Errorf(mplogin.CodeInvalidRequest, `query parameter "verify" can only be "platform"`)
	}
	tok, err := bearer(req.r)
	if err != nil {
		return err
	}
	info, err := check(req.r.Context(), tok)
	if err != nil {
		return err
	}
	req.app = info.App
	writeJSON(req, http.StatusOK, struct {
		Active          bool   `json:"active"`
		App             string `json:"app"`
		User            any    `json:"user"`
		ExpiresIn       int64  `json:"expires_in"`
		SessionKeyValid *bool  `json:"session_key_valid,omitempty"`
	}{true, info.App, struct {
		ID      string `json:"id"`
		OpenID  string `json:"openid"`
		UnionID string `json:"unionid,omitempty"`
	}{info.User.ID, info.User.OpenID, info.User.UnionID}, int64(info.ExpiresIn / time.Second), info.SessionKeyValid})
	return nil
}

// verify is the check of GET /v1/session?verify=platform: each one is a
// call to the platform, which spends the app's quota and, failing, counts
// towards the breaker every user of the platform shares. So it is limited
// per address, per session and per app, in that order.
func (h *Handler) verify(req *request) func(context.Context, string) (*session.Info, error) {
	return func(ctx context.Context, tok string) (*session.Info, error) {
		l := h.limits.Verify
		if err := h.limitIP(req, l.IP, "verify"); err != nil {
			return nil, err
		}
		auth, err := h.authenticate(req, tok)
		if err != nil {
			return nil, err
		}
		if err := h.limitSession(req, l.Session, "verify", auth.Info().SessionID); err != nil {
			return nil, err
		}
		if err := h.limitApp(req, l.App, "verify", req.app); err != nil {
			return nil, err
		}
		return h.sessions.CheckPlatformAuthed(ctx, auth)
	}
}

// logoutRequest is the optional body of a logout: {"all":true} ends every
// session of the token's user, not only the token's own.
type logoutRequest struct {
	All bool `json:"all"`
}

func (*logoutRequest) known(key []byte) bool { return string(key) == "all" }

// logoutBody reads a logout's body: none (or only white space, with or
// without a Content-Type) is a logout of this session; else a strict JSON
// logoutRequest.
func logoutBody(req *request) (logoutRequest, error) {
	var lr logoutRequest
	b, err := io.ReadAll(req.r.Body)
	if err != nil {
		return lr, bodyError(err)
	}
	if len(bytes.TrimSpace(b)) == 0 {
		return lr, nil
	}
	if err := jsonContentType(req.r.Header); err != nil {
		return lr, err
	}
	return lr, decodeJSON(b, &lr)
}

func (h *Handler) logout(req *request) error {
	lr, err := logoutBody(req)
	if err != nil {
		return err
	}
	tok, err := bearer(req.r)
	if err != nil {
		return err
	}
	if lr.All {
		_, err = h.sessions.LogoutAll(req.r.Context(), tok)
	} else {
		err = h.sessions.Logout(req.r.Context(), tok)
	}
	if err != nil {
		return err
	}
	req.w.WriteHeader(http.StatusNoContent)
	req.status = http.StatusNoContent
	return nil
}

// me answers the user of the access token their own account: id,
// identities, a masked phone.
func (h *Handler) me(req *request) error {
	tok, err := bearer(req.r)
	if err != nil {
		return err
	}
	u, err := h.sessions.Me(req.r.Context(), tok)
	if err != nil {
		return err
	}
	writeJSON(req, http.StatusOK, userJSON(u))
	return nil
}

// deleteMe erases the account of the access token's user.
func (h *Handler) deleteMe(req *request) error {
	tok, err := bearer(req.r)
	if err != nil {
		return err
	}
	if err := h.sessions.DeleteMe(req.r.Context(), tok); err != nil {
		return err
	}
	req.w.WriteHeader(http.StatusNoContent)
	req.status = http.StatusNoContent
	return nil
}

// decryptRequest is the user data a mini program got from the platform.
// Nothing of it is ever logged.
type decryptRequest struct {
	EncryptedData string `json:"encrypted_data"`
	IV            string `json:"iv"`
	RawData       string `json:"raw_data"`
	Signature     string `json:"signature"`
}

func (*decryptRequest) known(key []byte) bool {
	switch string(key) {
	case "encrypted_data", "iv", "raw_data", "signature":
		return true
	}
	return false
}

func (h *Handler) decrypt(req *request) error {
	l := h.limits.Decrypt
	if err := h.limitIP(req, l.IP, "decrypt"); err != nil {
		return err
	}
	auth, err := h.authenticateBearer(req)
	if err != nil {
		return err
	}
	if err := h.limitSession(req, l.Session, "decrypt", auth.Info().SessionID); err != nil {
		return err
	}
	var in decryptRequest
	if err := decode(req, &in); err != nil {
		return err
	}
	if err := h.limitApp(req, l.App, "decrypt", req.app); err != nil {
		return err
	}
	// The session service checks what is required, missing and empty alike.
	plain, err := h.sessions.DecryptAuthed(req.r.Context(), auth, session.DecryptInput{
		EncryptedData: in.EncryptedData, IV: in.IV, RawData: in.RawData, Signature: in.Signature,
	})
	if err != nil {
		return err
	}
	writeJSON(req, http.StatusOK, struct {
		Data json.RawMessage `json:"data"`
	}{plain})
	return nil
}

// authenticateBearer checks the request's access token, once, before the
// body, so that a request gets the same answer whatever limits are
// configured, as long as none fires: a bad token is invalid_token, whatever
// the body. The per-session limit comes next, the per-app one only once
// the body has been checked (see RouteLimits).
func (h *Handler) authenticateBearer(req *request) (*session.Authed, error) {
	tok, err := bearer(req.r)
	if err != nil {
		return nil, err
	}
	return h.authenticate(req, tok)
}

// authenticate checks tok and names the session's app for the log.
func (h *Handler) authenticate(req *request, tok string) (*session.Authed, error) {
	auth, err := h.sessions.Authenticate(req.r.Context(), tok)
	if err != nil {
		return nil, err
	}
	req.app = auth.Info().App
	return auth, nil
}

// phoneRequest is a phone code, an encrypted phone payload, or (Alipay)
// my.getPhoneNumber's answer as the mini program got it. Nothing of it is
// ever logged.
type phoneRequest struct {
	Code          string `json:"code"`
	EncryptedData string `json:"encrypted_data"`
	IV            string `json:"iv"`

	Response    string `json:"response"`
	Sign        string `json:"sign"`
	SignType    string `json:"sign_type"`
	EncryptType string `json:"encrypt_type"`
	Charset     string `json:"charset"`
}

func (*phoneRequest) known(key []byte) bool {
	switch string(key) {
	case "code", "encrypted_data", "iv", "response", "sign", "sign_type", "encrypt_type", "charset":
		return true
	}
	return false
}

func (h *Handler) phone(req *request) error {
	l := h.limits.Phone
	if err := h.limitIP(req, l.IP, "phone"); err != nil {
		return err
	}
	auth, err := h.authenticateBearer(req)
	if err != nil {
		return err
	}
	if err := h.limitSession(req, l.Session, "phone", auth.Info().SessionID); err != nil {
		return err
	}
	var in phoneRequest
	if err := decode(req, &in); err != nil {
		return err
	}
	if err := h.limitApp(req, l.App, "phone", req.app); err != nil {
		return err
	}
	pin := session.PhoneInput{Code: in.Code, EncryptedData: in.EncryptedData, IV: in.IV}
	if in.Response != "" || in.Sign != "" || in.SignType != "" || in.EncryptType != "" || in.Charset != "" {
		pin.Alipay = &session.AlipayPhone{Response: in.Response, Sign: in.Sign, SignType: in.SignType,
			EncryptType: in.EncryptType, Charset: in.Charset}
	}
	p, err := h.sessions.PhoneAuthed(req.r.Context(), auth, pin)
	if err != nil {
		return err
	}
	writeJSON(req, http.StatusOK, phoneResponse{PhoneNumber: p.Number, UserID: p.UserID, Linked: p.Linked})
	return nil
}

// phoneResponse is the number's fields, and the user it is recorded on.
type phoneResponse struct {
	session.PhoneNumber
	UserID string `json:"user_id"`
	Linked bool   `json:"linked"`
}

func (h *Handler) healthz(req *request) error {
	writeJSON(req, http.StatusOK, map[string]string{"status": "ok"})
	return nil
}

func (h *Handler) readyz(req *request) error {
	ctx, cancel := context.WithTimeout(req.r.Context(), 2*time.Second)
	defer cancel()
	if err := h.sessions.Ready(ctx); err != nil {
		return err
	}
	writeJSON(req, http.StatusOK, map[string]string{"status": "ready"})
	return nil
}
