package httpapi

import (
	"context"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"io"
	"log/slog"
	"net/http"
	"strings"
	"time"

	"github.com/mplogin/mplogin"
	"github.com/mplogin/mplogin/platform"
	"github.com/mplogin/mplogin/secret"
	"github.com/mplogin/mplogin/session"
)

// AdminBodyLimit fits the admin API's bodies: a reason, or a user id.
const AdminBodyLimit = 4 << 10

// AdminToken is one operator's bearer token; Name is what the audit log
// names.
type AdminToken struct {
	Name  string
	Token secret.String
}

// AdminConfig assembles the admin API's handler.
type AdminConfig struct {
	Sessions *session.Service
	Logger   *slog.Logger // nil = discard
	// HandlerTimeout bounds the work of one request; 0 = 15 s.
	HandlerTimeout time.Duration
	Now            func() time.Time // nil = time.Now
	Tokens         []AdminToken
}

// adminTokens holds the admin tokens only as MACs under a key of this
// process, as clientSet does the clients' secrets.
type adminTokens struct {
	key   []byte
	names []string
	macs  [][]byte
}

func newAdminTokens(ts []AdminToken) adminTokens {
	a := adminTokens{key: make([]byte, 32)}
	// crypto/rand.Read does not fail (it panics rather than return short).
	_, _ = rand.Read(a.key)
	for _, t := range ts {
		a.names = append(a.names, t.Name)
		a.macs = append(a.macs, a.mac(t.Token.Reveal()))
	}
	return a
}

func (a adminTokens) mac(s string) []byte {
	m := hmac.New(sha256.New, a.key)
	_, _ = io.WriteString(m, s)
	return m.Sum(nil)
}

// check returns the name of the token tok, or "" when it is none. Every
// token is compared, so that the time taken tells nothing of which one
// came close.
func (a adminTokens) check(tok string) string {
	if tok == "" {
		return ""
	}
	got, name := a.mac(tok), ""
	for i, m := range a.macs {
		if hmac.Equal(got, m) {
			name = a.names[i]
		}
	}
	return name
}

// Admin is the operators' API (docs/operations.md): users found, their
// sessions revoked, blocked, erased and merged. It must be served on a
// listener of its own, never the public one.
type Admin struct {
	h      *Handler
	tokens adminTokens
}

// NewAdmin returns the admin API's handler.
func NewAdmin(cfg AdminConfig) *Admin {
	h := &Handler{sessions: cfg.Sessions, log: cfg.Logger, timeout: cfg.HandlerTimeout, now: cfg.Now, mux: http.NewServeMux(),
		allow: make(map[string]string), v6bits: DefaultIPv6Prefix}
	if h.log == nil {
		h.log = slog.New(slog.DiscardHandler)
	}
	h.log = slog.New(LogHandler(h.log.Handler()))
	if h.timeout <= 0 {
		h.timeout = 15 * time.Second
	}
	if h.now == nil {
		h.now = time.Now
	}
	a := &Admin{h: h, tokens: newAdminTokens(cfg.Tokens)}
	for _, r := range []struct {
		pattern, action string
		limit           int64
		fn              func(*request) (any, int, string, error)
	}{
		{"GET /admin/v1/users/{id}", "user", EmptyBodyLimit, a.user},
		{"GET /admin/v1/users", "find", EmptyBodyLimit, a.find},
		{"GET /admin/v1/users/{id}/sessions", "sessions", EmptyBodyLimit, a.sessions},
		{"POST /admin/v1/users/{id}/revoke", "revoke", EmptyBodyLimit, a.revoke},
		{"POST /admin/v1/users/{id}/block", "block", AdminBodyLimit, a.block},
		{"POST /admin/v1/users/{id}/unblock", "unblock", EmptyBodyLimit, a.unblock},
		{"DELETE /admin/v1/users/{id}", "erase", EmptyBodyLimit, a.erase},
		{"POST /admin/v1/users/{id}/merge", "merge", AdminBodyLimit, a.merge},
	} {
		h.route(r.pattern, r.limit, a.action(r.action, r.fn))
	}
	h.mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		h.serve(w, r, "unknown", EmptyBodyLimit, func(req *request) error {
			if _, err := a.authenticate(req); err != nil {
				return err
			}
			return mplogin.Errorf(mplogin.CodeNotFound, "no such route: see docs/operations.md")
		})
	})
	return a
}

