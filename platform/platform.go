// Package platform is what every mini-program host implements: exchanging a
// login code for an identity and a session key, with the host's errors sorted
// into one closed set of kinds.
//
// Hosts live in sub-packages (platform/wechat, platform/baidu). They share the
// careful HTTP caller of this package: per-platform timeouts, a capped body,
// Content-Type ignored, in-body errors checked, and at most one retry of a
// code exchange, only when the request provably never reached the platform or
// the platform said it was busy.
package platform

import (
	"context"

	"github.com/mplogin/mplogin/secret"
)

// Client exchanges login codes with one host for one app.
//
// Implementations are safe for concurrent use.
type Client interface {
	// Platform names the host and flavour, e.g. "wechat", "wechat-component",
	// "baidu", "baidu-legacy", "baidu-tp".
	Platform() string
	// Exchange trades a one-time login code for the user's identity. It never
	// retries once the code may have reached the platform. Errors are *Error.
	Exchange(ctx context.Context, req ExchangeRequest) (*Login, error)
}

// ExchangeRequest is what the mini program sent. Hosts use the fields they
// know: Douyin also takes an anonymous code, for users who are not logged in.
type ExchangeRequest struct {
	Code          string
	AnonymousCode string
}

// Login is a successful exchange.
type Login struct {
	OpenID string
	// UnionID is the user's id across one owner's apps; "" when the host
	// gave none.
	UnionID string
	// AnonymousOpenID identifies a user who is not logged in (Douyin).
	AnonymousOpenID string
	// SessionKey opens the user's encrypted data. Zero on hosts that have
	// none (Alipay).
	SessionKey secret.String
}

// TokenSource supplies an access token that someone else manages: a
// third-party platform's component_access_token (WeChat) or an authorizer's
// access token (Baidu).
type TokenSource interface {
	Token(ctx context.Context) (secret.String, error)
}

// TokenInvalidator is implemented by token sources that cache: the client
// calls it when the platform rejected tok as invalid or expired, so that the
// next call fetches a fresh token.
type TokenInvalidator interface {
	InvalidateToken(ctx context.Context, tok secret.String)
}

// StaticToken is a TokenSource that always returns the same token.
type StaticToken secret.String

// Token implements TokenSource.
func (s StaticToken) Token(context.Context) (secret.String, error) {
	return secret.String(s), nil
}
