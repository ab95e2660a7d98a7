package verify

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"math"
	"strconv"
	"strings"
	"time"

	jose "github.com/go-jose/go-jose/v4"
)

// jwtEntry is a verified JWT as cached: its identity, and the key that
// signed it, so that a key withdrawn from the JWKS stops vouching for the
// tokens it signed.
type jwtEntry struct {
	id  Identity
	kid string
}

// verifyJWT answers from the cache, or checks the token and caches the
// verdict until exp (plus the leeway the check itself allows). Only valid
// tokens are cached: a bad one costs its sender a full check each time.
func (v *Verifier) verifyJWT(ctx context.Context, raw string) (Identity, error) {
	k := keyOf(raw)
	now := v.now()
	if e, ok := v.jwts.get(k, now); ok {
		if ks := v.keys.Load(); ks != nil {
			v.refreshIfStale(ctx, ks, now)
			if _, ok := ks.keys[e.kid]; ok {
				return e.id, nil
			}
		}
	}
	id, kid, err := v.checkJWT(ctx, raw, now)
	if err != nil {
		return Identity{}, err
	}
	v.jwts.put(k, jwtEntry{id, kid}, id.ExpiresAt.Add(v.leeway))
	return id, nil
}

// jwtHeader is the protected header as this package reads it before
// go-jose does, to refuse early and with a precise reason.
type jwtHeader struct {
	Alg  string          `json:"alg"`
	Kid  string          `json:"kid"`
	Typ  string          `json:"typ"`
	Crit json.RawMessage `json:"crit"`
	B64  json.RawMessage `json:"b64"`
	Enc  json.RawMessage `json:"enc"`
}

// jwtClaims are the claims of an mplogin JWT access token.
type jwtClaims struct {
	Iss      string      `json:"iss"`
	Sub      string      `json:"sub"`
	Aud      audience    `json:"aud"`
	ClientID string      `json:"client_id"`
	Iat      numericDate `json:"iat"`
	Exp      numericDate `json:"exp"`
	Nbf      numericDate `json:"nbf"`
	Jti      string      `json:"jti"`
	Sid      string      `json:"sid"`
	App      string      `json:"app"`
	Platform string      `json:"platform"`
	OpenID   string      `json:"openid"`
	UnionID  string      `json:"unionid"`
}

// checkJWT verifies a compact JWS access token as RFC 9068 says a resource
// server must, and returns its identity and the kid of its key.
func (v *Verifier) checkJWT(ctx context.Context, raw string, now time.Time) (Identity, string, error) {
	h, err := readHeader(raw)
	if err != nil {
		return Identity{}, "", err
	}
	pk, err := v.keyFor(ctx, h.Kid, now)
	if err != nil {
		return Identity{}, "", err
	}
	if jose.SignatureAlgorithm(h.Alg) != pk.alg {
		return Identity{}, "", invalid("alg %s, but its key is for %s", h.Alg, pk.alg)
	}
	// The allowlist holds the key's one algorithm, so go-jose cannot be
	// talked into another.
	jws, err := jose.ParseSignedCompact(raw, []jose.SignatureAlgorithm{pk.alg})
	if err != nil {
		return Identity{}, "", invalid("malformed JWS")
	}
	// The checks above read the header with encoding/json; go-jose reads
	// it with its own parser. Both must have seen the same values.
	if sh := jws.Signatures[0].Header; sh.Algorithm != h.Alg || sh.KeyID != h.Kid || sh.ExtraHeaders["typ"] != any(h.Typ) {
		return Identity{}, "", invalid("an ambiguous header")
	}
	payload, err := jws.Verify(pk.key)
	if err != nil {
		return Identity{}, "", invalid("bad signature")
	}
	var c jwtClaims
	if err := json.Unmarshal(payload, &c); err != nil {
		return Identity{}, "", invalid("the claims are not a valid JSON object")
	}
	if err := v.checkClaims(&c, now); err != nil {
		return Identity{}, "", err
	}
	id := Identity{
		UserID: c.Sub, App: c.App, Platform: c.Platform, OpenID: c.OpenID, UnionID: c.UnionID,
		SessionID: c.Sid, ExpiresAt: c.Exp.t,
	}
	if id.App == "" {
		id.App = c.ClientID // RFC 9068's name for the same app
	}
	if err := v.checkApp(id.App); err != nil {
		return Identity{}, "", err
	}
	return id, h.Kid, nil
}

// readHeader decodes and checks the protected header: ES256 or RS256 only
// (so never none nor an HMAC keyed with a public key), typ at+jwt (so an ID
// token or another JWT of the issuer cannot pass for an access token), a
// kid, and no extension this package does not implement.
func readHeader(raw string) (jwtHeader, error) {
	seg, _, _ := strings.Cut(raw, ".")
	b, err := base64.RawURLEncoding.DecodeString(seg)
	if err != nil {
		return jwtHeader{}, invalid("the header is not base64url")
	}
	var h jwtHeader
	if err := json.Unmarshal(b, &h); err != nil {
		return jwtHeader{}, invalid("the header is not a valid JSON object")
	}
	switch {
	case h.Enc != nil:
		return jwtHeader{}, invalid("an encrypted token (JWE), which this verifier does not accept")
	case strings.EqualFold(h.Alg, "none"):
		return jwtHeader{}, invalid("alg none: the token is not signed")
	case h.Alg != string(jose.ES256) && h.Alg != string(jose.RS256):
		return jwtHeader{}, invalid("alg %s; only ES256 and RS256 are accepted", short(h.Alg))
	case !strings.EqualFold(h.Typ, "at+jwt") && !strings.EqualFold(h.Typ, "application/at+jwt"):
		return jwtHeader{}, invalid("typ %q, not at+jwt: not an access token", short(h.Typ))
	case h.Kid == "":
		return jwtHeader{}, invalid("no kid")
	case h.Crit != nil || h.B64 != nil:
		return jwtHeader{}, invalid("a JWS extension (crit, b64) this verifier does not accept")
	}
	return h, nil
}