func (a *Admin) ServeHTTP(w http.ResponseWriter, r *http.Request) { a.h.ServeHTTP(w, r) }

var errAdminToken = mplogin.Errorf(mplogin.CodeInvalidToken, "an admin token is required: missing or wrong")

// authenticate returns the name of the request's admin token. A missing
// and a wrong token get the same answer.
func (a *Admin) authenticate(req *request) (string, error) {
	tok, err := bearer(req.r)
	name := ""
	if err == nil {
		name = a.tokens.check(tok)
	}
	if name == "" {
		req.w.Header().Set("WWW-Authenticate", `Bearer realm="mplogin-admin"`)
		return "", errAdminToken
	}
	return name, nil
}

// action wraps an admin route: the token is checked before anything else,
// and every authenticated request, whatever its outcome, writes one audit
// line. fn returns the answer's body (nil: none) and status, and the user
// acted on.
func (a *Admin) action(name string, fn func(*request) (any, int, string, error)) handlerFunc {
	return func(req *request) error {
		admin, err := a.authenticate(req)
		if err != nil {
			return err
		}
		body, status, user, err := fn(req)
		audit := AdminAudit{Action: name, Admin: admin, User: user, Err: err}
		if m, ok := body.(mergeAnswer); ok {
			audit.From = m.from
		}
		audit.Log(req.r.Context(), a.h.log)
		if err != nil {
			return err
		}
		if body == nil {
			req.w.WriteHeader(status)
			req.status = status
			return nil
		}
		if m, ok := body.(mergeAnswer); ok {
			body = m.user
		}
		writeJSON(req, status, body)
		return nil
	}
}

// AdminAudit is the audit line of one admin action, whatever its outcome:
// the admin API writes one for each authenticated request, and mplogin
// users one for each action it takes, so that both read alike in the log.
type AdminAudit struct {
	Action string // user, find, sessions, revoke, block, unblock, erase, merge
	Admin  string // who acted: an admin token's name, or "cli" and the OS user
	User   string // the user acted on; "" when unknown
	From   string // the user merged into User; "" for other actions
	Err    error  // the outcome; nil when it succeeded
}

// Log writes the line at info; its result is "ok" or the error's code.
func (a AdminAudit) Log(ctx context.Context, log *slog.Logger) {
	result := "ok"
	if a.Err != nil {
		result = string(mplogin.ErrorCode(a.Err))
	}
	attrs := []slog.Attr{slog.String("action", a.Action), slog.String("admin", a.Admin), slog.String("user", a.User),
		slog.String("result", result)}
	if a.From != "" {
		attrs = append(attrs, slog.String("from", a.From))
	}
	log.LogAttrs(ctx, slog.LevelInfo, "admin", attrs...)
}

// userID is the route's {id}; an id no store could hold is no user.
func userID(req *request) (string, error) {
	id := req.r.PathValue("id")
	if !ValidUserID(id) {
		return "", errNoUser // not logged: it is anything a caller sent
	}
	return id, nil
}

var errNoUser = mplogin.Errorf(mplogin.CodeNotFound, "no such user")

// ValidUserID reports whether id could be a user's id: an id no store
// could hold names no user, and need not reach the store.
func ValidUserID(id string) bool { return id != "" && len(id) <= 128 && plain(id) }

type adminIdentity struct {
	Platform    platform.Family `json:"platform"`
	AppID       string          `json:"app_id"`
	OpenID      string          `json:"openid"`
	UnionID     string          `json:"unionid,omitempty"`
	CreatedAt   string          `json:"created_at,omitempty"`
	LastLoginAt string          `json:"last_login_at,omitempty"`
}

