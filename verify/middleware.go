package verify

import (
	"encoding/json"
	"errors"
	"net/http"
	"strconv"
	"strings"
	"time"
)

// MiddlewareOption changes what one Middleware checks.
type MiddlewareOption func(*middlewareConfig)

type middlewareConfig struct {
	live bool
}

// RequireLive makes the middleware check every JWT by introspection as well
// (VerifyLive), for routes where a logout must take effect at once:
// payments, profile changes. Introspection answers are still cached for
// Options.IntrospectionCacheTTL, so "at once" means within that TTL; set a
// negative TTL to ask mplogin on every request. The Verifier needs
// Options.ClientID and ClientSecret: Middleware panics without them, so
// that the mistake shows at start and not as 503s.
func RequireLive() MiddlewareOption {
	return func(c *middlewareConfig) { c.live = true }
}

// Middleware checks the request's bearer token and calls next with the
// token's Identity in the request context (IdentityFrom). Otherwise it
// answers without calling next:
//
//   - 401 with WWW-Authenticate: Bearer, when there is no bearer token;
//   - 401 with WWW-Authenticate: Bearer error="invalid_token", when the
//     token is not valid (ErrInvalidToken);
//   - 400 with WWW-Authenticate: Bearer error="invalid_request", when the
//     request has more than one Authorization header, since servers and
//     proxies differ on which one counts;
//   - 503 with Retry-After, when the token cannot be checked now
//     (ErrUnavailable).
//
// Bodies are JSON: {"error":"…","message":"…"}.
func (v *Verifier) Middleware(next http.Handler, opts ...MiddlewareOption) http.Handler {
	var cfg middlewareConfig
	for _, o := range opts {
		o(&cfg)
	}
	check := v.Verify
	if cfg.live {
		if v.clientID == "" {
			panic("verify: RequireLive needs Options.ClientID and ClientSecret for introspection")
		}
		check = v.VerifyLive
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		vals := r.Header.Values("Authorization")
		if len(vals) > 1 {
			deny(w, http.StatusBadRequest, `Bearer error="invalid_request"`, "invalid_request", "send one Authorization header")
			return
		}
		var scheme, tok string
		if len(vals) == 1 {
			scheme, tok, _ = strings.Cut(vals[0], " ")
		}
		if !strings.EqualFold(scheme, "Bearer") {
			// No bearer credentials at all: RFC 6750 says no error code.
			deny(w, http.StatusUnauthorized, "Bearer", "unauthorized", "a bearer access token is required")
			return
		}
		id, err := check(r.Context(), strings.TrimSpace(tok))
		switch {
		case err == nil:
			next.ServeHTTP(w, r.WithContext(NewContext(r.Context(), id)))
		case errors.Is(err, ErrUnavailable):
			if v.unavailableLog.allow(v.now(), v.refreshInterval) {
				v.log.WarnContext(r.Context(), "verify: answering 503: a token could not be checked", "err", err)
			}
			secs := int((max(retryAfter(err), time.Second) + time.Second - 1) / time.Second)
			w.Header().Set("Retry-After", strconv.Itoa(secs))
			deny(w, http.StatusServiceUnavailable, "", "temporarily_unavailable", "the access token cannot be checked now; try again later")
		default:
			v.log.DebugContext(r.Context(), "verify: refused a token", "err", err)
			deny(w, http.StatusUnauthorized, `Bearer error="invalid_token"`, "invalid_token", "the access token is expired, revoked or not valid here")
		}
	})
}

func deny(w http.ResponseWriter, status int, challenge, code, msg string) {
	if challenge != "" {
		w.Header().Set("WWW-Authenticate", challenge)
	}
	b, _ := json.Marshal(struct {
		Error   string `json:"error"`
		Message string `json:"message"`
	}{code, msg})
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(status)
	_, _ = w.Write(append(b, '\n'))
}
