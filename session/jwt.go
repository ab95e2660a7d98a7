package session

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/go-jose/go-jose/v4"
	"github.com/go-jose/go-jose/v4/jwt"

	"github.com/mplogin/mplogin"
	"github.com/mplogin/mplogin/secret"
	"github.com/mplogin/mplogin/signing"
	"github.com/mplogin/mplogin/store"
)

// JWT access tokens (RFC 9068): an app with App.JWT set gets a signed JWT
// as its access token instead of an opaque mpa_ token. The session, its
// refresh token and everything stored stay as they are: the JWT names the
// session (sid), and the service's own routes check that the session is
// still live, so a logout takes effect there at once. Business APIs may
// check the JWT alone, with the published keys, and then accept it until
// it expires.

// JWTKeys is where JWTs are signed and checked: the signing-key manager
// (package signing).
type JWTKeys interface {
	// Signer returns the key that signs at now.
	Signer(now time.Time) (signing.Key, error)
	// Published returns the public keys published at now.
	Published(now time.Time) []jose.JSONWebKey
}

// JWTConfig configures JWT access tokens for the apps that have App.JWT.
type JWTConfig struct {
	Keys   JWTKeys
	Issuer string // the iss of every JWT: the service's public base URL
}

// AppJWT makes an app's access tokens JWTs.
type AppJWT struct {
	TTL      time.Duration // the JWT's lifetime
	Audience []string      // its aud: the APIs it is for; at least one
}

// JWTType is the typ header of mplogin's access tokens, which verifiers
// check so that no other JWT of the issuer passes for one.
const JWTType = "at+jwt"

// MaxJWTSize bounds what is parsed as a JWT.
const MaxJWTSize = 8 << 10

// jwtLeeway is how far past its exp a JWT is still taken, as every end the
// service compares (see mplogin.MaxClockSkew).
const jwtLeeway = mplogin.MaxClockSkew

// accessClaims are the claims of an access token beyond the registered
// ones.
type accessClaims struct {
	ClientID string `json:"client_id"`
	SID      string `json:"sid"`
	App      string `json:"app"`
	Platform string `json:"platform"`
	OpenID   string `json:"openid"`
	UnionID  string `json:"unionid,omitempty"`
}

// mintJWT signs an access token for sess, an app's session, at now.
func (s *Service) mintJWT(app *App, sess store.Session, now time.Time) (string, error) {
	key, err := s.jwt.Keys.Signer(now)
	if err != nil {
		return "", err
	}
	signer, err := key.NewSigner((&jose.SignerOptions{}).WithType(JWTType))
	if err != nil {
		return "", err
	}
	jti := make([]byte, 16)
	if _, err := rand.Read(jti); err != nil {
		return "", err
	}
	std := jwt.Claims{
		Issuer: s.jwt.Issuer, Subject: sess.UserID, Audience: jwt.Audience(app.JWT.Audience),
		IssuedAt: jwt.NewNumericDate(now), Expiry: jwt.NewNumericDate(now.Add(app.JWT.TTL)),
		ID: base64.RawURLEncoding.EncodeToString(jti),
	}
	own := accessClaims{ClientID: app.Name, SID: sess.ID, App: app.Name, Platform: string(sess.Family), OpenID: sess.OpenID}
	if app.ExposeUnionID {
		own.UnionID = sess.UnionID
	}
	return jwt.Signed(signer).Claims(std).Claims(own).Serialize()
}

// looksLikeJWT tells a JWT from an opaque token without parsing it.
func looksLikeJWT(tok string) bool { return strings.Count(tok, ".") == 2 }

var errJWT = errors.New("not a valid access token")

// checkJWT verifies a JWT access token of this service at now: size, an
// algorithm of a published key (never none, never HMAC), the typ header,
// the signature, iss, and exp and iat with the leeway. It returns the
// token's claims. Errors never carry the token.
func (s *Service) checkJWT(raw string, now time.Time) (accessClaims, jwt.Claims, error) {
	if s.jwt == nil || len(raw) > MaxJWTSize {
		return accessClaims{}, jwt.Claims{}, errJWT
	}
	tok, err := jwt.ParseSigned(raw, []jose.SignatureAlgorithm{jose.ES256, jose.RS256})
	if err != nil || len(tok.Headers) != 1 {
		return accessClaims{}, jwt.Claims{}, errJWT
	}
	h := tok.Headers[0]
	if typ, _ := h.ExtraHeaders[jose.HeaderType].(string); typ != JWTType && typ != "application/"+JWTType {
		return accessClaims{}, jwt.Claims{}, fmt.Errorf("%w: typ", errJWT)
	}
	var key *jose.JSONWebKey
	for _, k := range s.jwt.Keys.Published(now) {
		if k.KeyID == h.KeyID {
			key = &k
			break
		}
	}
	if key == nil || key.Algorithm != h.Algorithm {
		return accessClaims{}, jwt.Claims{}, fmt.Errorf("%w: unknown key", errJWT)
	}
	var (
		std jwt.Claims
		own accessClaims
	)
	if err := tok.Claims(key.Key, &std, &own); err != nil {
		return accessClaims{}, jwt.Claims{}, fmt.Errorf("%w: signature", errJWT)
	}
	if std.Expiry == nil || std.IssuedAt == nil || own.SID == "" || own.App == "" {
		return accessClaims{}, jwt.Claims{}, fmt.Errorf("%w: claims", errJWT)
	}
	if err := std.ValidateWithLeeway(jwt.Expected{Issuer: s.jwt.Issuer, Time: now}, jwtLeeway); err != nil {
		return accessClaims{}, jwt.Claims{}, fmt.Errorf("%w: %w", errJWT, err)
	}
	return own, std, nil
}

// jwtSession is the live session of a JWT access token, with
// AccessExpiresAt the JWT's expiry plus the leeway, as an opaque token's
// stored end carries the clock skew.
func (s *Service) jwtSession(ctx context.Context, raw, op string) (store.Session, error) {
	now := s.now()
	own, std, err := s.checkJWT(raw, now)
	if err != nil {
		return store.Session{}, errInvalidToken
	}
	app, ok := s.apps[own.App]
	if !ok || app.JWT == nil {
		return store.Session{}, errInvalidToken
	}
	sess, err := s.store.SessionByID(ctx, own.SID)
	if errors.Is(err, store.ErrNotFound) {
		return store.Session{}, errInvalidToken
	}
	if err != nil {
		return store.Session{}, storeError(op, err)
	}
	if !sess.Active(now) || sess.App != own.App || sess.UserID != std.Subject || !forApp(std.Audience, app.JWT.Audience) {
		return store.Session{}, errInvalidToken
	}
	sess.AccessExpiresAt = std.Expiry.Time().Add(jwtLeeway)
	return sess, nil
}

// forApp reports whether aud names one of the app's audiences: a JWT the
// service minted for the app before its audience was changed is no
// longer the app's.
func forApp(aud jwt.Audience, app []string) bool {
	for _, a := range app {
		if aud.Contains(a) {
			return true
		}
	}
	return false
}

// issue gives t a JWT access token when its app has them.
func (s *Service) issue(t *Tokens) (*Tokens, error) {
	app := s.apps[t.App]
	if app == nil || app.JWT == nil {
		return t, nil
	}
	raw, err := s.mintJWT(app, t.session, s.now())
	if err != nil {
		return nil, mplogin.Wrap(mplogin.CodeInternal, "internal error", err)
	}
	t.AccessToken = secret.New(raw)
	t.ExpiresIn = app.JWT.TTL
	return t, nil
}