type adminPhone struct {
	Masked    string `json:"masked"`
	Source    string `json:"source"`
	App       string `json:"app,omitempty"`
	UpdatedAt string `json:"updated_at,omitempty"`
}

type adminUser struct {
	ID            string          `json:"id"`
	CreatedAt     string          `json:"created_at,omitempty"`
	LastLoginAt   string          `json:"last_login_at,omitempty"`
	Blocked       bool            `json:"blocked"`
	BlockedReason string          `json:"blocked_reason,omitempty"`
	BlockedAt     string          `json:"blocked_at,omitempty"`
	Phone         *adminPhone     `json:"phone"`
	Identities    []adminIdentity `json:"identities"`
}

// stamp is t in RFC 3339, UTC; "" for the zero time.
func stamp(t time.Time) string {
	if t.IsZero() {
		return ""
	}
	return t.UTC().Format(time.RFC3339)
}

func userJSON(u session.AdminUser) adminUser {
	out := adminUser{ID: u.ID, CreatedAt: stamp(u.CreatedAt), LastLoginAt: stamp(u.LastLoginAt), Blocked: u.Blocked,
		BlockedReason: u.BlockedReason, BlockedAt: stamp(u.BlockedAt), Identities: make([]adminIdentity, 0, len(u.Identities))}
	for _, i := range u.Identities {
		out.Identities = append(out.Identities, adminIdentity{Platform: i.Family, AppID: i.AppID, OpenID: i.OpenID,
			UnionID: i.UnionID, CreatedAt: stamp(i.CreatedAt), LastLoginAt: stamp(i.UpdatedAt)})
	}
	if p := u.Phone; p != nil {
		out.Phone = &adminPhone{Masked: p.Masked, Source: p.Source, App: p.App, UpdatedAt: stamp(p.UpdatedAt)}
	}
	return out
}

// AdminUserBody is the admin API's answer describing u, for the other
// front ends of the admin actions (mplogin users): one shape for both.
func AdminUserBody(u session.AdminUser) any { return userJSON(u) }

// AdminRevokedBody is the admin API's answer to a revoke or a block that
// ended n sessions.
func AdminRevokedBody(n int) any { return revokedAnswer{n} }

func (a *Admin) user(req *request) (any, int, string, error) {
	id, err := userID(req)
	if err == nil {
		err = noBody(req)
	}
	if err != nil {
		return nil, 0, id, err
	}
	u, err := a.h.sessions.User(req.r.Context(), id)
	if err != nil {
		return nil, 0, id, err
	}
	return userJSON(u), http.StatusOK, id, nil
}

// findParams are the query parameters of GET /admin/v1/users.
var findParams = map[string]bool{"app": true, "openid": true, "unionid": true, "platform": true, "phone": true}

func (a *Admin) find(req *request) (any, int, string, error) {
	if err := noBody(req); err != nil {
		return nil, 0, "", err
	}
	q := req.r.URL.Query()
	for k, vs := range q {
		if !findParams[k] {
			return nil, 0, "", mplogin.Errorf(mplogin.CodeInvalidRequest, "unknown query parameter: use app and openid, unionid and platform, or phone")
		}
		if len(vs) > 1 {
			return nil, 0, "", mplogin.Errorf(mplogin.CodeInvalidRequest, "query parameter %q is given more than once", k)
		}
	}
	phone := q.Get("phone")
	if strings.HasPrefix(phone, " ") {
		// An unescaped + in a query string reads as a space.
		phone = "+" + strings.TrimLeft(phone, " ")
	}
	u, err := a.h.sessions.FindUser(req.r.Context(), session.UserQuery{App: q.Get("app"), OpenID: q.Get("openid"),
		UnionID: q.Get("unionid"), Family: platform.Family(q.Get("platform")), Phone: phone})
	if err != nil {
		return nil, 0, "", err
	}
	return userJSON(u), http.StatusOK, u.ID, nil
}

