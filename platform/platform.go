// Package platform is what a login service needs of a mini-program host,
// whichever host it is: a Client that exchanges the login code a mini
// program sent (ExchangeRequest) for the user's identity and session key
// (Login), and an Error whose Kind (KindOf), one of a closed set, says what
// to tell the user or whether the host is failing.
//
// The clients live in the host packages (platform/wechat, platform/baidu,
// platform/douyin, platform/qq, platform/kuaishou, platform/alipay).
// Each takes an *http.Client, by default one of NewHTTPClient, which sets
// every timeout and refuses redirects; and, where a host's calls need a
// token that someone else manages, a TokenSource: StaticToken,
// URLTokenSource, or your own. Every client reads answers through a size
// cap, looks at the body before the status, and sends a login code a second
// time only when the first attempt provably never reached the host or the
// host said it was busy.
package platform

import (
	"context"

	"github.com/mplogin/mplogin/secret"
)

// Client exchanges login codes with one host for one app.
//
// Implementations are safe for concurrent use.
type Client interface {
	// Flavor says how the client talks to its host ("wechat-component");
	// its Family follows from it.
	Flavor() Flavor
	// Exchange trades a one-time login code for the user's identity. It never
	// retries once the code may have reached the platform. Errors are *Error.
	Exchange(ctx context.Context, req ExchangeRequest) (*Login, error)
}

// MaxCodeLen bounds what is sent as a login code; real codes are about 32
// bytes. Clients refuse a longer one before any call.
const MaxCodeLen = 512

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