// short bounds what an error repeats of a header value.
func short(s string) string {
	if len(s) > 20 {
		return s[:20] + "…"
	}
	return s
}

// keyFor returns the published key with the given kid. Before any key set
// has been read, it waits for a fetch (or answers ErrUnavailable when none
// may start yet). An unknown kid waits for a new fetch only when one may
// start; otherwise the kid is unknown at once, which bounds what a stream
// of invented kids costs the issuer and this process.
func (v *Verifier) keyFor(ctx context.Context, kid string, now time.Time) (publicKey, error) {
	ks := v.keys.Load()
	if ks == nil {
		if err := v.waitFetch(ctx, "no keys yet"); err != nil {
			return publicKey{}, err
		}
		if ks = v.keys.Load(); ks == nil {
			return publicKey{}, v.unavailableUntilRetry("the issuer's keys have not been read yet", nil)
		}
	} else {
		v.refreshIfStale(ctx, ks, now)
	}
	if pk, ok := ks.keys[kid]; ok {
		return pk, nil
	}
	c := v.startFetch(ctx, "unknown kid")
	if c == nil {
		if v.lastFetchFailed() {
			// The key may be a new one that the last fetch failed to bring.
			return publicKey{}, v.unavailableUntilRetry("unknown kid, and the last fetch of the keys failed", nil)
		}
		return publicKey{}, invalid("unknown kid")
	}
	if err := c.wait(ctx); err != nil {
		return publicKey{}, v.unavailableUntilRetry("unknown kid, and fetching the keys failed", err)
	}
	if pk, ok := v.keys.Load().keys[kid]; ok {
		return pk, nil
	}
	return publicKey{}, invalid("unknown kid")
}

// refreshIfStale starts a background fetch when ks has reached its max-age.
// The stale keys keep serving meanwhile, so no request waits for it, and a
// key the issuer withdraws stops working within max-age (plus the time a
// fetch takes while the issuer is down).
func (v *Verifier) refreshIfStale(ctx context.Context, ks *keySet, now time.Time) {
	if now.Sub(ks.fetchedAt) >= ks.maxAge && now.UnixNano() >= v.nextFetch.Load() {
		v.startFetch(ctx, "the keys reached their max-age")
	}
}

// waitFetch starts a fetch, or joins the running one, and waits for it.
func (v *Verifier) waitFetch(ctx context.Context, reason string) error {
	c := v.startFetch(ctx, reason)
	if c == nil {
		return v.unavailableUntilRetry("the issuer's keys could not be read", nil)
	}
	if err := c.wait(ctx); err != nil {
		return v.unavailableUntilRetry("the issuer's keys could not be read", err)
	}
	return nil
}

func (v *Verifier) unavailableUntilRetry(msg string, err error) error {
	u := unavailable(msg, err)
	u.retryAfter = v.untilNextFetch()
	return u
}

func (v *Verifier) checkClaims(c *jwtClaims, now time.Time) error {
	switch {
	case c.Iss != v.issuer:
		return invalid("iss is another issuer")
	case !c.Aud.contains(v.audience):
		return invalid("aud does not name this API")
	case c.Sub == "" || c.ClientID == "" || c.Jti == "" || !c.Exp.set || !c.Iat.set:
		return invalid("a required claim (sub, client_id, jti, exp, iat) is missing")
	case !now.Before(c.Exp.t.Add(v.leeway)):
		return invalid("expired")
	case c.Iat.t.After(now.Add(v.leeway)):
		return invalid("issued in the future")
	case c.Nbf.set && c.Nbf.t.After(now.Add(v.leeway)):
		return invalid("not valid yet")
	}
	return nil
}

func (v *Verifier) checkApp(app string) error {
	if v.apps != nil && !v.apps[app] {
		return invalid("issued to an app this API does not serve")
	}
	return nil
}

// audience is the aud claim: a string or an array of strings.
type audience []string

func (a *audience) UnmarshalJSON(b []byte) error {
	if bytes.Equal(b, []byte("null")) {
		return nil
	}
	if len(b) > 0 && b[0] == '"' {
		var s string
		if err := json.Unmarshal(b, &s); err != nil {
			return err
		}
		*a = audience{s}
		return nil
	}
	var l []string
	if err := json.Unmarshal(b, &l); err != nil {
		return err
	}
	*a = l
	return nil
}

func (a audience) contains(s string) bool {
	for _, x := range a {
		if x == s {
			return true
		}
	}
	return false
}

// numericDate is a JWT NumericDate: seconds since 1970, which RFC 7519
// allows to have a fraction.
type numericDate struct {
	t   time.Time
	set bool
}

// maxNumericDate bounds a date to years a token can name, so that the
// conversion to time.Time cannot overflow.
const maxNumericDate = 1 << 40

func (n *numericDate) UnmarshalJSON(b []byte) error {
	if bytes.Equal(b, []byte("null")) {
		return nil
	}
	f, err := strconv.ParseFloat(string(b), 64)
	if err != nil || math.IsNaN(f) || math.Abs(f) > maxNumericDate {
		return errors.New("not a NumericDate")
	}
	sec, frac := math.Modf(f)
	n.t, n.set = time.Unix(int64(sec), int64(frac*1e9)), true
	return nil
}