type adminSession struct {
	ID            string `json:"id"`
	App           string `json:"app"`
	CreatedAt     string `json:"created_at"`
	LastRefreshAt string `json:"last_refresh_at,omitempty"`
	ExpiresAt     string `json:"expires_at,omitempty"`
}

func (a *Admin) sessions(req *request) (any, int, string, error) {
	id, err := userID(req)
	if err == nil {
		err = noBody(req)
	}
	if err != nil {
		return nil, 0, id, err
	}
	ss, err := a.h.sessions.UserSessions(req.r.Context(), id)
	if err != nil {
		return nil, 0, id, err
	}
	out := make([]adminSession, 0, len(ss))
	for _, s := range ss {
		out = append(out, adminSession{ID: s.ID, App: s.App, CreatedAt: stamp(s.CreatedAt),
			LastRefreshAt: stamp(s.LastRefreshAt), ExpiresAt: stamp(s.ExpiresAt)})
	}
	return struct {
		Sessions []adminSession `json:"sessions"`
	}{out}, http.StatusOK, id, nil
}

type revokedAnswer struct {
	Revoked int `json:"revoked"`
}

func (a *Admin) revoke(req *request) (any, int, string, error) {
	id, err := userID(req)
	if err == nil {
		err = noBody(req)
	}
	if err != nil {
		return nil, 0, id, err
	}
	n, err := a.h.sessions.RevokeUser(req.r.Context(), id)
	if err != nil {
		return nil, 0, id, err
	}
	return revokedAnswer{n}, http.StatusOK, id, nil
}

type blockRequest struct {
	Reason string `json:"reason"`
}

func (*blockRequest) known(key []byte) bool { return string(key) == "reason" }

func (a *Admin) block(req *request) (any, int, string, error) {
	id, err := userID(req)
	if err != nil {
		return nil, 0, id, err
	}
	var in blockRequest
	if err := decode(req, &in); err != nil {
		return nil, 0, id, err
	}
	n, err := a.h.sessions.BlockUser(req.r.Context(), id, in.Reason)
	if err != nil {
		return nil, 0, id, err
	}
	return revokedAnswer{n}, http.StatusOK, id, nil
}

func (a *Admin) unblock(req *request) (any, int, string, error) {
	id, err := userID(req)
	if err == nil {
		err = noBody(req)
	}
	if err == nil {
		err = a.h.sessions.UnblockUser(req.r.Context(), id)
	}
	return nil, http.StatusNoContent, id, err
}

func (a *Admin) erase(req *request) (any, int, string, error) {
	id, err := userID(req)
	if err == nil {
		err = noBody(req)
	}
	if err == nil {
		err = a.h.sessions.EraseUser(req.r.Context(), id)
	}
	return nil, http.StatusNoContent, id, err
}

type mergeRequest struct {
	From *string `json:"from"`
}

func (*mergeRequest) known(key []byte) bool { return string(key) == "from" }

// mergeAnswer carries the merged user and, for the audit line, from.
type mergeAnswer struct {
	user adminUser
	from string
}

func (a *Admin) merge(req *request) (any, int, string, error) {
	id, err := userID(req)
	if err != nil {
		return nil, 0, id, err
	}
	var in mergeRequest
	if err := decode(req, &in); err != nil {
		return nil, 0, id, err
	}
	if in.From == nil || *in.From == "" {
		return nil, 0, id, mplogin.Errorf(mplogin.CodeInvalidRequest, `field "from" is required`)
	}
	if !ValidUserID(*in.From) {
		return nil, 0, id, errNoUser
	}
	ctx := req.r.Context()
	if err := a.h.sessions.MergeUsers(ctx, id, *in.From); err != nil {
		return mergeAnswer{from: *in.From}, 0, id, err
	}
	u, err := a.h.sessions.User(ctx, id)
	if err != nil {
		return mergeAnswer{from: *in.From}, 0, id, err
	}
	return mergeAnswer{user: userJSON(u), from: *in.From}, http.StatusOK, id, nil
}
