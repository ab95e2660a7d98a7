package verify

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"time"
)

// introspectEntry is an introspection verdict as cached: the identity of an
// active token, or why the token was refused. Failures to get a verdict
// are never cached.
type introspectEntry struct {
	id  Identity
	err error // an ErrInvalidToken, or nil
}

// introspectAnswer is an RFC 7662 answer as mplogin gives it.
type introspectAnswer struct {
	Active    bool        `json:"active"`
	TokenType string      `json:"token_type"`
	Sub       string      `json:"sub"`
	ClientID  string      `json:"client_id"`
	Iss       string      `json:"iss"`
	Exp       numericDate `json:"exp"`
	Sid       string      `json:"sid"`
	App       string      `json:"app"`
	Platform  string      `json:"platform"`
	OpenID    string      `json:"openid"`
	UnionID   string      `json:"unionid"`
}

// introspect asks mplogin about a token, through the cache; concurrent
// checks of one token share one call.
func (v *Verifier) introspect(ctx context.Context, raw string) (Identity, error) {
	k := keyOf(raw)
	cached := func() (introspectEntry, bool) { return v.introspects.get(k, v.now()) }
	if e, ok := cached(); ok {
		return e.id, e.err
	}
	e, err := v.flight.do(ctx, k, fetchTimeout, cached, func(ctx context.Context) (introspectEntry, error) {
		e, until, err := v.callIntrospection(ctx, raw)
		if err == nil && v.introspectTTL > 0 {
			// Stored before the call ends, so that a check arriving
			// after it finds either the call or the entry.
			v.introspects.put(k, e, until)
		}
		return e, err
	})
	if err != nil {
		if ctx.Err() != nil {
			return Identity{}, unavailable("gave up waiting for introspection", err)
		}
		return Identity{}, err
	}
	return e.id, e.err
}

// callIntrospection makes the call and returns the verdict and until when
// it may be reused, or an ErrUnavailable.
func (v *Verifier) callIntrospection(ctx context.Context, raw string) (introspectEntry, time.Time, error) {
	md := v.meta.Load()
	if md == nil {
		if err := v.waitFetch(ctx, "no metadata yet"); err != nil {
			return introspectEntry{}, time.Time{}, err
		}
		if md = v.meta.Load(); md == nil {
			return introspectEntry{}, time.Time{}, v.unavailableUntilRetry("the issuer's metadata has not been read yet", nil)
		}
	}
	if md.IntrospectionEndpoint == "" {
		return introspectEntry{}, time.Time{}, unavailable("the issuer's metadata names no introspection_endpoint", nil)
	}
	form := url.Values{"token": {raw}, "token_type_hint": {"access_token"}}.Encode()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, md.IntrospectionEndpoint, strings.NewReader(form))
	if err != nil {
		return introspectEntry{}, time.Time{}, unavailable("introspection", err)
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.Header.Set("Accept", "application/json")
	// RFC 6749 section 2.3.1: each part is form-encoded before Basic.
	req.SetBasicAuth(url.QueryEscape(v.clientID), url.QueryEscape(v.clientSecret))
	resp, err := v.client.Do(req)
	if err != nil {
		return introspectEntry{}, time.Time{}, unavailable("introspection", err)
	}
	defer resp.Body.Close()
	body, err := readBody(resp.Body)
	switch {
	case err != nil:
		return introspectEntry{}, time.Time{}, unavailable("introspection: reading the answer", err)
	case resp.StatusCode == http.StatusUnauthorized:
		// mplogin refused this API's own credentials: the user is not at
		// fault, so no 401 that would log them out, and an operator
		// must hear of it.
		if v.credentialsLog.allow(v.now(), v.refreshInterval) {
			v.log.ErrorContext(ctx, "verify: mplogin refused this API's introspection credentials; check Options.ClientID and ClientSecret",
				"client_id", v.clientID, "endpoint", md.IntrospectionEndpoint)
		}
		return introspectEntry{}, time.Time{}, unavailable("introspection refused this API's client credentials", nil)
	case resp.StatusCode != http.StatusOK:
		u := unavailable(fmt.Sprintf("introspection answered status %d", resp.StatusCode), nil)
		u.retryAfter = parseRetryAfter(resp.Header.Get("Retry-After"))
		return introspectEntry{}, time.Time{}, u
	}
	var a introspectAnswer
	if err := json.Unmarshal(body, &a); err != nil {
		return introspectEntry{}, time.Time{}, unavailable("introspection: the answer is not a valid JSON object", nil)
	}
	now := v.now()
	until := now.Add(v.introspectTTL)
	if !a.Active {
		return introspectEntry{err: invalid("not active (expired, revoked or unknown)")}, until, nil
	}
	switch {
	case a.Iss != "" && a.Iss != v.issuer:
		return introspectEntry{}, time.Time{}, unavailable(fmt.Sprintf("introspection names issuer %q, not the configured one", short(a.Iss)), nil)
	case a.Sub == "" || !a.Exp.set:
		return introspectEntry{}, time.Time{}, unavailable("introspection: an active answer without sub or exp", nil)
	case a.TokenType != "access_token":
		return introspectEntry{err: invalid("not an access token")}, until, nil
	case !now.Before(a.Exp.t.Add(v.leeway)):
		return introspectEntry{err: invalid("expired")}, until, nil
	}
	id := Identity{
		UserID: a.Sub, App: a.App, Platform: a.Platform, OpenID: a.OpenID, UnionID: a.UnionID,
		SessionID: a.Sid, ExpiresAt: a.Exp.t,
	}
	if id.App == "" {
		id.App = a.ClientID
	}
	if err := v.checkApp(id.App); err != nil {
		return introspectEntry{err: err}, until, nil
	}
	return introspectEntry{id: id}, minTime(until, a.Exp.t), nil
}

// parseRetryAfter reads a Retry-After in seconds, within a minute; zero
// when there is none.
func parseRetryAfter(s string) time.Duration {
	n, err := strconv.Atoi(strings.TrimSpace(s))
	if err != nil || n <= 0 {
		return 0
	}
	return time.Duration(min(n, 60)) * time.Second
}

func minTime(a, b time.Time) time.Time {
	if b.Before(a) {
		return b
	}
	return a
}

// logLimit lets an event that repeats on every request be logged once per
// interval instead.
type logLimit struct {
	mu   sync.Mutex
	last time.Time
}

func (l *logLimit) allow(now time.Time, every time.Duration) bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	if !l.last.IsZero() && now.Sub(l.last) < every {
		return false
	}
	l.last = now
	return true
}
